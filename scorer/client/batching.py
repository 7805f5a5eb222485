"""Micro-batching: single-row calls for one model arriving within ≤ 200 µs go out as one frame."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

import grpc

from protos.rtscore.v1 import frame_pb2, scorer_pb2
from scorer.client.errors import ScorerCallError
from scorer.client.frames import join_rows, layout, split_rows
from scorer.client.scored import Scored
from scorer.client.settings import PoolSettings
from scorer.client.telemetry import PoolTelemetry

log = logging.getLogger(__name__)

Metadata = Sequence[tuple[str, str]]
Send = Callable[[scorer_pb2.ScoreRequest, float, Metadata], Awaitable[Scored]]


class _Batch:
    """Calls waiting to go out together: same model, same column layout."""

    __slots__ = ("deadline", "frames", "futures", "metadata", "model", "timer")

    def __init__(self, model: str, metadata: Metadata) -> None:
        self.model = model
        self.metadata = metadata  # the first caller's (its trace context stands for the batch)
        self.frames: list[frame_pb2.Frame] = []
        self.futures: list[asyncio.Future[Scored]] = []
        self.deadline = float("inf")
        self.timer: asyncio.TimerHandle | None = None


class MicroBatcher:
    """Joins concurrent one-row calls; each caller gets its own row of the scored batch back."""

    def __init__(self, send: Send, settings: PoolSettings, telemetry: PoolTelemetry) -> None:
        self._send = send
        self._wait = settings.batch_wait_s
        self._max_rows = settings.batch_max_rows
        self._telemetry = telemetry
        # Try Frame.dense for all-double batches; a scorer that cannot read it makes the pool go back.
        self._dense = True
        self._open: dict[tuple[str, object], _Batch] = {}
        self._flying: set[asyncio.Task[None]] = set()

    async def submit(
        self,
        model: str,
        frame: frame_pb2.Frame,
        timeout: float,  # noqa: ASYNC109 (the call's deadline)
        metadata: Metadata,
    ) -> Scored:
        """Score one row as part of whichever batch is open for its model and layout."""
        loop = asyncio.get_running_loop()
        key = (model, layout(frame))
        batch = self._open.get(key)
        if batch is None:
            batch = self._open[key] = _Batch(model, metadata)
            batch.timer = loop.call_later(self._wait, self._flush, key)
        future: asyncio.Future[Scored] = loop.create_future()
        batch.frames.append(frame)
        batch.futures.append(future)
        batch.deadline = min(batch.deadline, loop.time() + timeout)
        if len(batch.frames) >= self._max_rows:
            self._flush(key)
        return await future

    def _flush(self, key: tuple[str, object]) -> None:
        batch = self._open.pop(key, None)
        if batch is None:
            return
        if batch.timer is not None:
            batch.timer.cancel()
        task = asyncio.get_running_loop().create_task(self._score(batch))
        self._flying.add(task)
        task.add_done_callback(self._flying.discard)

    async def _score(self, batch: _Batch) -> None:
        loop = asyncio.get_running_loop()
        self._telemetry.batched(len(batch.frames))
        try:
            if len(batch.frames) == 1:
                request = scorer_pb2.ScoreRequest(model=batch.model, frame=batch.frames[0])
                batch.futures[0].set_result(
                    await self._send(request, batch.deadline - loop.time(), batch.metadata)
                )
                return
            scored = await self._score_joined(batch, loop.time())
            parts = split_rows(scored.response.frame, [f.rows for f in batch.frames])
        except BaseException as err:  # every caller of the batch learns how it ended
            for future in batch.futures:
                if not future.done():
                    future.set_exception(err)
            if not isinstance(err, Exception):
                raise
            return
        response = scored.response
        for future, part in zip(batch.futures, parts, strict=True):
            if not future.done():
                mine = scorer_pb2.ScoreResponse(frame=part, model=response.model, version=response.version)
                future.set_result(Scored(mine, scored.endpoint, scored.attempts, scored.hedged))

    async def _score_joined(self, batch: _Batch, now: float) -> Scored:
        dense = self._dense
        request = scorer_pb2.ScoreRequest(model=batch.model, frame=join_rows(batch.frames, dense))
        try:
            return await self._send(request, batch.deadline - now, batch.metadata)
        except ScorerCallError as err:
            if not (dense and request.frame.dense.names and err.code == grpc.StatusCode.INVALID_ARGUMENT):
                raise
        # Perhaps the scorer does not read Frame.dense: if the columnar frame passes, stay columnar.
        request = scorer_pb2.ScoreRequest(model=batch.model, frame=join_rows(batch.frames, False))
        scored = await self._send(request, batch.deadline - asyncio.get_running_loop().time(), batch.metadata)
        self._dense = False
        log.info("scorers refuse Frame.dense; micro-batches go columnar")
        return scored

    async def close(self) -> None:
        """Send what is waiting and wait for batches in flight."""
        for key in list(self._open):
            self._flush(key)
        if self._flying:
            await asyncio.gather(*self._flying, return_exceptions=True)
