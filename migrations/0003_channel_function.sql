-- afc migration 0003: the channel becomes a function of its own, so `afc migrate --channel NAME` can point
-- the triggers at another channel (migrations/channel.sql replaces it) without touching any trigger.
--
-- Same placeholders and locking rule as 0002: the two functions that send are replaced in place (no lock
-- on Sentry's tables); afc_channel() is a constant SQL function, inlined into their plans, so it costs
-- the writers nothing measurable.
CREATE OR REPLACE FUNCTION {{schema}}.afc_channel() RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$ SELECT {{channel}}::text $fn$;

CREATE OR REPLACE FUNCTION {{schema}}.afc_notify_flush(src text, reason text) RETURNS void
LANGUAGE sql AS $fn$
  SELECT pg_catalog.pg_notify({{schema}}.afc_channel(),
    '{"v":{{payload_version}},"op":"flush","src":"' || src || '","ts":'
    || round(extract(epoch FROM clock_timestamp()) * 1000, 3)::text || ',"reason":"' || reason || '"}');
$fn$;

-- As in 0002: evict payloads naming `list`, cut at commas into payloads of at most {{chunk_id_bytes}}
-- bytes of ids, or one flush past {{max_chunks}} payloads or an id beyond what a JSON number carries.
CREATE OR REPLACE FUNCTION {{schema}}.afc_send(src text, list text, biggest bigint) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
  head text;
  rest text := list;
  cut int;
  channel text := {{schema}}.afc_channel();
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
    PERFORM pg_catalog.pg_notify(channel, head || left(rest, cut) || ']}');
    rest := substr(rest, cut + 2);
  END LOOP;
  PERFORM pg_catalog.pg_notify(channel, head || rest || ']}');
END
$fn$;
