-- The targets that failed their last check(s): the daemon's status line counts them every second. A partial
-- index holds only those rows, so the count reads the failing few instead of every target's row.
CREATE INDEX targets_failing ON targets(id) WHERE consecutive_failures > 0;
