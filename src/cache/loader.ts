// Loads action filters from PostgreSQL: every DataConditionGroup linked to the workflows through WDCG,
// each with its DataConditions, in one statement (one snapshot) for a whole batch of workflows.
// A WHEN group is linked through workflow.when_condition_group_id, not WDCG, so it is never included.
import type { Pool } from 'pg';
import { quoteIdent } from '../migrate/sql-files.js';
import type { ActionFilter } from '../store/store.js';

export interface Loader {
  load(ids: readonly number[]): Promise<Map<number, ActionFilter[]>>;
  /** Statements run so far (tests check batching with it). */
  readonly queries: number;
}

interface Row {
  workflow_id: string;
  id: string;
  logic_type: string;
  conditions: Array<{ id: string | number; type: string; comparison: unknown; condition_result: unknown }>;
}

export function createLoader(pool: Pool, schema = 'public'): Loader {
  const s = quoteIdent(schema);
  const sql = `
    SELECT l.workflow_id, g.id, g.logic_type,
           COALESCE((SELECT json_agg(json_build_object('id', c.id, 'type', c.type, 'comparison', c.comparison,
                                                      'condition_result', c.condition_result) ORDER BY c.id)
                       FROM ${s}.workflow_engine_datacondition c WHERE c.condition_group_id = g.id), '[]') AS conditions
      FROM ${s}.workflow_engine_workflowdataconditiongroup l
      JOIN ${s}.workflow_engine_dataconditiongroup g ON g.id = l.condition_group_id
     WHERE l.workflow_id = ANY($1::bigint[])
     ORDER BY l.workflow_id, g.id`;
  let queries = 0;
  return {
    get queries() {
      return queries;
    },
    async load(ids) {
      const result = new Map<number, ActionFilter[]>(ids.map((id) => [id, []]));
      if (ids.length === 0) return result;
      queries++;
      const { rows } = await pool.query<Row>(sql, [ids]);
      for (const row of rows) {
        result.get(Number(row.workflow_id))!.push({
          id: Number(row.id),
          logic_type: row.logic_type,
          conditions: row.conditions.map((c) => ({ id: Number(c.id), type: c.type, comparison: c.comparison, condition_result: c.condition_result })),
        });
      }
      return result;
    },
  };
}
