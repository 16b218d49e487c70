-- The second round's schema (TEAM.md agreement 2). Rows written before it keep their meaning: every new
-- column's default is what an old row was (a live version, no provenance, no sections, no alternative).

-- where a version's text came from: our own check ("live") or an import (Open Terms Archive, Wayback);
-- for imports, when the source recorded it and its provenance (JSON: commit, capture id, ...)
ALTER TABLE versions ADD COLUMN source TEXT NOT NULL DEFAULT 'live'
    CHECK (source IN ('live', 'ota', 'wayback'));
ALTER TABLE versions ADD COLUMN recorded_at TEXT;
ALTER TABLE versions ADD COLUMN provenance TEXT;

-- which selector alternative matched (NULL: the plain `select`)
ALTER TABLE snapshots ADD COLUMN alternative TEXT;

-- which node checked the target last (several daemons on one database)
ALTER TABLE targets ADD COLUMN last_node TEXT;

-- changes: the new kinds, and the heading path of each changed passage (a JSON list, in hunk order).
-- SQLite cannot change a CHECK constraint in place: the table is rebuilt (nothing references it).
CREATE TABLE changes_v3 (
    id TEXT PRIMARY KEY,
    target_id TEXT NOT NULL REFERENCES targets(id),
    seq INTEGER NOT NULL,
    from_version TEXT NOT NULL REFERENCES versions(id),
    to_version TEXT NOT NULL REFERENCES versions(id),
    detected_at TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('change', 'revert', 'editorial', 'capture', 'imported')),
    reverted_to TEXT,
    topics TEXT NOT NULL,
    severity TEXT NOT NULL,
    summary TEXT NOT NULL,
    evidence TEXT NOT NULL,
    alerted INTEGER NOT NULL DEFAULT 0,
    chain_seq INTEGER NOT NULL,
    prev_hash TEXT NOT NULL,
    record_hash TEXT NOT NULL,
    sections TEXT NOT NULL DEFAULT '[]',
    UNIQUE (target_id, seq)
);
INSERT INTO changes_v3 (
    id, target_id, seq, from_version, to_version, detected_at, kind, reverted_to, topics, severity,
    summary, evidence, alerted, chain_seq, prev_hash, record_hash
)
SELECT
    id, target_id, seq, from_version, to_version, detected_at, kind, reverted_to, topics, severity,
    summary, evidence, alerted, chain_seq, prev_hash, record_hash
FROM changes;
DROP TABLE changes;
ALTER TABLE changes_v3 RENAME TO changes;
CREATE INDEX changes_time ON changes(detected_at);

-- the outbox's attempt log: each attempt to deliver a row, when, and how it ended ("unknown": the request
-- went out and no answer came back, so the channel may have it). Attempts made before this migration are
-- counted in outbox.attempts only.
CREATE TABLE outbox_attempts (
    id INTEGER PRIMARY KEY,
    outbox_id INTEGER NOT NULL REFERENCES outbox(id),
    at TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('delivered', 'failed', 'unknown')),
    error TEXT
);
CREATE INDEX outbox_attempts_row ON outbox_attempts(outbox_id, id);
