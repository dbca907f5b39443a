-- afc migrate --daemon-role ROLE: the daemon's role may read the signing key, nothing more.
GRANT USAGE ON SCHEMA {{schema}} TO {{role}};
GRANT SELECT ON {{schema}}.afc_secret TO {{role}};
