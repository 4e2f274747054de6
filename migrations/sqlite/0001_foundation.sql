-- Foundation schema: customers and their numbers, assets, agents, interactions, complaints, DNC.
-- Timestamps are unix milliseconds (UTC); calendar dates are 'YYYY-MM-DD' text; flags are 0/1.

CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    external_id TEXT UNIQUE,
    name TEXT NOT NULL,
    tier TEXT NOT NULL DEFAULT 'C' CHECK (tier IN ('A', 'B', 'C')),
    key_account INTEGER NOT NULL DEFAULT 0,
    account_manager TEXT,
    birthday TEXT,
    timezone TEXT,
    language TEXT,
    consent_calls INTEGER NOT NULL DEFAULT 1,
    notes TEXT,
    email TEXT,
    provisional INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX customers_name ON customers (name);
CREATE INDEX customers_account_manager ON customers (account_manager);

CREATE TABLE customer_tags (
    customer_id INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    PRIMARY KEY (customer_id, tag)
);
CREATE INDEX customer_tags_tag ON customer_tags (tag);

CREATE TABLE customer_phones (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    raw TEXT NOT NULL,
    e164 TEXT,
    national TEXT,
    -- national digits reversed, so a trailing-digits match is an indexed prefix range
    rev_national TEXT,
    extension TEXT,
    kind TEXT NOT NULL DEFAULT 'other',
    is_primary INTEGER NOT NULL DEFAULT 0,
    valid INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX customer_phones_customer ON customer_phones (customer_id);
CREATE INDEX customer_phones_e164 ON customer_phones (e164);
CREATE INDEX customer_phones_national ON customer_phones (national);
CREATE INDEX customer_phones_rev ON customer_phones (rev_national);

CREATE TABLE assets (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    kind TEXT NOT NULL DEFAULT 'vehicle',
    plate TEXT,
    vin TEXT,
    model TEXT,
    purchase_date TEXT,
    last_service_date TEXT,
    service_interval_months INTEGER,
    service_interval_km INTEGER,
    mileage_km INTEGER,
    next_service_due TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX assets_customer ON assets (customer_id);
CREATE INDEX assets_next_due ON assets (next_service_due);
CREATE UNIQUE INDEX assets_vin ON assets (vin);

CREATE TABLE agents (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('agent', 'supervisor', 'admin', 'pbx')),
    status TEXT NOT NULL DEFAULT 'away',
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);

CREATE TABLE agent_extensions (
    extension TEXT PRIMARY KEY,
    agent_id INTEGER NOT NULL REFERENCES agents (id) ON DELETE CASCADE
);
CREATE INDEX agent_extensions_agent ON agent_extensions (agent_id);

CREATE TABLE tokens (
    id INTEGER PRIMARY KEY,
    agent_id INTEGER NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    -- SHA-256 of the token, hex; the token itself is shown once and never stored
    token_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER
);
CREATE INDEX tokens_agent ON tokens (agent_id);

CREATE TABLE interactions (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER REFERENCES customers (id) ON DELETE CASCADE,
    call_id TEXT,
    kind TEXT NOT NULL,
    direction TEXT,
    number_raw TEXT,
    number_e164 TEXT,
    agent_id INTEGER REFERENCES agents (id) ON DELETE SET NULL,
    started_at INTEGER NOT NULL,
    answered_at INTEGER,
    ended_at INTEGER,
    outcome TEXT,
    disposition TEXT,
    note TEXT,
    satisfaction INTEGER,
    created_at INTEGER NOT NULL
);
CREATE INDEX interactions_customer ON interactions (customer_id, started_at);
CREATE INDEX interactions_call ON interactions (call_id);
CREATE INDEX interactions_number ON interactions (number_e164, started_at);
CREATE INDEX interactions_started ON interactions (started_at);

CREATE TABLE complaints (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    summary TEXT NOT NULL,
    opened_by INTEGER REFERENCES agents (id) ON DELETE SET NULL,
    owner INTEGER REFERENCES agents (id) ON DELETE SET NULL,
    status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'in_progress', 'closed')),
    resolution TEXT,
    opened_at INTEGER NOT NULL,
    closed_at INTEGER
);
CREATE INDEX complaints_customer ON complaints (customer_id, status);

CREATE TABLE dnc (
    id INTEGER PRIMARY KEY,
    e164 TEXT UNIQUE,
    -- salted SHA-256 of an erased customer's number: blocks dialing without keeping the number
    number_hash TEXT UNIQUE,
    reason TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER
);

-- The customer an agent picked for a shared number; ranks first next time.
CREATE TABLE number_choices (
    e164 TEXT PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    agent_id INTEGER REFERENCES agents (id) ON DELETE SET NULL,
    chosen_at INTEGER NOT NULL
);

-- Every accepted call event, written before it is acknowledged, so none is lost in a crash.
CREATE TABLE call_events (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    body TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    processed_at INTEGER
);
CREATE INDEX call_events_unprocessed ON call_events (processed_at);

CREATE TABLE settings_kv (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
