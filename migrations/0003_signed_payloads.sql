-- afc migration 0003: the channel as a function of its own, signed payloads (payload v2), and triggers that
-- run with afc's own rights
--
-- The channel: afc_channel() returns it, so `afc migrate --channel NAME` can point the triggers at another
-- channel (migrations/channel.sql replaces just that function) without touching any trigger. It is a
-- constant SQL function, inlined into the plans of the functions that send, so it costs the writers nothing
-- measurable; the plans that inlined it are invalidated when it is replaced.
--
-- Any role with CONNECT may NOTIFY afc's channel: forged flushes and evictions cost every daemon work.
-- From this migration on, every payload carries an HMAC-SHA256 of itself, keyed by a per-database secret
-- in {{schema}}.afc_secret that only afc's owner (the role that ran afc migrate) and the daemon roles it
-- was told about (afc migrate --daemon-role) can read; the daemon rejects payloads whose signature does
-- not verify, and v1 payloads, once it has the key.
--   * The trigger functions become SECURITY DEFINER with a fixed search_path: they run as afc's owner
--     whoever writes, so they can read the secret (and WDCG: writers need no SELECT on it any more),
--     and nothing a writer puts on its search_path can be called in their place.
--   * The functions that build and send payloads are not executable by PUBLIC: a role cannot have afc
--     sign a payload of its choosing. afc_notify_ids (0001's, unused since 0002) is dropped.
--   * One function, afc_emit, builds every payload: {"v":{{signed_payload_version}},"op":…,"src":…,"ts":…,"x":<txid>,<tail>,"sig":"<hex>"},
--     where sig = HMAC-SHA256(key, the payload without its ,"sig":"…" part). The HMAC is two sha256()
--     calls over the key's inner and outer pads, stored precomputed (no pgcrypto needed). The writer's
--     transaction id makes every payload unique (two commits with the same ids in the same microsecond
--     must not look like a replay of one another to the daemon).
-- Locking as in 0002: functions are replaced or altered in place, no lock on Sentry's tables. The key
-- itself is written by afc migrate (migrations/queries/secret-insert.sql), never into this file.
CREATE OR REPLACE FUNCTION {{schema}}.afc_channel() RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$ SELECT {{channel}}::text $fn$;

CREATE TABLE IF NOT EXISTS {{schema}}.afc_secret (
  id int PRIMARY KEY DEFAULT 1 CHECK (id = 1),
  key bytea NOT NULL,
  k_ipad bytea NOT NULL,
  k_opad bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON {{schema}}.afc_secret FROM PUBLIC;

-- Builds, signs and sends one payload. Runs inside the (SECURITY DEFINER) trigger functions only.
CREATE OR REPLACE FUNCTION {{schema}}.afc_emit(src text, op text, tail text) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
  body text := '{"v":{{signed_payload_version}},"op":"' || op || '","src":"' || src || '","ts":'
    || round(extract(epoch FROM clock_timestamp()) * 1000, 3)::text || ',"x":' || pg_catalog.txid_current()::text || ',' || tail;
  s record;
BEGIN
  SELECT k_ipad, k_opad INTO STRICT s FROM {{schema}}.afc_secret;
  PERFORM pg_catalog.pg_notify({{schema}}.afc_channel(), body || ',"sig":"'
    || pg_catalog.encode(pg_catalog.sha256(s.k_opad || pg_catalog.sha256(s.k_ipad || pg_catalog.convert_to(body || '}', 'UTF8'))), 'hex')
    || '"}');
END
$fn$;

CREATE OR REPLACE FUNCTION {{schema}}.afc_notify_flush(src text, reason text) RETURNS void
LANGUAGE sql AS $fn$
  SELECT {{schema}}.afc_emit(src, 'flush', '"reason":"' || reason || '"');
$fn$;

-- As in 0002: evict payloads naming `list`, cut at commas into payloads of at most {{chunk_id_bytes}}
-- bytes of ids, or one flush past {{max_chunks}} payloads or an id beyond what a JSON number carries.
CREATE OR REPLACE FUNCTION {{schema}}.afc_send(src text, list text, biggest bigint) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
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
  WHILE length(rest) > {{chunk_id_bytes}} LOOP
    -- The last comma within the first {{chunk_id_bytes}} + 1 characters ends this chunk.
    cut := {{chunk_id_bytes}} + 1 - strpos(reverse(left(rest, {{chunk_id_bytes}} + 1)), ',');
    PERFORM {{schema}}.afc_emit(src, 'evict', '"ids":[' || left(rest, cut) || ']');
    rest := substr(rest, cut + 2);
  END LOOP;
  PERFORM {{schema}}.afc_emit(src, 'evict', '"ids":[' || rest || ']');
END
$fn$;

DROP FUNCTION IF EXISTS {{schema}}.afc_notify_ids(text, bigint[]);

ALTER FUNCTION {{schema}}.afc_wdcg_changed() SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION {{schema}}.afc_dcg_changed() SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION {{schema}}.afc_dc_changed() SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION {{schema}}.afc_dc_moved() SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION {{schema}}.afc_truncated() SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

REVOKE EXECUTE ON FUNCTION {{schema}}.afc_emit(text, text, text), {{schema}}.afc_notify_flush(text, text),
  {{schema}}.afc_send(text, text, bigint), {{schema}}.afc_notify_failed(text, text),
  {{schema}}.afc_wdcg_changed(), {{schema}}.afc_dcg_changed(), {{schema}}.afc_dc_changed(),
  {{schema}}.afc_dc_moved(), {{schema}}.afc_truncated() FROM PUBLIC;
