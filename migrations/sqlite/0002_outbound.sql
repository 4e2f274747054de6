-- Outbound: campaigns, tasks (calls owed to customers) and their dial attempts.

CREATE TABLE campaigns (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    script TEXT,
    filter TEXT NOT NULL DEFAULT '{}',
    mode TEXT NOT NULL DEFAULT 'preview' CHECK (mode IN ('preview', 'progressive')),
    max_concurrent INTEGER NOT NULL DEFAULT 1,
    calls_per_minute INTEGER NOT NULL DEFAULT 10,
    window_start TEXT,
    window_end TEXT,
    starts_at INTEGER,
    ends_at INTEGER,
    state TEXT NOT NULL DEFAULT 'draft' CHECK (state IN ('draft', 'running', 'paused', 'stopped', 'finished')),
    created_by INTEGER REFERENCES agents (id) ON DELETE SET NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE tasks (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    customer_id INTEGER REFERENCES customers (id) ON DELETE CASCADE,
    number_e164 TEXT NOT NULL,
    campaign_id INTEGER REFERENCES campaigns (id) ON DELETE CASCADE,
    not_before INTEGER NOT NULL,
    deadline INTEGER,
    priority INTEGER NOT NULL DEFAULT 0,
    preferred_agent_id INTEGER REFERENCES agents (id) ON DELETE SET NULL,
    -- after this time any agent may take a task that prefers one agent
    pool_after INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL DEFAULT 5,
    state TEXT NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'reserved', 'dialing', 'connected', 'done', 'failed', 'cancelled', 'expired')),
    outcome TEXT,
    note TEXT,
    reason TEXT,
    -- the same task is never created twice: e.g. one reminder per asset per due cycle
    idempotency_key TEXT UNIQUE,
    merged_count INTEGER NOT NULL DEFAULT 0,
    lease_until INTEGER,
    -- bumped by every claim; a transition names the fence it holds
    fence INTEGER NOT NULL DEFAULT 0,
    assigned_agent_id INTEGER REFERENCES agents (id) ON DELETE SET NULL,
    satisfaction INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    done_at INTEGER
);
CREATE INDEX tasks_due ON tasks (state, not_before);
CREATE INDEX tasks_customer ON tasks (customer_id, state);
CREATE INDEX tasks_campaign ON tasks (campaign_id, state);

CREATE TABLE task_attempts (
    id INTEGER PRIMARY KEY,
    task_id INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    fence INTEGER NOT NULL,
    agent_id INTEGER REFERENCES agents (id) ON DELETE SET NULL,
    number_e164 TEXT NOT NULL,
    dialer TEXT,
    state TEXT NOT NULL DEFAULT 'dialing' CHECK (state IN ('dialing', 'connected', 'done', 'unknown')),
    outcome TEXT,
    cause TEXT,
    started_at INTEGER NOT NULL,
    ended_at INTEGER
);
CREATE INDEX task_attempts_task ON task_attempts (task_id);
CREATE INDEX task_attempts_number ON task_attempts (number_e164, started_at);
CREATE INDEX task_attempts_open ON task_attempts (state);
