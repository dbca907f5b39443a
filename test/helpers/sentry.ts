// Builds Sentry-shaped rows for tests: workflows with action filters (IF groups linked through WDCG) and an
// optional WHEN group, which is not an action filter.
import type pg from 'pg';
import { migrate } from '../../src/migrate/migrator.js';
import { quoteIdent } from '../../src/sql/quote.js';
import { connect, createSentrySchema, createTestDatabase, type TestContext } from './pg.js';

export interface WorkflowRows {
  id: number;
  /** Action-filter group ids, in creation order. */
  groups: number[];
  /** Condition ids per action-filter group. */
  conditions: Map<number, number[]>;
  whenGroup: number;
  whenConditions: number[];
}

export class Sentry {
  readonly s: string;
  constructor(
    readonly client: pg.Client,
    schema = 'public',
  ) {
    this.s = quoteIdent(schema);
  }

  table(name: 'workflow' | 'dataconditiongroup' | 'workflowdataconditiongroup' | 'datacondition'): string {
    return `${this.s}.workflow_engine_${name}`;
  }

  async one(sql: string, params: unknown[] = []): Promise<number> {
    const { rows } = await this.client.query<{ id: string }>(sql, params);
    return Number(rows[0].id);
  }

  async group(logicType = 'any'): Promise<number> {
    return this.one(`INSERT INTO ${this.table('dataconditiongroup')} (logic_type, organization_id) VALUES ($1, 1) RETURNING id`, [logicType]);
  }

  async condition(groupId: number, type = 'eq'): Promise<number> {
    return this.one(
      `INSERT INTO ${this.table('datacondition')} (comparison, condition_result, type, condition_group_id)
       VALUES ('{"value": 1}', 'true', $1, $2) RETURNING id`,
      [type, groupId],
    );
  }

  async link(workflowId: number, groupId: number): Promise<number> {
    return this.one(
      `INSERT INTO ${this.table('workflowdataconditiongroup')} (workflow_id, condition_group_id) VALUES ($1, $2) RETURNING id`,
      [workflowId, groupId],
    );
  }

  /** A workflow with one action filter per entry of `filters` (its number of conditions) and a WHEN group. */
  async workflow(filters: number[] = [1], whenConditions = 1): Promise<WorkflowRows> {
    const whenGroup = await this.group('any-short');
    const id = await this.one(
      `INSERT INTO ${this.table('workflow')} (name, organization_id, when_condition_group_id) VALUES ('w', 1, $1) RETURNING id`,
      [whenGroup],
    );
    const rows: WorkflowRows = { id, groups: [], conditions: new Map(), whenGroup, whenConditions: [] };
    for (let i = 0; i < whenConditions; i++) rows.whenConditions.push(await this.condition(whenGroup));
    for (const count of filters) {
      const group = await this.group('all');
      await this.link(id, group);
      rows.groups.push(group);
      const ids: number[] = [];
      for (let i = 0; i < count; i++) ids.push(await this.condition(group));
      rows.conditions.set(group, ids);
    }
    return rows;
  }
}

/** A database of this test file's own with Sentry's tables in `schema` and afc migrated there. */
export async function migratedSentryDatabase(t: TestContext, label: string, schema = 'public'): Promise<{ url: string; db: pg.Client; sentry: Sentry }> {
  const url = await createTestDatabase(t, label);
  const db = await connect(t, url);
  await createSentrySchema(db, schema);
  await migrate(db, { schema, dryRun: false, lockTimeoutMs: 5000 });
  return { url, db, sentry: new Sentry(db, schema) };
}
