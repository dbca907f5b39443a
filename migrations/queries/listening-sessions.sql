-- afc status: the sessions that LISTEN on this database. PostgreSQL lists no listeners, so: afc's own
-- daemons ('afc-daemon') and relays ('afc-relay-<id>') by their application_name, any other session by
-- its last statement being a LISTEN.
SELECT pid, application_name, host(client_addr) AS client_addr, client_port, state, wait_event,
       extract(epoch FROM now() - backend_start)::float8 AS connected_s,
       extract(epoch FROM now() - xact_start)::float8 AS in_transaction_s,
       extract(epoch FROM now() - state_change)::float8 AS in_state_s
  FROM pg_catalog.pg_stat_activity
 WHERE datname = current_database() AND pid <> pg_catalog.pg_backend_pid()
   AND (application_name = 'afc-daemon' OR application_name LIKE 'afc-relay-%' OR query ILIKE 'LISTEN%')
 ORDER BY backend_start
