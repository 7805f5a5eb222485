"""The `e2e-floor` target: the extractor's hops with none of its work, so an end-to-end run shows what the
transport alone costs here (the end-to-end counterpart of `floor`).

A bare grpc.aio server on uvloop answers `rtscore.v1.Extractor/Evaluate` by making, per call, the round
trips an extractor makes: one Redis command (PING, through redis-py's asyncio client as the velocity
store uses it) and one `rtscore.v1.Scorer/Score` call (a fixed serialized request, sent as bytes, to
`--scorer`, normally the `floor` server), then sending one fixed `Decision` of a real one's size. Nothing
is parsed, computed or serialized per call.

Each hop has the extractor's deadline and the extractor's answer to a late one: a Redis call past
`--velocity-timeout-ms` is given up and the call goes on (the extractor then answers from its own
memory), a Score call past `--timeout-ms` fails the call with the scorer's status. Redis calls given up
are counted and said on stderr when the relay stops.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc
import redis.asyncio as aioredis

from benchmarks.floor_server import read_message, serve_bare
from protos.rtscore.v1 import extractor_pb2, scorer_pb2
from rtscore.errors import RtscoreError

EXTRACTOR_SERVICE = extractor_pb2.DESCRIPTOR.services_by_name["Extractor"].full_name
SCORE_METHOD = "/rtscore.v1.Scorer/Score"
# A Decision as the extractor sends one: every field set, ids and names of their usual lengths.
DECISION = extractor_pb2.Decision(
    transaction_id="tx-000000000000",
    score=0.0123,
    action=extractor_pb2.ACTION_APPROVE,
    model="fraud",
    version="0123456789ab",
    scorer="127.0.0.1:50000",
    timings=extractor_pb2.StageTimings(features_ms=0.1, score_ms=1.0, total_ms=1.2, velocity_ms=0.2),
).SerializeToString()


class Relay:
    """`Evaluate`: one Redis round trip, one Score call, then the fixed Decision; bytes in and out."""

    def __init__(
        self,
        redis: Any,
        score: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes],
        request: bytes,
        timeout_s: float,
        velocity_timeout_s: float,
    ) -> None:
        self.redis, self.score, self.request = redis, score, request
        self.timeout_s, self.velocity_timeout_s = timeout_s, velocity_timeout_s
        self.redis_late = 0  # Redis calls given up (the extractor would have answered from memory)

    async def evaluate(self, _transaction: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        """One call's hops."""
        try:
            # one deadline around the call, as the velocity store has (no per-send socket timeout)
            async with asyncio.timeout(self.velocity_timeout_s):
                await self.redis.ping()
        except (TimeoutError, aioredis.RedisError):
            self.redis_late += 1
        try:
            await self.score(self.request, timeout=self.timeout_s)
        except grpc.aio.AioRpcError as err:
            await context.abort(err.code(), f"scorer: {err.details()}")
        return DECISION

    def handler(self) -> grpc.GenericRpcHandler:
        """The generic handler of `rtscore.v1.Extractor/Evaluate`."""
        method = grpc.unary_unary_rpc_method_handler(self.evaluate)
        return grpc.method_handlers_generic_handler(EXTRACTOR_SERVICE, {"Evaluate": method})


async def serve(
    scorer: str,
    redis_url: str,
    request: bytes,
    host: str,
    port: int,
    timeout_s: float,
    velocity_timeout_s: float,
) -> int:
    """Relay until SIGTERM or SIGINT; prints `listening on HOST:PORT` once ready."""
    redis = aioredis.Redis.from_url(redis_url, socket_timeout=None, socket_connect_timeout=timeout_s)
    await redis.ping()  # fail at start, not on the first call, when Redis is not there
    channel = grpc.aio.insecure_channel(scorer)
    score = channel.unary_unary(SCORE_METHOD)  # no (de)serializers: bytes out, bytes back
    await score(request, timeout=30.0)  # the scorer answers before the port is announced
    what = f"relaying to Redis and {scorer}"
    relay = Relay(redis, score, request, timeout_s, velocity_timeout_s)
    await serve_bare(relay.handler(), EXTRACTOR_SERVICE, host, port, what)
    await channel.close()
    await redis.aclose()
    if relay.redis_late:
        limit = velocity_timeout_s * 1e3
        print(f"relay floor: {relay.redis_late} Redis calls given up after {limit:g} ms", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the relay; errors become one line on stderr."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.relay_floor", description=__doc__)
    parser.add_argument("--scorer", required=True, help="HOST:PORT answering rtscore.v1.Scorer/Score")
    parser.add_argument("--redis-url", required=True, help="the Redis each call pings")
    parser.add_argument("--request", type=Path, required=True, help="a serialized ScoreRequest to send")
    parser.add_argument("--timeout-ms", type=float, default=50.0, help="Score call deadline (default 50)")
    parser.add_argument(
        "--velocity-timeout-ms", type=float, default=20.0,
        help="time given to the Redis call, then given up (default 20)",
    )  # fmt: skip
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port, printed once listening")
    args = parser.parse_args(argv)
    import uvloop

    try:
        request = read_message(args.request, scorer_pb2.ScoreRequest)
        timeouts = (args.timeout_ms / 1e3, args.velocity_timeout_ms / 1e3)
        return uvloop.run(serve(args.scorer, args.redis_url, request, args.host, args.port, *timeouts))
    except RtscoreError as err:
        print(f"relay floor: {err}", file=sys.stderr)
        return 1
    except (OSError, aioredis.RedisError, grpc.RpcError) as err:
        print(f"relay floor: cannot start: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
