-- Claims take pending tasks best first (priority, then oldest): an index in that order lets the
-- claim walk the queue instead of sorting every pending task on each claim.
CREATE INDEX tasks_claim ON tasks (state, priority DESC, created_at, id);
