"""One MLeap `Transform` through a pool of scorers, for `rtscore score --scorers`."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

import grpc

from protos.ml.combust.mleap.pb import mleap_pb2
from rtscore.errors import RtscoreError
from scorer.client.errors import ScorerCallError
from scorer.client.pool import ScorerPool
from scorer.client.settings import PoolSettings
from scorer.client.sources import static_endpoints


def transform_through_pool(
    scorers: str,
    request: mleap_pb2.TransformFrameRequest,
    timeout: float,
    metadata: Sequence[tuple[str, str]],
    credentials: grpc.ChannelCredentials | None = None,
) -> mleap_pb2.TransformFrameResponse | None:
    """The reply of a ready scorer among `scorers` (H:P,…); None once the failure is printed."""
    source = static_endpoints(scorers)  # a malformed list is the caller's InvalidArgument

    async def call() -> mleap_pb2.TransformFrameResponse:
        async with ScorerPool(source, PoolSettings(default_timeout_s=timeout), credentials) as pool:
            # the deadline covers waiting for a ready scorer too; no scorer hosting it fails at once
            reply, _ = await pool.transform(request, timeout=timeout, metadata=metadata)
            return reply

    try:
        return asyncio.run(call())
    except ScorerCallError as err:
        print(f"rtscore score: {err.code.name}: {err.details}", file=sys.stderr)
    except RtscoreError as err:
        print(f"rtscore score: {err.code.name}: {err}", file=sys.stderr)
    return None
