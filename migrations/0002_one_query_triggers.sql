-- afc migration 0002: each trigger resolves its workflows and builds the id list in one query
--
-- Same placeholders and design rules as 0001. Why this replaces 0001's trigger functions: the writer pays
-- for every query a trigger runs. 0001 ran four per statement (resolve the ids, measure them, chunk them,
-- notify): a single-row UPDATE with afc took 1.27x as long as without triggers (pgbench, one client,
-- statements of both kinds interleaved). Now the common case is one query plus plpgsql expressions, which
-- run without the executor; 0001's chunking query (afc_notify_ids) only runs when the ids do not fit in
-- one payload. The payloads and their bounds are unchanged: the daemon cannot tell the difference.
-- The trigger functions keep their names and are replaced in place: CREATE OR REPLACE FUNCTION takes no
-- lock on Sentry's tables, where re-pointing the triggers at one new function would take an ACCESS
-- EXCLUSIVE lock on all three during the upgrade. Hence three functions of the same shape.

-- Sends one evict payload naming `list` (sorted, comma-separated ids; NULL when the statement touched no
-- action filter), or hands over to the chunking path of 0001 when it is too long for one payload or holds
-- an id a JSON number cannot carry exactly.
CREATE OR REPLACE FUNCTION {{schema}}.afc_send(src text, list text, biggest bigint) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
  IF list IS NULL THEN
    RETURN;
  END IF;
  IF length(list) <= {{chunk_id_bytes}} AND biggest <= 9007199254740991 THEN
    PERFORM pg_catalog.pg_notify({{channel}},
      '{"v":{{payload_version}},"op":"evict","src":"' || src || '","ts":'
      || round(extract(epoch FROM clock_timestamp()) * 1000, 3)::text || ',"ids":[' || list || ']}');
  ELSE
    PERFORM {{schema}}.afc_notify_ids(src, string_to_array(list, ',')::bigint[]);
  END IF;
END
$fn$;

-- WorkflowDataConditionGroup: the row's workflow; on update both the old and the new one.
CREATE OR REPLACE FUNCTION {{schema}}.afc_wdcg_changed() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
  list text;
  biggest bigint;
BEGIN
  IF TG_OP = 'INSERT' THEN
    SELECT string_agg(w::text, ',' ORDER BY w), max(w) INTO list, biggest
      FROM (SELECT DISTINCT workflow_id FROM afc_new) AS s(w);
  ELSIF TG_OP = 'DELETE' THEN
    SELECT string_agg(w::text, ',' ORDER BY w), max(w) INTO list, biggest
      FROM (SELECT DISTINCT workflow_id FROM afc_old) AS s(w);
  ELSE
    SELECT string_agg(w::text, ',' ORDER BY w), max(w) INTO list, biggest
      FROM (SELECT workflow_id FROM afc_old UNION SELECT workflow_id FROM afc_new) AS s(w);
  END IF;
  PERFORM {{schema}}.afc_send('wdcg', list, biggest);
  RETURN NULL;
EXCEPTION WHEN OTHERS THEN
  PERFORM {{schema}}.afc_notify_failed('wdcg', SQLERRM);
  RETURN NULL;
END
$fn$;

-- DataConditionGroup: the workflows the group is linked to as an action filter (a WHEN group has none).
CREATE OR REPLACE FUNCTION {{schema}}.afc_dcg_changed() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
  list text;
  biggest bigint;
BEGIN
  IF TG_OP = 'DELETE' THEN
    SELECT string_agg(w::text, ',' ORDER BY w), max(w) INTO list, biggest
      FROM (SELECT DISTINCT l.workflow_id FROM afc_old AS g
              JOIN {{schema}}.workflow_engine_workflowdataconditiongroup AS l ON l.condition_group_id = g.id) AS s(w);
  ELSE
    SELECT string_agg(w::text, ',' ORDER BY w), max(w) INTO list, biggest
      FROM (SELECT DISTINCT l.workflow_id FROM (SELECT id FROM afc_old UNION SELECT id FROM afc_new) AS g
              JOIN {{schema}}.workflow_engine_workflowdataconditiongroup AS l ON l.condition_group_id = g.id) AS s(w);
  END IF;
  PERFORM {{schema}}.afc_send('dcg', list, biggest);
  RETURN NULL;
EXCEPTION WHEN OTHERS THEN
  PERFORM {{schema}}.afc_notify_failed('dcg', SQLERRM);
  RETURN NULL;
END
$fn$;

-- DataCondition: the workflows linked to the row's group; on update to the old and to the new group.
CREATE OR REPLACE FUNCTION {{schema}}.afc_dc_changed() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
  list text;
  biggest bigint;
BEGIN
  IF TG_OP = 'INSERT' THEN
    SELECT string_agg(w::text, ',' ORDER BY w), max(w) INTO list, biggest
      FROM (SELECT DISTINCT l.workflow_id FROM (SELECT DISTINCT condition_group_id FROM afc_new) AS g(id)
              JOIN {{schema}}.workflow_engine_workflowdataconditiongroup AS l ON l.condition_group_id = g.id) AS s(w);
  ELSIF TG_OP = 'DELETE' THEN
    SELECT string_agg(w::text, ',' ORDER BY w), max(w) INTO list, biggest
      FROM (SELECT DISTINCT l.workflow_id FROM (SELECT DISTINCT condition_group_id FROM afc_old) AS g(id)
              JOIN {{schema}}.workflow_engine_workflowdataconditiongroup AS l ON l.condition_group_id = g.id) AS s(w);
  ELSE
    SELECT string_agg(w::text, ',' ORDER BY w), max(w) INTO list, biggest
      FROM (SELECT DISTINCT l.workflow_id
              FROM (SELECT condition_group_id FROM afc_old UNION SELECT condition_group_id FROM afc_new) AS g(id)
              JOIN {{schema}}.workflow_engine_workflowdataconditiongroup AS l ON l.condition_group_id = g.id) AS s(w);
  END IF;
  PERFORM {{schema}}.afc_send('dc', list, biggest);
  RETURN NULL;
EXCEPTION WHEN OTHERS THEN
  PERFORM {{schema}}.afc_notify_failed('dc', SQLERRM);
  RETURN NULL;
END
$fn$;
