-- PostgreSQL only: several daemons (nodes) on one archive. A due check is claimed by one node for a
-- while (its lease, renewed while the check runs); a node that dies stops renewing, the lease runs out and
-- another node takes the target over. Times of leases are the database server's clock (now()), so nodes
-- whose clocks disagree still agree on who holds what.
ALTER TABLE targets ADD COLUMN lease_node text;
ALTER TABLE targets ADD COLUMN lease_until timestamptz;
CREATE INDEX targets_due ON targets(next_due_at);
-- the outbox's per-channel order: the rows of one channel, oldest first
CREATE INDEX outbox_channel ON outbox(channel_key, id) WHERE delivered_at IS NULL;
