"""Prometheus metrics of the shadow workers: scored and dead-lettered per model, batches, writes, lag."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

SCORED = Counter("rtscore_shadow_scored", "Score rows written, by shadow model", ["model"])
DEAD_LETTERED = Counter(
    "rtscore_shadow_dead_lettered",
    "Records sent to the dead-letter topic, by model ('' = unparsable)",
    ["model"],
)
DUPLICATES = Counter("rtscore_shadow_duplicates", "Rows a batch offered that were already stored")
LOST_PARTITIONS = Counter(
    "rtscore_shadow_lost_partitions", "Batches that found a partition moved on by another worker"
)
RETRIES = Counter(
    "rtscore_shadow_retries", "Batch writes retried after a retryable failure, by cause", ["cause"]
)
BATCH_SIZE = Histogram(
    "rtscore_shadow_batch_records",
    "Records per batch",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000),
)
SCORE_SECONDS = Histogram(
    "rtscore_shadow_score_seconds",
    "Time to score one batch with every shadow model",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)
WRITE_SECONDS = Histogram(
    "rtscore_shadow_write_seconds",
    "Time to commit one batch's rows and offsets",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)
LAG = Gauge("rtscore_shadow_lag", "Records behind the high watermark, by partition", ["partition"])
MODELS = Gauge("rtscore_shadow_models", "Shadow models in force")
