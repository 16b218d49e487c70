-- The first release's schema. Never edit a released migration: add a new one.
CREATE TABLE targets (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    url TEXT NOT NULL,
    current_version TEXT,
    last_check_at TEXT,
    last_status TEXT,
    last_reason TEXT,
    last_change_at TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    failing INTEGER NOT NULL DEFAULT 0,
    next_due_at TEXT,
    etag TEXT,
    last_modified TEXT,
    chain_head TEXT NOT NULL DEFAULT '',
    chain_seq INTEGER NOT NULL DEFAULT 0,
    version_seq INTEGER NOT NULL DEFAULT 0,
    change_seq INTEGER NOT NULL DEFAULT 0,
    event_seq INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE snapshots (
    id INTEGER PRIMARY KEY,
    target_id TEXT NOT NULL REFERENCES targets(id),
    url TEXT NOT NULL,
    final_url TEXT NOT NULL,
    status INTEGER NOT NULL,
    headers TEXT NOT NULL,
    body_hash TEXT NOT NULL,
    fetched_at TEXT NOT NULL,
    fetcher TEXT NOT NULL,
    config_fingerprint TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('accepted', 'rejected')),
    reason_code TEXT,
    reason TEXT
);
CREATE INDEX snapshots_target ON snapshots(target_id, id);
CREATE TABLE versions (
    id TEXT PRIMARY KEY,
    target_id TEXT NOT NULL REFERENCES targets(id),
    seq INTEGER NOT NULL,
    text_hash TEXT NOT NULL,
    snapshot_id INTEGER REFERENCES snapshots(id),
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    technical INTEGER NOT NULL,
    length INTEGER NOT NULL,
    chain_seq INTEGER NOT NULL,
    prev_hash TEXT NOT NULL,
    record_hash TEXT NOT NULL,
    UNIQUE (target_id, seq)
);
CREATE INDEX versions_text ON versions(target_id, text_hash);
CREATE TABLE changes (
    id TEXT PRIMARY KEY,
    target_id TEXT NOT NULL REFERENCES targets(id),
    seq INTEGER NOT NULL,
    from_version TEXT NOT NULL REFERENCES versions(id),
    to_version TEXT NOT NULL REFERENCES versions(id),
    detected_at TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('change', 'revert')),
    reverted_to TEXT,
    topics TEXT NOT NULL,
    severity TEXT NOT NULL,
    summary TEXT NOT NULL,
    evidence TEXT NOT NULL,
    alerted INTEGER NOT NULL DEFAULT 0,
    chain_seq INTEGER NOT NULL,
    prev_hash TEXT NOT NULL,
    record_hash TEXT NOT NULL,
    UNIQUE (target_id, seq)
);
CREATE INDEX changes_time ON changes(detected_at);
CREATE TABLE events (
    id TEXT PRIMARY KEY,
    target_id TEXT NOT NULL REFERENCES targets(id),
    kind TEXT NOT NULL CHECK (kind IN ('failing', 'recovered')),
    at TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    channel_key TEXT NOT NULL,
    alert_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    delivered_at TEXT,
    last_error TEXT,
    UNIQUE (event_id, channel_key)
);
CREATE INDEX outbox_pending ON outbox(delivered_at, next_attempt_at);
