-- afc uninstall: removes every object any afc migration created in {{schema}}. Keep it in step with
-- the numbered migrations; test/migrate.test.ts checks that no afc_* trigger, function or table survives.
DO $do$
DECLARE
  r record;
BEGIN
  FOR r IN
    SELECT t.tgname, c.relname
      FROM pg_catalog.pg_trigger AS t
      JOIN pg_catalog.pg_class AS c ON c.oid = t.tgrelid
      JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
     WHERE n.nspname = {{schema_literal}} AND NOT t.tgisinternal
       AND t.tgname = ANY (ARRAY['afc_wdcg_insert', 'afc_wdcg_update', 'afc_wdcg_delete', 'afc_wdcg_truncate',
                                 'afc_dcg_update', 'afc_dcg_delete', 'afc_dcg_truncate',
                                 'afc_dc_insert', 'afc_dc_update', 'afc_dc_delete', 'afc_dc_truncate', 'afc_dc_move'])
  LOOP
    EXECUTE format('DROP TRIGGER %I ON %I.%I', r.tgname, {{schema_literal}}, r.relname);
  END LOOP;
END
$do$;
DROP FUNCTION IF EXISTS {{schema}}.afc_wdcg_changed();
DROP FUNCTION IF EXISTS {{schema}}.afc_dcg_changed();
DROP FUNCTION IF EXISTS {{schema}}.afc_dc_changed();
DROP FUNCTION IF EXISTS {{schema}}.afc_truncated();
DROP FUNCTION IF EXISTS {{schema}}.afc_send(text, text, bigint);
DROP FUNCTION IF EXISTS {{schema}}.afc_dc_moved();
DROP FUNCTION IF EXISTS {{schema}}.afc_notify_ids(text, bigint[]);
DROP FUNCTION IF EXISTS {{schema}}.afc_notify_failed(text, text);
DROP FUNCTION IF EXISTS {{schema}}.afc_notify_flush(text, text);
DROP TABLE IF EXISTS {{schema}}.afc_migrations;
