-- rtscore shadow tier: raw scores of shadow models, each partition's next offset, chargeback labels.

-- One row per transaction and model version, written in the same transaction as the offsets below.
CREATE TABLE shadow_scores (
    transaction_id text NOT NULL,
    model text NOT NULL,
    version bigint NOT NULL,
    environment text NOT NULL,
    score double precision NOT NULL,
    -- score >= threshold, at the threshold configured when it was scored
    decision boolean NOT NULL,
    threshold double precision NOT NULL,
    -- what the live model said, from the record
    champion_model text NOT NULL,
    champion_version text NOT NULL,
    champion_score double precision NOT NULL,
    -- the live scoring call's time as the extractor measured it
    champion_latency_ms double precision NOT NULL,
    -- the batch's scoring time divided by its rows
    latency_ms double precision NOT NULL,
    event_time timestamptz,
    scored_at timestamptz NOT NULL,
    topic text NOT NULL,
    partition integer NOT NULL,
    "offset" bigint NOT NULL,
    PRIMARY KEY (transaction_id, model, version)
);
CREATE INDEX shadow_scores_model ON shadow_scores (model, version, scored_at);

-- Kafka's "storing offsets outside Kafka": the next offset to read per group and partition.
CREATE TABLE shadow_offsets (
    group_id text NOT NULL,
    topic text NOT NULL,
    partition integer NOT NULL,
    next_offset bigint NOT NULL,
    -- rows a batch offered that were already stored (same transaction and model version seen twice)
    duplicates bigint NOT NULL DEFAULT 0,
    dead_lettered bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, topic, partition)
);

-- Chargebacks and other outcomes that arrive after the decision.
CREATE TABLE shadow_labels (
    transaction_id text PRIMARY KEY,
    fraud boolean NOT NULL,
    labelled_at timestamptz NOT NULL DEFAULT now()
);
