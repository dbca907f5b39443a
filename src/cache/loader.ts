// Loads action filters from PostgreSQL: every DataConditionGroup linked to the workflows through WDCG,
// each with its DataConditions, in one statement (one snapshot) for a whole batch of workflows.
// A WHEN group is linked through workflow.when_condition_group_id, not WDCG, so it is never included.
import type { Pool } from 'pg';
import type { ActionFilter } from '../model.js';
import { loadTemplate, renderFixture } from '../sql/templates.js';

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
  // Named, so each pooled connection plans it once.
  const query = { name: `afc-action-filters-${schema}`, text: renderFixture(loadTemplate('queries/action-filters.sql'), schema) };
  let queries = 0;
  return {
    get queries() {
      return queries;
    },
    async load(ids) {
      const result = new Map<number, ActionFilter[]>(ids.map((id) => [id, []]));
      if (ids.length === 0) return result;
      queries++;
      const { rows } = await pool.query<Row>({ ...query, values: [ids] });
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
