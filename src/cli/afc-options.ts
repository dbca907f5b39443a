// The options of each `afc` subcommand, declared once (src/config/option-table.ts): commander flags and
// --help are derived from these tables.
import { dbOption } from '../config/common-options.js';
import { parseDatabaseUrl, type DatabaseConfig } from '../config/database.js';
import { option } from '../config/option-table.js';
import { identifier, timerMs, wholeNumber } from '../config/parsers.js';
import { DEFAULT_CHANNEL } from '../contract.js';

const db = dbOption;
const schema = option<string>({ flag: '--schema <name>', help: 'schema holding the workflow_engine_* tables', default: 'public', parse: identifier });
const lockTimeout = option<number>({ flag: '--lock-timeout <ms>', help: 'give up if a table stays locked this long', default: 5000, parse: timerMs });
const channel = (help: string) => option<string>({ flag: '--channel <name>', help, default: DEFAULT_CHANNEL, parse: identifier });

export const MIGRATE_OPTIONS = {
  db,
  schema,
  channel: channel('the channel the triggers NOTIFY (afc-daemon --channel must match)'),
  dryRun: option<boolean>({ flag: '--dry-run', help: 'print the SQL that would run and change nothing', default: false, parse: () => true }),
  lockTimeout,
  daemonRole: option<string[]>({
    flag: '--daemon-role <role>',
    help: "a role afc-daemon connects as: it may read the payload signing key (nothing else); repeat for several",
    default: [],
    defaultText: 'none (the daemon connects as afc\'s owner)',
    repeatable: true,
    parse: (text, label) => [identifier(text, label)],
  }),
};

export const UNINSTALL_OPTIONS = {
  db,
  schema: option<string | undefined>({ flag: '--schema <name>', help: 'only this schema', default: undefined, defaultText: 'every schema afc is installed in', parse: identifier }),
  lockTimeout,
};

export const STATUS_OPTIONS = {
  db,
  schema,
  channel: channel('the channel your daemons LISTEN on: a problem if the triggers NOTIFY another'),
  json: option<boolean>({ flag: '--json', help: 'machine-readable output', default: false, parse: () => true }),
};

export const DEMO_OPTIONS = {
  db: option<DatabaseConfig | undefined>({
    flag: '--db <url>',
    help: 'use this database (a fresh schema, dropped at the end) instead of an embedded PostgreSQL',
    default: undefined,
    defaultText: 'an embedded PostgreSQL',
    parse: parseDatabaseUrl,
  }),
  port: option<number | undefined>({ flag: '--port <port>', help: 'port for the embedded PostgreSQL', default: undefined, defaultText: 'a free one', parse: wholeNumber(1, 65535) }),
};
