-- Flush by enumeration: one page of workflow ids, in id order, after the last id of the previous page.
-- $1: the last id seen (0 to start), $2: the page size. Keyset paging: each page is an index range scan.
-- Ordered by the bigint column, not by the text it is sent as (w.id, not the output's "id").
SELECT w.id::text AS id FROM {{schema}}.workflow_engine_workflow AS w WHERE w.id > $1 ORDER BY w.id LIMIT $2
