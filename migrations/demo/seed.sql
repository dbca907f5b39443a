-- afc demo data in {{schema}}: four workflows, each with a WHEN group (ids 1-4, not an action filter)
-- and one or two action filters (ids 11+).
INSERT INTO {{schema}}.workflow_engine_dataconditiongroup (id, logic_type, organization_id) VALUES
  (1, 'any-short', 1), (2, 'any-short', 1), (3, 'any-short', 1), (4, 'any-short', 1),
  (11, 'all', 1), (12, 'any', 1), (21, 'all', 1), (31, 'all', 1), (41, 'any', 1);
INSERT INTO {{schema}}.workflow_engine_workflow (id, name, organization_id, when_condition_group_id) VALUES
  (1, 'Page on-call for new errors', 1, 1), (2, 'Slack on regressions', 1, 2),
  (3, 'Email digest', 1, 3), (4, 'Jira ticket for high volume', 1, 4);
INSERT INTO {{schema}}.workflow_engine_workflowdataconditiongroup (workflow_id, condition_group_id) VALUES
  (1, 11), (1, 12), (2, 21), (3, 31), (4, 41);
INSERT INTO {{schema}}.workflow_engine_datacondition (id, comparison, condition_result, type, condition_group_id) VALUES
  (1, '{}', 'true', 'first_seen_event', 1), (2, '{}', 'true', 'regression_event', 2),
  (3, '{}', 'true', 'every_event', 3), (4, '{}', 'true', 'every_event', 4),
  (101, '{"value": 50, "interval": "1h"}', 'true', 'event_frequency_count', 11),
  (102, '{"key": "environment", "match": "eq", "value": "production"}', 'true', 'tagged_event', 11),
  (103, '{"level": 40, "match": "gte"}', 'true', 'level', 12),
  (201, '{"key": "release", "match": "is_set"}', 'true', 'tagged_event', 21),
  (301, '{"value": 10, "interval": "1d"}', 'true', 'event_frequency_count', 31),
  (302, '{"key": "team", "match": "eq", "value": "web"}', 'true', 'tagged_event', 31),
  (401, '{"value": 1000, "interval": "1h"}', 'true', 'event_frequency_count', 41);
SELECT setval(pg_get_serial_sequence('{{schema}}.workflow_engine_dataconditiongroup', 'id'), 1000),
       setval(pg_get_serial_sequence('{{schema}}.workflow_engine_workflow', 'id'), 1000),
       setval(pg_get_serial_sequence('{{schema}}.workflow_engine_workflowdataconditiongroup', 'id'), 1000),
       setval(pg_get_serial_sequence('{{schema}}.workflow_engine_datacondition', 'id'), 1000);
