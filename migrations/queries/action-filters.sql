-- The read-through loader: every action filter (a DataConditionGroup linked through WDCG, never the WHEN
-- group) of the workflows in $1, each with its conditions, in one statement (one snapshot).
SELECT l.workflow_id, g.id, g.logic_type,
       COALESCE((SELECT json_agg(json_build_object('id', c.id, 'type', c.type, 'comparison', c.comparison,
                                                  'condition_result', c.condition_result) ORDER BY c.id)
                   FROM {{schema}}.workflow_engine_datacondition c WHERE c.condition_group_id = g.id), '[]') AS conditions
  FROM {{schema}}.workflow_engine_workflowdataconditiongroup l
  JOIN {{schema}}.workflow_engine_dataconditiongroup g ON g.id = l.condition_group_id
 WHERE l.workflow_id = ANY($1::bigint[])
 ORDER BY l.workflow_id, g.id
