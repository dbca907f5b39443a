-- afc status, when the NOTIFY queue fills: the sessions that may hold it back. A listening session
-- consumes notifications only when it is idle outside a transaction and its client reads; PostgreSQL does
-- not say which sessions LISTEN, so every session of this database that is in a transaction or blocked
-- writing to its client is a candidate, the longest first.
SELECT pid, application_name, host(client_addr) AS client_addr, client_port, state, wait_event,
       extract(epoch FROM now() - backend_start)::float8 AS connected_s,
       extract(epoch FROM now() - xact_start)::float8 AS in_transaction_s,
       extract(epoch FROM now() - state_change)::float8 AS in_state_s
  FROM pg_catalog.pg_stat_activity
 WHERE datname = current_database() AND pid <> pg_catalog.pg_backend_pid() AND backend_type = 'client backend'
   AND (xact_start IS NOT NULL OR wait_event = 'ClientWrite')
 ORDER BY coalesce(xact_start, state_change)
 LIMIT 5
