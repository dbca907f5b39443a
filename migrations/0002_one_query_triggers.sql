-- afc migration 0002: cheaper triggers for the writers, same payloads for the daemon
--
-- Same placeholders and design rules as 0001. Why: the writer pays for every query a trigger runs.
--  * 0001 ran four queries per statement (resolve the ids, measure them, chunk them, notify). Now the
--    ids are resolved and joined into a list in one query, and the list is cut into payloads with
--    plpgsql string expressions, which run without the executor. One client, single-row UPDATE with afc
--    vs without: 1.27x -> 1.18x (pgbench, both kinds of statement interleaved in one session).
--  * An UPDATE of DataCondition read its OLD rows only to catch conditions moved to another group; for
--    a 10,000-row UPDATE that second pass was a third of the trigger's cost. A row trigger now records
--    the old group of each moved row (its WHEN clause is evaluated in C, so rows that did not move cost
--    nothing), and the statement trigger reads the NEW rows plus those groups. 10,000-row UPDATE with
--    afc vs without: 1.11x -> 1.08x.
-- The trigger functions keep their names and are replaced in place; only the new row trigger needs a
-- lock (SHARE ROW EXCLUSIVE on DataCondition, as the install did), bounded by migrate's lock_timeout.

-- Sends evict payloads naming `list` (sorted, comma-separated ids; NULL or '' when the statement touched
-- no action filter), cut at commas into payloads of at most {{chunk_id_bytes}} bytes of ids; or one flush
-- when that would take more than {{max_chunks}} payloads or an id is past what a JSON number carries exactly.
CREATE OR REPLACE FUNCTION {{schema}}.afc_send(src text, list text, biggest bigint) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
  head text;
  rest text := list;
  cut int;
BEGIN
  IF list IS NULL OR list = '' THEN
    RETURN;
  END IF;
  IF length(list) > {{chunk_id_bytes}} * {{max_chunks}} OR biggest > 9007199254740991 THEN
    PERFORM {{schema}}.afc_notify_flush(src, 'overflow');
    RETURN;
  END IF;
  head := '{"v":{{payload_version}},"op":"evict","src":"' || src || '","ts":'
    || round(extract(epoch FROM clock_timestamp()) * 1000, 3)::text || ',"ids":[';
  WHILE length(rest) > {{chunk_id_bytes}} LOOP
    -- The last comma within the first {{chunk_id_bytes}} + 1 characters ends this chunk.
    cut := {{chunk_id_bytes}} + 1 - strpos(reverse(left(rest, {{chunk_id_bytes}} + 1)), ',');
    PERFORM pg_catalog.pg_notify({{channel}}, head || left(rest, cut) || ']}');
    rest := substr(rest, cut + 2);
  END LOOP;
  PERFORM pg_catalog.pg_notify({{channel}}, head || rest || ']}');
END
$fn$;

-- A DataCondition moved to another group: its old group's workflows are stale too. Remembered for the
-- statement trigger in a transaction-local setting (a savepoint rolled back takes it back with the row).
-- Past {{chunk_id_bytes}} bytes of groups (a bulk move) it becomes 'overflow', and the statement sends a flush.
CREATE OR REPLACE FUNCTION {{schema}}.afc_dc_moved() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
  moved text := current_setting('afc.dc_moved_from', true);
BEGIN
  IF moved IS NULL OR moved = '' THEN
    moved := OLD.condition_group_id::text;
  ELSIF moved <> 'overflow' THEN
    moved := CASE WHEN length(moved) > {{chunk_id_bytes}} THEN 'overflow' ELSE moved || ',' || OLD.condition_group_id END;
  END IF;
  PERFORM pg_catalog.set_config('afc.dc_moved_from', moved, true);
  RETURN NULL;
EXCEPTION WHEN OTHERS THEN
  PERFORM {{schema}}.afc_notify_failed('dc', SQLERRM);
  RETURN NULL;
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

-- DataCondition: the workflows linked to the row's group; on update to the new group and to the old group
-- of every row afc_dc_moved saw move.
CREATE OR REPLACE FUNCTION {{schema}}.afc_dc_changed() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
  list text;
  biggest bigint;
  moved text;
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
    moved := current_setting('afc.dc_moved_from', true);
    IF moved IS NULL OR moved = '' THEN
      SELECT string_agg(w::text, ',' ORDER BY w), max(w) INTO list, biggest
        FROM (SELECT DISTINCT l.workflow_id FROM (SELECT DISTINCT condition_group_id FROM afc_new) AS g(id)
                JOIN {{schema}}.workflow_engine_workflowdataconditiongroup AS l ON l.condition_group_id = g.id) AS s(w);
    ELSE
      -- Consumed here: the next statement starts with none.
      PERFORM pg_catalog.set_config('afc.dc_moved_from', '', true);
      IF moved = 'overflow' THEN
        PERFORM {{schema}}.afc_notify_flush('dc', 'overflow');
        RETURN NULL;
      END IF;
      SELECT string_agg(w::text, ',' ORDER BY w), max(w) INTO list, biggest
        FROM (SELECT DISTINCT l.workflow_id
                FROM (SELECT condition_group_id FROM afc_new UNION SELECT unnest(string_to_array(moved, ','))::bigint) AS g(id)
                JOIN {{schema}}.workflow_engine_workflowdataconditiongroup AS l ON l.condition_group_id = g.id) AS s(w);
    END IF;
  END IF;
  PERFORM {{schema}}.afc_send('dc', list, biggest);
  RETURN NULL;
EXCEPTION WHEN OTHERS THEN
  PERFORM {{schema}}.afc_notify_failed('dc', SQLERRM);
  RETURN NULL;
END
$fn$;

CREATE TRIGGER afc_dc_move AFTER UPDATE ON {{schema}}.workflow_engine_datacondition
  FOR EACH ROW WHEN (OLD.condition_group_id IS DISTINCT FROM NEW.condition_group_id) EXECUTE FUNCTION {{schema}}.afc_dc_moved();
