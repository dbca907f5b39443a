-- The edits `afc demo` makes, one per "-- edit:" block, each run as one transaction. The text after
-- "-- edit:" is what the demo prints; "expect:" lists the workflows whose entries must go ("all": flush).

-- edit: a condition changed (workflow 1's event-frequency threshold) | expect: 1
UPDATE {{schema}}.workflow_engine_datacondition SET comparison = '{"value": 100, "interval": "1h"}' WHERE id = 101;

-- edit: a filter added to workflow 2 | expect: 2
INSERT INTO {{schema}}.workflow_engine_dataconditiongroup (id, logic_type, organization_id) VALUES (22, 'all', 1);
INSERT INTO {{schema}}.workflow_engine_datacondition (comparison, condition_result, type, condition_group_id)
  VALUES ('{"level": 50, "match": "gte"}', 'true', 'level', 22);
INSERT INTO {{schema}}.workflow_engine_workflowdataconditiongroup (workflow_id, condition_group_id) VALUES (2, 22);

-- edit: a bulk UPDATE of every tagged_event condition (workflows 1, 2 and 3) | expect: 1 2 3
UPDATE {{schema}}.workflow_engine_datacondition SET condition_result = 'false' WHERE type = 'tagged_event';

-- edit: a condition moved from workflow 3 to workflow 4 | expect: 3 4
UPDATE {{schema}}.workflow_engine_datacondition SET condition_group_id = 41 WHERE id = 301;

-- edit: a WHEN condition changed (not an action filter) | expect:
UPDATE {{schema}}.workflow_engine_datacondition SET comparison = '{"sample": 0.5}' WHERE id = 3;

-- edit: TRUNCATE of the conditions table | expect: all
TRUNCATE {{schema}}.workflow_engine_datacondition;
