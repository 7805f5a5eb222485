"""`rtscore extractor serve --workers 2`: two extractor processes on one port, their velocity state
shared in Redis, so each decision is the one a single extractor makes on the same history."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import psutil
import pytest

from extractor.transactions import transaction_from_json
from protos.rtscore.v1 import extractor_pb2, extractor_pb2_grpc
from rtscore.localservices.processes import free_port
from tests.integration.extractor_processes import Served, fraud_files, metric, scorer, started
from tests.integration.redis_fixtures import PrivateRedis, private_redis

__all__ = ["fraud_files", "private_redis", "started"]
pytestmark = [pytest.mark.services]
CALLS = 3_000  # the traffic file; velocity changes a score only now and then
CHANNELS = 16  # separate connections, spread by the kernel: all on one worker 1 time in 32,768
CALLS_METRIC = 'rtscore_extractor_stage_duration_seconds_count{stage="total"}'


def scores(target: str, transactions: list[extractor_pb2.Transaction], channels: int) -> list[float]:
    """Each transaction evaluated in turn (each call waits for the previous answer), round robin over
    `channels` connections of their own."""
    options = [("grpc.use_local_subchannel_pool", 1)]
    opened = [grpc.insecure_channel(target, options=options) for _ in range(channels)]
    try:
        stubs = [extractor_pb2_grpc.ExtractorStub(channel) for channel in opened]
        return [stubs[i % channels].Evaluate(tx, timeout=10).score for i, tx in enumerate(transactions)]
    finally:
        for channel in opened:
            channel.close()


def test_workers_share_the_port_and_the_velocity_state(
    fraud_files: tuple[Path, Path], private_redis: PrivateRedis, started: list[Served], tmp_path: Path
) -> None:
    bundle, traffic = fraud_files
    with traffic.open() as handle:
        transactions = [transaction_from_json(json.loads(line)) for line in handle][:CALLS]
    live = scorer(bundle, tmp_path / "cache")
    started.append(live)
    metrics_port = free_port()
    workers = Served(
        "extractor", "serve", "--workers", "2", "--scorers", live.target, "--model", "fraud",
        "--velocity", "redis", "--redis-url", private_redis.url, "--metrics-port", str(metrics_port),
    )  # fmt: skip
    started.append(workers)
    single = Served("extractor", "serve", "--scorers", live.target, "--model", "fraud")
    started.append(single)

    port = int(workers.target.rsplit(":", 1)[1])
    children = psutil.Process(workers.proc.pid).children()
    assert len(children) == 2
    for child in children:
        listening = [c.laddr.port for c in child.net_connections("tcp") if c.status == psutil.CONN_LISTEN]
        assert port in listening, f"worker {child.pid} is not on the shared port"

    shared = scores(workers.target, transactions, CHANNELS)
    alone = scores(single.target, transactions, 1)
    served = [metric(metrics_port + i, CALLS_METRIC) for i in range(2)]
    assert sum(served) == CALLS
    assert min(served) > 0, f"calls per worker: {served}"
    assert shared == alone
    # The comparison can fail: an extractor that saw every other transaction only (a worker with
    # velocity of its own) scores some of them otherwise.
    half = Served("extractor", "serve", "--scorers", live.target, "--model", "fraud")
    started.append(half)
    partial = scores(half.target, transactions[1::2], 1)
    assert sum(a != b for a, b in zip(partial, alone[1::2], strict=True)) >= 5  # 36 of 1,500 here

    assert workers.stop() == 0, workers.stderr()[-3000:]
    assert not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children)
