-- MUTT PostgreSQL schema (CONTRACT §8; reference §4 with decisions D1 D12 D20 D28 W4 W31).
-- Applied by `mutt migrate` as migration 1 (src/core/migrate_sql.c embeds this exact text; a test
-- fails if they drift). The runner keeps its own bookkeeping table schema_migrations, wraps each
-- migration in one transaction and then calls mutt_ensure_partitions(3).
-- Safe to apply by hand with psql too: every object is created IF NOT EXISTS / OR REPLACE.
-- Sample rows live in conf/seed.sql (optional), never here.

-- Rules the alerter matches events against (first match by priority, then id).
CREATE TABLE IF NOT EXISTS alert_rules (
    id              SERIAL PRIMARY KEY,
    match_string    VARCHAR(255),
    trap_oid        VARCHAR(255),
    syslog_severity INT,
    match_type      VARCHAR(20)  NOT NULL DEFAULT 'contains',
    priority        INT          NOT NULL DEFAULT 100,
    prod_handling   VARCHAR(100) NOT NULL,
    dev_handling    VARCHAR(100) NOT NULL,
    team_assignment VARCHAR(100) NOT NULL,
    is_active       BOOLEAN      NOT NULL DEFAULT true,
    created_at      TIMESTAMPTZ  NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ  NOT NULL DEFAULT now(),
    CONSTRAINT chk_syslog_severity CHECK (syslog_severity IS NULL OR syslog_severity BETWEEN 0 AND 7),
    CONSTRAINT chk_match_type CHECK (match_type IN ('contains', 'regex', 'oid_prefix')),
    CONSTRAINT chk_match_criteria CHECK (match_string IS NOT NULL OR trap_oid IS NOT NULL)
);
CREATE INDEX IF NOT EXISTS idx_alert_rules_match_type ON alert_rules (match_type);
CREATE INDEX IF NOT EXISTS idx_alert_rules_is_active ON alert_rules (is_active);

-- updated_at follows every UPDATE without each writer having to remember it.
CREATE OR REPLACE FUNCTION mutt_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;
CREATE OR REPLACE TRIGGER trg_alert_rules_updated_at BEFORE UPDATE ON alert_rules
    FOR EACH ROW EXECUTE FUNCTION mutt_touch_updated_at();

-- A host listed here is "dev"; anything else is "prod".
CREATE TABLE IF NOT EXISTS development_hosts (
    hostname VARCHAR(255) PRIMARY KEY
);

-- Team routing for unhandled meta-alerts.
CREATE TABLE IF NOT EXISTS device_teams (
    hostname        VARCHAR(255) PRIMARY KEY,
    team_assignment VARCHAR(100) NOT NULL
);

-- One row per matched event (D12). Unique on (event_id, event_timestamp) so the alerter's retries
-- insert with ON CONFLICT DO NOTHING (D1, D3). No foreign key to alert_rules: a rule with history
-- can be deleted (W31). Monthly partitions plus DEFAULT (W4), maintained by mutt_ensure_partitions.
CREATE TABLE IF NOT EXISTS event_audit_log (
    id                BIGSERIAL    NOT NULL,
    event_timestamp   TIMESTAMPTZ  NOT NULL,
    event_id          TEXT         NOT NULL,
    correlation_id    TEXT,
    hostname          TEXT,
    matched_rule_id   INT,
    handling_decision TEXT,
    forwarded_to_moog BOOLEAN      NOT NULL DEFAULT false,
    raw_message       TEXT,
    created_at        TIMESTAMPTZ  NOT NULL DEFAULT now(),
    PRIMARY KEY (id, event_timestamp),
    CONSTRAINT uq_event_audit_log_event UNIQUE (event_id, event_timestamp)
) PARTITION BY RANGE (event_timestamp);
CREATE INDEX IF NOT EXISTS idx_audit_log_timestamp ON event_audit_log (event_timestamp);
CREATE INDEX IF NOT EXISTS idx_audit_log_hostname ON event_audit_log (hostname);
CREATE INDEX IF NOT EXISTS idx_audit_log_rule_id ON event_audit_log (matched_rule_id);
CREATE INDEX IF NOT EXISTS idx_audit_log_correlation_id ON event_audit_log (correlation_id)
    WHERE correlation_id IS NOT NULL;

