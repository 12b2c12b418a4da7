-- The PostgreSQL ledger, schema version 1: the SQLite ledger's tables.
-- Kept as it shipped: a database at version 1 is migrated by version 2.

CREATE TABLE workspace_quotas (
    workspace_id TEXT NOT NULL,
    quota_type TEXT NOT NULL,
    period TEXT NOT NULL CHECK (period IN ('day', 'month', 'total')),
    limit_value BIGINT NOT NULL CHECK (limit_value >= 0),
    PRIMARY KEY (workspace_id, quota_type, period)
);
CREATE TABLE ledger_counters (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL CHECK (value >= 0)
);
INSERT INTO ledger_counters (name, value) VALUES ('agent_runs', 0);
CREATE TABLE agent_runs (
    id BIGINT PRIMARY KEY CHECK (id > 0),
    workspace_id TEXT NOT NULL,
    job_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    day BIGINT NOT NULL,
    month BIGINT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('active', 'lapsed', 'committed', 'released', 'superseded')),
    expired BOOLEAN NOT NULL DEFAULT false,
    breached TEXT NOT NULL DEFAULT ''
);
CREATE INDEX agent_runs_by_job ON agent_runs (workspace_id, job_id);
CREATE INDEX agent_runs_active_by_expiry ON agent_runs (expires_at) WHERE state = 'active';
CREATE TABLE agent_run_amounts (
    run_id BIGINT NOT NULL REFERENCES agent_runs (id),
    kind TEXT NOT NULL,
    amount BIGINT NOT NULL CHECK (amount >= 0),
    PRIMARY KEY (run_id, kind)
);
CREATE TABLE model_usage (
    workspace_id TEXT NOT NULL,
    job_id TEXT NOT NULL,
    run_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    amount BIGINT NOT NULL CHECK (amount >= 0),
    committed_at BIGINT NOT NULL,
    day BIGINT NOT NULL,
    month BIGINT NOT NULL,
    expired BOOLEAN NOT NULL,
    PRIMARY KEY (workspace_id, job_id, kind)
);
CREATE TABLE usage_totals (
    workspace_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    period TEXT NOT NULL CHECK (period IN ('day', 'month', 'total')),
    period_index BIGINT NOT NULL,
    committed BIGINT NOT NULL CHECK (committed >= 0),
    reserved BIGINT NOT NULL CHECK (reserved >= 0),
    PRIMARY KEY (workspace_id, kind, period, period_index)
);