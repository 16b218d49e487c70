-- Issue 15: the sentence index (search, trace, "in the policy since"), the import ledger and the log of
-- hash-chain re-links. Nothing existing changes: the index of the versions already archived is built by
-- the first writer that opens the archive (storage/sqlite.py, SqliteStorage.open).

-- each distinct sentence of a target's versions (hash: SHA-256 of its text), with the first and the last
-- version, in recording order, that held it (storage/search.py says what a sentence is)
CREATE TABLE sentences (
    id INTEGER PRIMARY KEY,
    target_id TEXT NOT NULL REFERENCES targets(id),
    hash TEXT NOT NULL,
    text TEXT NOT NULL,
    first_version TEXT NOT NULL REFERENCES versions(id),
    first_at TEXT NOT NULL,
    last_version TEXT NOT NULL REFERENCES versions(id),
    last_at TEXT NOT NULL,
    UNIQUE (target_id, hash)
);
-- the full-text index of the sentences (an external-content FTS5 table: the text is stored once, above)
CREATE VIRTUAL TABLE sentences_fts USING fts5(
    text, content = 'sentences', content_rowid = 'id', tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER sentences_indexed AFTER INSERT ON sentences BEGIN INSERT INTO sentences_fts (rowid, text) VALUES (new.id, new.text); END;
-- the sentences of each version: their ids, packed (storage/search.py, pack_ids)
CREATE TABLE version_sentences (
    version_id TEXT PRIMARY KEY REFERENCES versions(id),
    target_id TEXT NOT NULL REFERENCES targets(id),
    ids BLOB NOT NULL
);
CREATE INDEX version_sentences_target ON version_sentences(target_id);

-- what each import made of each record of its source (a commit, a capture): importing again skips them
CREATE TABLE import_ledger (
    id INTEGER PRIMARY KEY,
    target_id TEXT NOT NULL REFERENCES targets(id),
    source TEXT NOT NULL,
    ref TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('version', 'technical', 'collapsed', 'rejected')),
    version_id TEXT REFERENCES versions(id),
    reason TEXT,
    imported_at TEXT NOT NULL,
    UNIQUE (target_id, source, ref)
);

-- an import that placed records before existing ones re-linked these: the links they had before are
-- kept, so a chain head published before the import can still be recomputed (publish/evidence.py)
CREATE TABLE chain_relinks (
    id INTEGER PRIMARY KEY,
    target_id TEXT NOT NULL REFERENCES targets(id),
    at TEXT NOT NULL,
    position INTEGER NOT NULL,
    inserted INTEGER NOT NULL,
    old_head TEXT NOT NULL,
    old_count INTEGER NOT NULL
);
CREATE TABLE chain_superseded (
    id INTEGER PRIMARY KEY,
    relink_id INTEGER NOT NULL REFERENCES chain_relinks(id),
    record_id TEXT NOT NULL,
    chain_seq INTEGER NOT NULL,
    prev_hash TEXT NOT NULL,
    record_hash TEXT NOT NULL,
    UNIQUE (relink_id, chain_seq)
);
