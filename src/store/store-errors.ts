// A store that answers but refuses what afc needs (a database index it does not have, a wrong password,
// an ACL without the entry pattern) is misconfigured, not down: retrying will not fix it. Such errors are
// told apart here so the daemon can fail its start (exit 1) or report not-ready with the server's words.
import { AfcError } from '../errors.js';

export type ConfigErrorKind = 'auth' | 'acl' | 'database';

export class StoreConfigError extends AfcError {
  override name = 'StoreConfigError';
  constructor(
    message: string,
    readonly kind: ConfigErrorKind = 'database',
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** The configuration error `error` reports (a server reply), or undefined for anything else (an outage). */
export function configErrorOf(error: Error, where: string): StoreConfigError | undefined {
  const text = error.message;
  if (/^(WRONGPASS|NOAUTH)\b/.test(text) || /invalid username-password|Authentication required/i.test(text)) {
    return new StoreConfigError(`${where} refused the credentials: ${text}`, 'auth', { cause: error });
  }
  if (/^NOPERM\b/.test(text)) return new StoreConfigError(`${where} refused a command by ACL: ${text}`, 'acl', { cause: error });
  if (/DB index is out of range|invalid DB index/i.test(text)) return new StoreConfigError(text, 'database', { cause: error });
  return undefined;
}
