"""Load through a `ScorerPool`: the load generator's open or closed loop, each call balanced by the pool."""

from __future__ import annotations

import asyncio
import time
from collections.abc import MutableSequence, Sequence
from typing import Any

import grpc

from benchmarks.loadgen import LoadSpec, RunResult, _Calls
from protos.rtscore.v1 import scorer_pb2
from rtscore.errors import InvalidArgument, RtscoreError
from scorer.client import PoolSettings, ScorerPool
from scorer.client.sources import EndpointSource


class PoolMethod:
    """A pool behind the load generator's call signature: a serialized ScoreRequest in, the reply out."""

    def __init__(self, pool: ScorerPool, requests: Sequence[bytes]) -> None:
        self.pool = pool
        # parsed once: the run measures the pool and the scorers, not protobuf parsing
        self._parsed = {id(r): scorer_pb2.ScoreRequest.FromString(r) for r in requests}

    async def __call__(self, request: bytes, timeout: float) -> scorer_pb2.ScoreResponse:  # noqa: ASYNC109
        """One pool call; a pool error surfaces as the gRPC error the load generator counts."""
        try:
            scored = await self.pool.score_request(self._parsed[id(request)], timeout)
        except RtscoreError as err:
            empty = grpc.aio.Metadata()
            raise grpc.aio.AioRpcError(err.code, empty, empty, details=str(err)) from None
        return scored.response


async def run_pool_load(
    spec: LoadSpec,
    requests: Sequence[bytes],
    source: EndpointSource,
    settings: PoolSettings,
    counters: MutableSequence[int] | None = None,
) -> tuple[RunResult, dict[str, Any]]:
    """Run `spec` through a pool over `source`; the result and the pool's counts (picks, retries, hedges)."""
    spec.check()
    if not requests:
        raise InvalidArgument("no requests to send")
    model = scorer_pb2.ScoreRequest.FromString(requests[0]).model
    async with ScorerPool(source, settings) as pool:
        await pool.wait_ready(model, timeout=max(spec.timeout, 5.0))
        calls = _Calls(
            spec, [PoolMethod(pool, requests)], requests, counters if counters is not None else [0, 0]
        )
        result = await (calls.open_loop() if spec.mode == "open" else calls.closed_loop())
        return result, pool.stats()


def run_in_process(
    spec: LoadSpec, requests: Sequence[bytes], source: EndpointSource, settings: PoolSettings, progress: Any
) -> tuple[RunResult, dict[str, Any]]:
    """`run_pool_load` on uvloop in this process, calling `progress(elapsed, ok, failed)` as it goes."""
    import uvloop

    async def main() -> tuple[RunResult, dict[str, Any]]:
        counters = [0, 0]
        started = time.perf_counter()
        load = asyncio.create_task(run_pool_load(spec, requests, source, settings, counters))
        while progress is not None and not load.done():
            progress(time.perf_counter() - started, counters[0], counters[1])
            await asyncio.wait({load}, timeout=0.25)
        return await load

    return uvloop.run(main())
