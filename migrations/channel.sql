-- The channel afc's triggers NOTIFY, as one function (`afc migrate --channel NAME`; `afc status` reads it).
-- Replacing it takes no lock on Sentry's tables, and the triggers' cached plans, which inline it, are
-- invalidated with it: the next statement notifies the new channel.
CREATE OR REPLACE FUNCTION {{schema}}.afc_channel() RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$ SELECT {{channel}}::text $fn$;
