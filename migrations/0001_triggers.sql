-- afc migration 0001: statement-level triggers that NOTIFY the workflows whose action filters changed
--
-- Placeholders, filled in by src/migrate/sql-files.ts from src/contract.ts and src/codec.ts:
--   {{schema}} (a quoted identifier), {{channel}} (a quoted literal), {{payload_version}},
--   {{chunk_id_bytes}}, {{max_chunks}}.
-- Design rules:
--   * one NOTIFY per statement (per chunk), never per row: every notifying transaction takes a
--     cluster-wide lock at commit, so per-row notifies would cost the writers dearly;
--   * affected workflows are resolved here, in the writer's transaction, from the transition tables;
--   * a trigger never fails the writer's statement: on any error it sends "flush all" instead.

-- Sends one evict payload per chunk of ids, or one flush when the statement touched too many workflows.
CREATE OR REPLACE FUNCTION {{schema}}.afc_notify_ids(src text, ids bigint[]) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
  ts text := round(extract(epoch FROM clock_timestamp()) * 1000, 3)::text;
  total bigint;
  biggest bigint;
  chunk record;
BEGIN
  IF ids IS NULL OR cardinality(ids) = 0 THEN
    RETURN;
  END IF;
  SELECT sum(length(id::text) + 1), max(id) INTO total, biggest FROM unnest(ids) AS id;
  -- Past the id budget, or past what a JSON number carries exactly (2^53 - 1), a flush is the only honest message.
  IF total > {{chunk_id_bytes}}::bigint * {{max_chunks}} OR biggest > 9007199254740991 THEN
    PERFORM {{schema}}.afc_notify_flush(src, 'overflow');
    RETURN;
  END IF;
  FOR chunk IN
    SELECT string_agg(id::text, ',' ORDER BY id) AS list
      FROM (SELECT id, sum(length(id::text) + 1) OVER (ORDER BY id) AS upto FROM unnest(ids) AS id) s
     GROUP BY (upto - 1) / {{chunk_id_bytes}}
  LOOP
    PERFORM pg_catalog.pg_notify({{channel}},
      '{"v":{{payload_version}},"op":"evict","src":"' || src || '","ts":' || ts || ',"ids":[' || chunk.list || ']}');
  END LOOP;
END
$fn$;

CREATE OR REPLACE FUNCTION {{schema}}.afc_notify_flush(src text, reason text) RETURNS void
LANGUAGE sql AS $fn$
  SELECT pg_catalog.pg_notify({{channel}},
    '{"v":{{payload_version}},"op":"flush","src":"' || src || '","ts":'
    || round(extract(epoch FROM clock_timestamp()) * 1000, 3)::text || ',"reason":"' || reason || '"}');
$fn$;

-- Last resort of every trigger: a flush is always correct, and the writer's statement must go through.
CREATE OR REPLACE FUNCTION {{schema}}.afc_notify_failed(src text, message text) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
  RAISE WARNING 'afc: trigger on % failed (%); sending flush all instead', src, message;
  PERFORM {{schema}}.afc_notify_flush(src, 'error');
EXCEPTION WHEN OTHERS THEN
  RAISE WARNING 'afc: could not send flush for % either: %', src, SQLERRM;
END
$fn$;

-- WorkflowDataConditionGroup: the row's workflow; on update both the old and the new one.
CREATE OR REPLACE FUNCTION {{schema}}.afc_wdcg_changed() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
  ids bigint[];
BEGIN
  IF TG_OP = 'INSERT' THEN
    SELECT array_agg(DISTINCT workflow_id) INTO ids FROM afc_new;
  ELSIF TG_OP = 'DELETE' THEN
    SELECT array_agg(DISTINCT workflow_id) INTO ids FROM afc_old;
  ELSE
    SELECT array_agg(w) INTO ids
      FROM (SELECT workflow_id FROM afc_old UNION SELECT workflow_id FROM afc_new) AS s(w);
  END IF;
  PERFORM {{schema}}.afc_notify_ids('wdcg', ids);
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
  ids bigint[];
BEGIN
  IF TG_OP = 'DELETE' THEN
    SELECT array_agg(DISTINCT l.workflow_id) INTO ids
      FROM afc_old AS g JOIN {{schema}}.workflow_engine_workflowdataconditiongroup AS l ON l.condition_group_id = g.id;
  ELSE
    SELECT array_agg(DISTINCT l.workflow_id) INTO ids
      FROM (SELECT id FROM afc_old UNION SELECT id FROM afc_new) AS g
      JOIN {{schema}}.workflow_engine_workflowdataconditiongroup AS l ON l.condition_group_id = g.id;
  END IF;
  PERFORM {{schema}}.afc_notify_ids('dcg', ids);
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
  ids bigint[];
