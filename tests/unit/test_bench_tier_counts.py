"""`bench e2e`'s counts per run: the extractor's own Prometheus endpoints read before and after, and the
relays' line on the Redis calls they gave up."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from benchmarks.tier_counts import (
    EXTRACTOR_COUNTERS,
    counted_between,
    extractor_counts,
    read_extractor_counts,
    redis_given_up,
)
from extractor.metrics import ExtractorMetrics
from rtscore.localservices.processes import free_port


@pytest.fixture
def two_workers() -> Iterator[tuple[list[ExtractorMetrics], list[int]]]:
    """Two extractor workers' metrics, each on an endpoint of its own."""
    workers = [ExtractorMetrics(), ExtractorMetrics()]
    try:
        yield workers, [worker.serve("127.0.0.1", 0) for worker in workers]
    finally:
        for worker in workers:
            worker.close()


def test_the_counts_of_a_run_are_summed_over_the_workers_and_taken_between_two_reads(
    two_workers: tuple[list[ExtractorMetrics], list[int]],
) -> None:
    workers, ports = two_workers
    fallbacks = [2, 5]
    workers[0].watch("velocity_fallbacks", lambda: fallbacks[0])
    workers[1].watch("velocity_fallbacks", lambda: fallbacks[1])
    workers[1].watch("pool_retries", lambda: 7)
    workers[0].failed("UNAVAILABLE")
    workers[0].decided("approve")
    workers[1].decided("decline")
    before = extractor_counts(ports)
    assert set(EXTRACTOR_COUNTERS) <= set(before)
    assert (before["velocity_fallbacks"], before["pool_retries"], before["errors_UNAVAILABLE"]) == (7, 7, 1)
    assert before["decisions"] == 2  # summed over the actions and the workers

    fallbacks[1] += 3  # during the run: three calls answered from local velocity, two failed calls
    workers[0].failed("UNAVAILABLE")
    workers[1].failed("DEADLINE_EXCEEDED")
    counted = counted_between(before, extractor_counts(ports))
    assert counted is not None
    assert counted["velocity_fallbacks"] == 3
    assert counted["pool_retries"] == 0
    assert (counted["errors_UNAVAILABLE"], counted["errors_DEADLINE_EXCEEDED"]) == (1, 1)


def test_a_page_that_cannot_be_read_leaves_the_counts_out_and_says_why() -> None:
    port = free_port()  # nothing listens there
    counts, why = read_extractor_counts([port])
    assert counts is None
    assert "refused" in why.lower()
    assert counted_between(None, {"decisions": 3.0}) is None
    assert counted_between({"decisions": 1.0}, None) is None


def test_a_relay_that_gave_up_no_redis_call_says_nothing_and_counts_zero() -> None:
    assert redis_given_up(["listening on 127.0.0.1:4000"]) == 0
    said = ["listening on 127.0.0.1:4000", "native relay: 12 Redis calls given up after 20 ms"]
    assert redis_given_up(said) == 12
    assert redis_given_up(["relay floor: 3 Redis calls given up after 20 ms"]) == 3
