-- Steward embedded registry. Records are JSON documents keyed by their natural keys; the
-- columns beside them exist only for conditions (revision) and queries (filters, ordering).
CREATE TABLE IF NOT EXISTS models (
    name TEXT PRIMARY KEY,
    owner_team TEXT NOT NULL,
    risk_tier TEXT NOT NULL,
    production_version INTEGER,
    revision INTEGER NOT NULL,
    body TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS models_owner ON models(owner_team, name);
CREATE INDEX IF NOT EXISTS models_tier ON models(risk_tier, name);
CREATE INDEX IF NOT EXISTS models_production ON models(name) WHERE production_version IS NOT NULL;

CREATE TABLE IF NOT EXISTS versions (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    stage TEXT NOT NULL,
    revision INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (name, version)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS versions_stage ON versions(stage, name);
-- The few versions with a pending retirement request (GET /v1/retirements).
CREATE INDEX IF NOT EXISTS versions_pending_retirement ON versions(name)
    WHERE json_extract(body, '$.pending_retirement') IS NOT NULL;

CREATE TABLE IF NOT EXISTS card_revisions (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    card_revision INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (name, version, card_revision)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS promotions (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    status TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    revision INTEGER NOT NULL,
    body TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS promotions_version ON promotions(name, version, requested_at);

CREATE TABLE IF NOT EXISTS reviews (
    id TEXT PRIMARY KEY,
    promotion_id TEXT NOT NULL,
    stage TEXT NOT NULL,
    status TEXT NOT NULL,
    deadline TEXT NOT NULL,
    body TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS reviews_status ON reviews(status, id);
CREATE INDEX IF NOT EXISTS reviews_due ON reviews(deadline) WHERE status = 'pending';

CREATE TABLE IF NOT EXISTS production_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    at TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS production_changes_at ON production_changes(name, at, id);

CREATE TABLE IF NOT EXISTS incidents (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    opened_at TEXT NOT NULL,
    body TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS incidents_name ON incidents(name, id);

CREATE TABLE IF NOT EXISTS principals (
    id TEXT PRIMARY KEY,
    revision INTEGER NOT NULL,
    body TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY,
    body TEXT NOT NULL
) WITHOUT ROWID;

-- The audit log: canonical event bytes exactly as hashed into the Merkle tree.
CREATE TABLE IF NOT EXISTS audit_events (
    seq INTEGER PRIMARY KEY,
    name TEXT,
    bytes BLOB NOT NULL,
    leaf_hash BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_events_name ON audit_events(name, seq);

-- Signed checkpoints: the latest one always, and one every 1024 events as history.
CREATE TABLE IF NOT EXISTS checkpoints (
    size INTEGER PRIMARY KEY,
    body TEXT NOT NULL
);

-- Governance events committed with their change (the embedded outbox).
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    detail_type TEXT NOT NULL,
    detail TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- Webhook subscriptions (the record, without its secret).
CREATE TABLE IF NOT EXISTS webhooks (
    id TEXT PRIMARY KEY,
    revision INTEGER NOT NULL,
    body TEXT NOT NULL
) WITHOUT ROWID;

-- MLflow registered models' own metadata (description, tags, free aliases), beside `models`;
-- a deleted one stays as its tombstone.
CREATE TABLE IF NOT EXISTS registered_models (
    name TEXT PRIMARY KEY,
    revision INTEGER NOT NULL,
    body TEXT NOT NULL
) WITHOUT ROWID;

-- Versions by their artifact, for matching what serving platforms report (expression indexes:
-- the queries use exactly these expressions).
CREATE INDEX IF NOT EXISTS versions_artifact_sha256 ON versions(json_extract(body, '$.artifact.sha256'));
CREATE INDEX IF NOT EXISTS versions_artifact_uri ON versions(json_extract(body, '$.artifact.uri'));

-- The serving inventory: one record per platform/environment/endpoint, by that key.
CREATE TABLE IF NOT EXISTS serving (
    key TEXT PRIMARY KEY,
    revision INTEGER NOT NULL,
    body TEXT NOT NULL
) WITHOUT ROWID;

-- Webhook signing secrets by name (the embedded Secrets port); names are never reused.
CREATE TABLE IF NOT EXISTS webhook_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- Webhook deliveries: pending ones by due time, every one by subscription.
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id TEXT PRIMARY KEY,
    webhook TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    next_attempt_at TEXT NOT NULL,
    body TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS webhook_deliveries_due
    ON webhook_deliveries(next_attempt_at) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS webhook_deliveries_recent
    ON webhook_deliveries(webhook, created_at);
