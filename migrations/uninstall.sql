-- afc uninstall: removes every object afc created in {{schema}}. The names come from src/sql/manifest.ts
-- ({{trigger_names}}, {{function_names}}), the one list that `afc status` checks too.
DO $do$
DECLARE
  r record;
BEGIN
  FOR r IN
    SELECT t.tgname, c.relname
      FROM pg_catalog.pg_trigger AS t
      JOIN pg_catalog.pg_class AS c ON c.oid = t.tgrelid
      JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
     WHERE n.nspname = {{schema_literal}} AND NOT t.tgisinternal AND t.tgname = ANY ({{trigger_names}})
  LOOP
    EXECUTE format('DROP TRIGGER %I ON %I.%I', r.tgname, {{schema_literal}}, r.relname);
  END LOOP;
  -- Every overload of each function, whatever its arguments.
  FOR r IN
    SELECT p.oid::regprocedure AS fn
      FROM pg_catalog.pg_proc AS p
      JOIN pg_catalog.pg_namespace AS n ON n.oid = p.pronamespace
     WHERE n.nspname = {{schema_literal}} AND p.proname = ANY ({{function_names}})
  LOOP
    EXECUTE format('DROP FUNCTION %s', r.fn);
  END LOOP;
END
$do$;
DROP TABLE IF EXISTS {{schema}}.afc_secret;
DROP TABLE IF EXISTS {{schema}}.afc_migrations;
