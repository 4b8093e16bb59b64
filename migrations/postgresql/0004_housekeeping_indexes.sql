-- Housekeeping purges finished jobs, result messages and search sessions older than a retention
-- across all owners, in small chunks. These age indexes keep each chunk a range scan instead of
-- a scan of the whole table, so a chunk holds the writer for milliseconds. They span owners on
-- purpose (one column, not owner-scoped): only the cross-owner purge reads them.
CREATE INDEX jobs_finished_age ON jobs (updated_at) WHERE state IN ('done', 'failed');
CREATE INDEX result_messages_age ON result_messages (created_at);
CREATE INDEX search_sessions_age ON search_sessions (created_at);
