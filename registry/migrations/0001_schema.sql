-- rtscore registry schema: models, versions, bundles, environments, deployments, evaluations,
-- api tokens, scorer membership and the append-only event log.

CREATE TABLE environments (
    name text PRIMARY KEY,
    position integer NOT NULL UNIQUE,
    -- champion here needs a passing evaluation and an approver other than the author
    gated boolean NOT NULL DEFAULT false
);
INSERT INTO environments (name, position, gated) VALUES
    ('integration', 1, false), ('qa', 2, false), ('production', 3, true);

CREATE TABLE models (
    id bigserial PRIMARY KEY,
    name text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$'),
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text NOT NULL
);

CREATE TABLE bundles (
    sha256 text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size bigint NOT NULL CHECK (size >= 0),
    store text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- bytes of bundles kept by the Postgres artifact store
CREATE TABLE bundle_chunks (
    sha256 text NOT NULL,
    seq integer NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (sha256, seq)
);

CREATE TABLE versions (
    id bigserial PRIMARY KEY,
    model_id bigint NOT NULL REFERENCES models (id),
    version bigint NOT NULL CHECK (version > 0),
    sha256 text NOT NULL REFERENCES bundles (sha256),
    input_schema jsonb NOT NULL,
    output_schema jsonb NOT NULL,
    bundle_meta jsonb NOT NULL,
    canary_frame jsonb,
    canary_expected jsonb,
    metrics jsonb NOT NULL DEFAULT '{}',
    tags jsonb NOT NULL DEFAULT '{}',
    author text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (model_id, version),
    UNIQUE (model_id, sha256)
);

CREATE SEQUENCE deployment_revision;

CREATE TABLE deployments (
    id bigserial PRIMARY KEY,
    model_id bigint NOT NULL REFERENCES models (id),
    version_id bigint NOT NULL REFERENCES versions (id),
    environment text NOT NULL REFERENCES environments (name),
    pool text NOT NULL,
    role text NOT NULL CHECK (role IN ('shadow', 'champion', 'retired')),
    traffic_share double precision NOT NULL DEFAULT 1 CHECK (traffic_share > 0 AND traffic_share <= 1),
    reason text NOT NULL,
    -- when this version last stopped being champion here: rollback re-promotes the latest one
    last_champion_at timestamptz,
    revision bigint NOT NULL DEFAULT nextval('deployment_revision'),
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text NOT NULL,
    UNIQUE (version_id, environment)
);
-- at most one champion per model and environment, whatever the code does
CREATE UNIQUE INDEX deployments_one_champion ON deployments (model_id, environment) WHERE role = 'champion';
CREATE INDEX deployments_pool ON deployments (environment, pool);

CREATE TABLE evaluations (
    id bigserial PRIMARY KEY,
    model_id bigint NOT NULL REFERENCES models (id),
    candidate_id bigint NOT NULL REFERENCES versions (id),
    champion_id bigint REFERENCES versions (id),
    environment text NOT NULL REFERENCES environments (name),
    sample_size bigint NOT NULL CHECK (sample_size >= 0),
    agreement double precision NOT NULL CHECK (agreement >= 0 AND agreement <= 1),
    score_distance double precision NOT NULL CHECK (score_distance >= 0),
    candidate_latency_p99_ms double precision NOT NULL DEFAULT 0,
    champion_latency_p99_ms double precision NOT NULL DEFAULT 0,
    passed boolean NOT NULL,
    verdict text NOT NULL,
    notes text NOT NULL DEFAULT '',
    recorded_by text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX evaluations_candidate ON evaluations (candidate_id, environment);

CREATE TABLE api_tokens (
    id bigserial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    role text NOT NULL CHECK (role IN ('admin', 'author', 'approver', 'service')),
    token_sha256 text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

CREATE TABLE members (
    environment text NOT NULL REFERENCES environments (name),
    pool text NOT NULL,
    endpoint text NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (environment, pool, endpoint)
);

CREATE TABLE events (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor text NOT NULL,
    action text NOT NULL,
    model text,
    version bigint,
    environment text,
    pool text,
    reason text NOT NULL DEFAULT '',
    before jsonb,
    after jsonb
);
CREATE INDEX events_model ON events (model, version);
CREATE INDEX events_at ON events (at);

CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the event log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER events_no_update_delete BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_append_only();

-- watchers of desired state and membership are woken through LISTEN/NOTIFY on commit
CREATE FUNCTION notify_deployments() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('rtscore_deployments', NEW.environment || '/' || NEW.pool);
    RETURN NULL;
END;
$$;
CREATE TRIGGER deployments_notify AFTER INSERT OR UPDATE ON deployments
    FOR EACH ROW EXECUTE FUNCTION notify_deployments();

CREATE FUNCTION notify_members() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('rtscore_members', COALESCE(NEW.environment, OLD.environment) || '/'
        || COALESCE(NEW.pool, OLD.pool));
    RETURN NULL;
END;
$$;
CREATE TRIGGER members_notify AFTER INSERT OR UPDATE OR DELETE ON members
    FOR EACH ROW EXECUTE FUNCTION notify_members();