BEGIN
  IF TG_OP = 'INSERT' THEN
    SELECT array_agg(DISTINCT l.workflow_id) INTO ids
      FROM (SELECT DISTINCT condition_group_id FROM afc_new) AS c
      JOIN {{schema}}.workflow_engine_workflowdataconditiongroup AS l ON l.condition_group_id = c.condition_group_id;
  ELSIF TG_OP = 'DELETE' THEN
    SELECT array_agg(DISTINCT l.workflow_id) INTO ids
      FROM (SELECT DISTINCT condition_group_id FROM afc_old) AS c
      JOIN {{schema}}.workflow_engine_workflowdataconditiongroup AS l ON l.condition_group_id = c.condition_group_id;
  ELSE
    SELECT array_agg(DISTINCT l.workflow_id) INTO ids
      FROM (SELECT condition_group_id FROM afc_old UNION SELECT condition_group_id FROM afc_new) AS c
      JOIN {{schema}}.workflow_engine_workflowdataconditiongroup AS l ON l.condition_group_id = c.condition_group_id;
  END IF;
  PERFORM {{schema}}.afc_notify_ids('dc', ids);
  RETURN NULL;
EXCEPTION WHEN OTHERS THEN
  PERFORM {{schema}}.afc_notify_failed('dc', SQLERRM);
  RETURN NULL;
END
$fn$;

CREATE OR REPLACE FUNCTION {{schema}}.afc_truncated() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
  PERFORM {{schema}}.afc_notify_flush(TG_ARGV[0], 'truncate');
  RETURN NULL;
EXCEPTION WHEN OTHERS THEN
  PERFORM {{schema}}.afc_notify_failed(TG_ARGV[0], SQLERRM);
  RETURN NULL;
END
$fn$;

-- PostgreSQL allows transition tables only on single-event triggers, hence one trigger per event.
CREATE TRIGGER afc_wdcg_insert AFTER INSERT ON {{schema}}.workflow_engine_workflowdataconditiongroup
  REFERENCING NEW TABLE AS afc_new FOR EACH STATEMENT EXECUTE FUNCTION {{schema}}.afc_wdcg_changed();
CREATE TRIGGER afc_wdcg_update AFTER UPDATE ON {{schema}}.workflow_engine_workflowdataconditiongroup
  REFERENCING OLD TABLE AS afc_old NEW TABLE AS afc_new FOR EACH STATEMENT EXECUTE FUNCTION {{schema}}.afc_wdcg_changed();
CREATE TRIGGER afc_wdcg_delete AFTER DELETE ON {{schema}}.workflow_engine_workflowdataconditiongroup
  REFERENCING OLD TABLE AS afc_old FOR EACH STATEMENT EXECUTE FUNCTION {{schema}}.afc_wdcg_changed();
CREATE TRIGGER afc_wdcg_truncate AFTER TRUNCATE ON {{schema}}.workflow_engine_workflowdataconditiongroup
  FOR EACH STATEMENT EXECUTE FUNCTION {{schema}}.afc_truncated('wdcg');

CREATE TRIGGER afc_dcg_update AFTER UPDATE ON {{schema}}.workflow_engine_dataconditiongroup
  REFERENCING OLD TABLE AS afc_old NEW TABLE AS afc_new FOR EACH STATEMENT EXECUTE FUNCTION {{schema}}.afc_dcg_changed();
CREATE TRIGGER afc_dcg_delete AFTER DELETE ON {{schema}}.workflow_engine_dataconditiongroup
  REFERENCING OLD TABLE AS afc_old FOR EACH STATEMENT EXECUTE FUNCTION {{schema}}.afc_dcg_changed();
CREATE TRIGGER afc_dcg_truncate AFTER TRUNCATE ON {{schema}}.workflow_engine_dataconditiongroup
  FOR EACH STATEMENT EXECUTE FUNCTION {{schema}}.afc_truncated('dcg');

CREATE TRIGGER afc_dc_insert AFTER INSERT ON {{schema}}.workflow_engine_datacondition
  REFERENCING NEW TABLE AS afc_new FOR EACH STATEMENT EXECUTE FUNCTION {{schema}}.afc_dc_changed();
CREATE TRIGGER afc_dc_update AFTER UPDATE ON {{schema}}.workflow_engine_datacondition
  REFERENCING OLD TABLE AS afc_old NEW TABLE AS afc_new FOR EACH STATEMENT EXECUTE FUNCTION {{schema}}.afc_dc_changed();
CREATE TRIGGER afc_dc_delete AFTER DELETE ON {{schema}}.workflow_engine_datacondition
  REFERENCING OLD TABLE AS afc_old FOR EACH STATEMENT EXECUTE FUNCTION {{schema}}.afc_dc_changed();
CREATE TRIGGER afc_dc_truncate AFTER TRUNCATE ON {{schema}}.workflow_engine_datacondition
  FOR EACH STATEMENT EXECUTE FUNCTION {{schema}}.afc_truncated('dc');
