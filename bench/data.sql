-- Benchmark data in {{schema}}: {{workflows}} workflows, each with a WHEN group of 1 condition and 2
-- action-filter groups of 3 conditions each. Group ids: WHEN = 3w-2, filters = 3w-1 and 3w.
INSERT INTO {{schema}}.workflow_engine_dataconditiongroup (id, logic_type, organization_id)
  SELECT g, CASE WHEN g % 3 = 1 THEN 'any-short' ELSE 'all' END, 1 FROM generate_series(1, 3 * {{workflows}}) g;
INSERT INTO {{schema}}.workflow_engine_workflow (id, name, organization_id, when_condition_group_id)
  SELECT w, 'bench', 1, 3 * w - 2 FROM generate_series(1, {{workflows}}) w;
INSERT INTO {{schema}}.workflow_engine_workflowdataconditiongroup (workflow_id, condition_group_id)
  SELECT w, 3 * w - k FROM generate_series(1, {{workflows}}) w, (VALUES (0), (1)) AS f(k) ORDER BY w, k;
-- Conditions in group order, so a contiguous id range covers a contiguous run of workflows.
INSERT INTO {{schema}}.workflow_engine_datacondition (comparison, condition_result, type, condition_group_id)
  SELECT '{"value": 1}', 'true', 'eq', g FROM generate_series(1, 3 * {{workflows}}) g, generate_series(1, 3) c
   WHERE g % 3 <> 1 OR c = 1 ORDER BY g, c;
SELECT setval(pg_get_serial_sequence('{{schema}}.workflow_engine_dataconditiongroup', 'id'), 3 * {{workflows}});
SELECT setval(pg_get_serial_sequence('{{schema}}.workflow_engine_workflow', 'id'), {{workflows}});
ANALYZE {{schema}}.workflow_engine_dataconditiongroup, {{schema}}.workflow_engine_workflow,
        {{schema}}.workflow_engine_workflowdataconditiongroup, {{schema}}.workflow_engine_datacondition;
