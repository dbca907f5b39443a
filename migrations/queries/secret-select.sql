-- The daemon's read of the signing key (needs SELECT on afc_secret: the owner, or afc migrate --daemon-role).
SELECT key FROM {{schema}}.afc_secret
