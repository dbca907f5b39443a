-- afc tracking table: which numbered migrations are applied in {{schema}}. Created before the first one.
CREATE TABLE IF NOT EXISTS {{schema}}.afc_migrations (
  version integer PRIMARY KEY,
  name text NOT NULL,
  checksum text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);