-- Creates the DEFAULT partition and event_audit_log_YYYY_MM for the current UTC month and the
-- next months_ahead months; returns how many month partitions it created. Rows already sitting in
-- DEFAULT for a month being created are moved into it in the same transaction (D28): PostgreSQL
-- would otherwise refuse the new partition. Concurrent callers are serialised by a transaction-level
-- advisory lock, so two hosts running it at once both succeed.
CREATE OR REPLACE FUNCTION mutt_ensure_partitions(months_ahead integer DEFAULT 3) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    first_month date := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
    month_start date;
    lo timestamptz;
    hi timestamptz;
    part text;
    created integer := 0;
BEGIN
    IF months_ahead IS NULL OR months_ahead < 0 THEN
        RAISE EXCEPTION 'months_ahead must be >= 0, got %', months_ahead;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('mutt_ensure_partitions'));
    IF to_regclass('event_audit_log_default') IS NULL THEN
        CREATE TABLE event_audit_log_default PARTITION OF event_audit_log DEFAULT;
    END IF;
    FOR i IN 0..months_ahead LOOP
        month_start := (first_month + make_interval(months => i))::date;
        part := 'event_audit_log_' || to_char(month_start, 'YYYY_MM');
        CONTINUE WHEN to_regclass(part) IS NOT NULL;
        -- Bounds are UTC midnights whatever the session time zone.
        lo := month_start::timestamp AT TIME ZONE 'UTC';
        hi := (month_start + interval '1 month')::timestamp AT TIME ZONE 'UTC';
        EXECUTE format('CREATE TABLE %I (LIKE event_audit_log INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
        EXECUTE format('WITH moved AS (DELETE FROM event_audit_log_default
                                        WHERE event_timestamp >= %L AND event_timestamp < %L
                                        RETURNING *)
                        INSERT INTO %I SELECT * FROM moved', lo, hi, part);
        EXECUTE format('ALTER TABLE event_audit_log ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                       part, lo, hi);
        created := created + 1;
    END LOOP;
    RETURN created;
END
$$;

-- Every change to rules, dev hosts, teams, dynamic config, DLQ replays and backups (D20, W32, W41).
CREATE TABLE IF NOT EXISTS config_audit_log (
    id             BIGSERIAL PRIMARY KEY,
    changed_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    changed_by     TEXT        NOT NULL,
    operation      TEXT        NOT NULL,
    table_name     TEXT        NOT NULL,
    record_id      INT,
    record_key     TEXT,
    old_values     JSONB,
    new_values     JSONB,
    reason         TEXT,
    correlation_id TEXT,
    CONSTRAINT chk_config_audit_operation
        CHECK (operation IN ('CREATE', 'UPDATE', 'DELETE', 'REPLAY', 'ROLLBACK', 'RESTORE')),
    CONSTRAINT chk_config_audit_table_name
        CHECK (table_name IN ('alert_rules', 'development_hosts', 'device_teams', 'dynamic_config', 'dlq', 'backup'))
);
CREATE INDEX IF NOT EXISTS idx_config_audit_log_table_record ON config_audit_log (table_name, record_id);
CREATE INDEX IF NOT EXISTS idx_config_audit_log_table_key ON config_audit_log (table_name, record_key);
CREATE INDEX IF NOT EXISTS idx_config_audit_log_changed_at ON config_audit_log (changed_at DESC);
CREATE INDEX IF NOT EXISTS idx_config_audit_log_changed_by ON config_audit_log (changed_by);
CREATE INDEX IF NOT EXISTS idx_config_audit_log_correlation_id ON config_audit_log (correlation_id)
    WHERE correlation_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_config_audit_log_old_values ON config_audit_log USING GIN (old_values);
CREATE INDEX IF NOT EXISTS idx_config_audit_log_new_values ON config_audit_log USING GIN (new_values);

-- Migration 2: maintenance windows (issue 16 §3, D40 D42 D46). During a window the alert stage
-- audits matching events with handling_decision 'Maintenance' and forwards nothing; when it ends
-- one summary alert is forwarded unless summary is false. Deleting an active window sets ends_at
-- to the moment of the delete (the row stays, so its summary is still sent).
CREATE TABLE IF NOT EXISTS maintenance_windows (
    id               SERIAL PRIMARY KEY,
    hostname_pattern VARCHAR(255) NOT NULL,
    team             VARCHAR(100),
    starts_at        TIMESTAMPTZ  NOT NULL,
    ends_at          TIMESTAMPTZ  NOT NULL,
    reason           TEXT,
    summary          BOOLEAN      NOT NULL DEFAULT true,
    created_by       TEXT         NOT NULL,
    created_at       TIMESTAMPTZ  NOT NULL DEFAULT now(),
    CONSTRAINT chk_maintenance_windows_span CHECK (ends_at > starts_at)
);
CREATE INDEX IF NOT EXISTS idx_maintenance_windows_ends_at ON maintenance_windows (ends_at);

-- D46: the audit trail's operations and tables grow (maintenance windows, legal holds, change
-- requests and their approvals).
ALTER TABLE config_audit_log DROP CONSTRAINT IF EXISTS chk_config_audit_operation;
ALTER TABLE config_audit_log ADD CONSTRAINT chk_config_audit_operation
    CHECK (operation IN ('CREATE', 'UPDATE', 'DELETE', 'REPLAY', 'ROLLBACK', 'RESTORE',
                         'APPROVE', 'REJECT', 'EMERGENCY', 'EXPIRE'));
ALTER TABLE config_audit_log DROP CONSTRAINT IF EXISTS chk_config_audit_table_name;
ALTER TABLE config_audit_log ADD CONSTRAINT chk_config_audit_table_name
    CHECK (table_name IN ('alert_rules', 'development_hosts', 'device_teams', 'dynamic_config', 'dlq', 'backup',
                          'maintenance_windows', 'legal_holds', 'config_change_requests'));

-- Migration 3: legal holds, config-audit full-text search (issue 17).
-- A hold keeps every audit row of its table with a time in [from_ts, to_ts] (inclusive) and, when
-- set, the hostname (event_audit_log.hostname; config_audit_log.record_key) and changed_by
-- (config_audit_log only): retention neither archives nor deletes them, and keeps a monthly
-- partition holding any of them instead of dropping it.
CREATE TABLE IF NOT EXISTS legal_holds (
    id         BIGSERIAL PRIMARY KEY,
    table_name TEXT        NOT NULL,
    from_ts    TIMESTAMPTZ NOT NULL,
    to_ts      TIMESTAMPTZ NOT NULL,
    hostname   TEXT,
    changed_by TEXT,
    reason     TEXT        NOT NULL,
    created_by TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT chk_legal_holds_table CHECK (table_name IN ('config_audit_log', 'event_audit_log')),
    CONSTRAINT chk_legal_holds_range CHECK (from_ts <= to_ts)
);
CREATE INDEX IF NOT EXISTS idx_legal_holds_table ON legal_holds (table_name, from_ts, to_ts);

-- q= on /audit (D44): PostgreSQL text search over reason and both value documents. The 'simple'
-- configuration keeps host names, keys and team names whole (no stemming, no stop words).
CREATE OR REPLACE FUNCTION mutt_config_audit_tsv(reason text, old_values jsonb, new_values jsonb)
RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT to_tsvector('simple'::regconfig, coalesce(reason, '') || ' ' || coalesce(old_values::text, '') || ' ' ||
                                            coalesce(new_values::text, ''))
$$;
CREATE INDEX IF NOT EXISTS idx_config_audit_log_fts ON config_audit_log
    USING GIN (mutt_config_audit_tsv(reason, old_values, new_values));

-- Migration 4: named operators and the two-person rule (D43, D46, D47); D46's audit names came
-- with migration 2.
-- One row per write that needed a second person. `change` is the request to apply:
-- {"method","path","params":{},"body":{}} for the API, {"kind":"restore",...} for `mutt restore`.
-- status: pending -> approved | rejected | expired | failed; emergency rows were applied at once
-- and wait for an after-the-fact decision (emergency -> approved | rejected).
CREATE TABLE IF NOT EXISTS config_change_requests (
    id             BIGSERIAL PRIMARY KEY,
    requested_by   TEXT        NOT NULL,
    scope          TEXT        NOT NULL,
    change         JSONB       NOT NULL,
    justification  TEXT,
    impact         TEXT,
    rollback_plan  TEXT,
    emergency_reason TEXT,
    status         TEXT        NOT NULL DEFAULT 'pending',
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    decided_at     TIMESTAMPTZ,
    decided_by     TEXT,
    result         JSONB,
    CONSTRAINT chk_change_status
        CHECK (status IN ('pending', 'approved', 'rejected', 'expired', 'failed', 'emergency'))
);
CREATE INDEX IF NOT EXISTS idx_change_requests_status ON config_change_requests (status, created_at);
