"""The Redis velocity store against the plain reference, shared by several processes at once."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from extractor.velocity.redis_store import RedisVelocityStore
from tests.integration.redis_fixtures import redis_url
from tests.integration.velocity_worker import BLOCK, write_events
from tests.paths import ROOT
from tests.velocity_reference import generated_events, reference_values

__all__ = ["redis_url"]
COUNT, SEED, PROCESSES = 10_000, 5, 3
pytestmark = pytest.mark.services


async def test_redis_store_shared_by_processes_equals_reference(redis_url: str, tmp_path: Path) -> None:
    namespace = f"test:{uuid.uuid4().hex}"
    plan, events = generated_events(COUNT, SEED)
    write_events(events, str(tmp_path / "events.json"))
    command = [sys.executable, "-m", "tests.integration.velocity_worker", redis_url, namespace]
    # Started at once and read only after the reference is computed, so they run beside it.
    workers = [
        subprocess.Popen(  # noqa: ASYNC220
            [*command, str(i), str(PROCESSES), str(tmp_path / "events.json")],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(PROCESSES)
    ]
    expected = reference_values(plan, events)
    got: dict[int, list[float]] = {}
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        got.update({k: values for k, values in json.loads(out)})

    assert sorted(got) == list(range(COUNT))
    assert sum(1 for a, b in itertools.pairwise(events) if b.time_ms < a.time_ms) > 100
    assert sum(1 for row in expected if any(row)) > COUNT // 2
    for k, event in enumerate(events):
        assert got[k] == pytest.approx(expected[k], rel=1e-9, abs=1e-9), event.tx_id

    store = RedisVelocityStore(plan, redis_url, namespace=namespace)
    try:
        key = store.key(0, events[-1].keys[0][0])
        ttl_ms = await store._client.pttl(key)
        assert 0 < ttl_ms <= plan.retention_ms  # idle entities expire by themselves
        await store.flush_namespace()
        await store._client.delete(*[f"{namespace}:turn:{b}" for b in range(1, COUNT // BLOCK + 2)])
    finally:
        await store.close()
