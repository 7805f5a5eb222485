"""The `floor` target: a bare grpc.aio server on uvloop that answers `rtscore.v1.Scorer/Score` with one
fixed reply of the scorer's size and shape, so a comparison shows what Python gRPC itself costs here.

The reply is computed once at start: the first row of `--frame` scored in-process by rtscore's runtime
with `--bundle`, encoded as the scorer encodes its replies (or read from `--response`, a serialized
`ScoreResponse`). Calls are answered without parsing the request or serializing anything: the handler
returns the same bytes every time.

With `--workers N` (N > 1) this process only supervises: it computes the reply once and starts N bare
servers on one SO_REUSEPORT port, as `rtscore scorer serve --workers N` does, so that a scorer of N
processes has a floor of N processes to be read against.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from protos.rtscore.v1 import scorer_pb2
from rtscore.errors import InvalidArgument, RtscoreError, Unavailable
from rtscore.signals import ignore_stop_signals, stop_on_signals

SCORER_SERVICE = scorer_pb2.DESCRIPTOR.services_by_name["Scorer"].full_name


def scorer_reply(bundle: Path, frame_path: Path, model: str) -> bytes:
    """The serialized `ScoreResponse` the scorer sends for the frame's first row, computed in-process."""
    from benchmarks.frames import load_leap_frame, to_frame
    from scorer.bundle.model import load_bundle
    from scorer.service.frames import check_inputs, to_leap_frame, to_wire_frame

    loaded = load_bundle(bundle)
    wire = to_frame(load_leap_frame(frame_path), [0], str(frame_path))
    inputs = {f.name: f for f in loaded.input_schema}
    out = loaded.transform(check_inputs(to_leap_frame(wire, inputs), loaded.input_schema))
    names = [f.name for f in loaded.output_schema]
    # The scorer names an unversioned model by its bundle's sha256, as here.
    response = scorer_pb2.ScoreResponse(model=model, version=loaded.sha256[:12])
    response.frame.CopyFrom(to_wire_frame(out, names))
    return response.SerializeToString()


def fixed_reply_handler(reply: bytes) -> grpc.GenericRpcHandler:
    """`rtscore.v1.Scorer/Score` answering `reply` to every call, bytes in and bytes out."""

    async def score(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        return reply

    # No (de)serializers: the request is never parsed and the reply is sent as it is.
    method = grpc.unary_unary_rpc_method_handler(score)
    return grpc.method_handlers_generic_handler(SCORER_SERVICE, {"Score": method})


def kernel_handler(reply: bytes, bundle: Path) -> grpc.GenericRpcHandler:
    """`rtscore.v1.Scorer/Score` that parses each request and scores its dense rows with the bundle's
    own classifier (its `DensePlan`: the forest kernel and the probabilities), then answers `reply`:
    the floor plus the model's work, served, and nothing of the scorer's service around it."""
    from scorer.bundle.model import load_bundle
    from scorer.bundle.plan import dense_plan
    from scorer.service.dense_frames import planned_block

    loaded = load_bundle(bundle)
    plan = dense_plan(loaded.root_op, loaded.input_schema, loaded.output_schema)
    if plan is None:
        raise InvalidArgument(
            f"{bundle}: not an assembler of doubles feeding one classifier; no kernel floor"
        )
    parse, names = scorer_pb2.ScoreRequest.FromString, plan.names

    async def score(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        block = planned_block(parse(request).frame, names)
        if block is not None:
            plan.run(block)
            return reply
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "send a dense block of the bundle's inputs")
        raise AssertionError("unreachable: abort raises")

    method = grpc.unary_unary_rpc_method_handler(score)
    return grpc.method_handlers_generic_handler(SCORER_SERVICE, {"Score": method})


async def serve(reply: bytes, host: str, port: int, kernel_of: Path | None = None) -> int:
    """Serve until SIGTERM or SIGINT; prints `listening on HOST:PORT` once ready. With `kernel_of` (a
    bundle), each call's rows are scored by that bundle's kernel before the reply is sent."""
    if kernel_of is None:
        handler, what = fixed_reply_handler(reply), f"fixed reply of {len(reply)} bytes"
    else:
        handler, what = kernel_handler(reply, kernel_of), f"{kernel_of.name}'s kernel, then a fixed reply"
    await serve_bare(handler, SCORER_SERVICE, host, port, what)
    return 0


async def serve_bare(handler: grpc.GenericRpcHandler, service: str, host: str, port: int, what: str) -> None:
    """A bare grpc.aio server of `handler` (and health, `service` SERVING) until SIGTERM or SIGINT; prints
    `listening on HOST:PORT (what)` once ready."""
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise InvalidArgument(f"cannot listen on {host}:{port}")
    await server.start()
    for name in ("", service):
        await health.set(name, health_pb2.HealthCheckResponse.SERVING)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    stop_on_signals(loop, stop)
    print(f"listening on {host}:{bound} ({what})", flush=True)
    await stop.wait()
    await health.enter_graceful_shutdown()
    await server.stop(1.0)
    ignore_stop_signals()


def supervise(reply: bytes, host: str, port: int, workers: int, kernel_of: Path | None = None) -> int:
    """Run `workers` bare servers on one port until SIGTERM or SIGINT, then stop them all."""
    from rtscore.workers import reserve_port

    reservation = reserve_port(host, port)
    port = int(reservation.getsockname()[1])
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    procs: list[subprocess.Popen[str]] = []
    with tempfile.NamedTemporaryFile(prefix="rtscore-floor-", suffix=".bin") as response:
        response.write(reply)
        response.flush()
        command = [sys.executable, "-m", "benchmarks.floor_server", "--response", response.name]
        if kernel_of is not None:
            command += ["--bundle", str(kernel_of), "--kernel"]
        try:
            for _ in range(workers):
                proc = subprocess.Popen(
                    [*command, "--host", host, "--port", str(port)], stdout=subprocess.PIPE, text=True
                )
                procs.append(proc)
                assert proc.stdout is not None
                if "listening on" not in proc.stdout.readline():
                    raise Unavailable(f"a floor worker did not start (exit code {proc.wait()})")
            pids = ",".join(str(p.pid) for p in procs)
            print(f"listening on {host}:{port} ({workers} workers: {pids})", flush=True)
            while not stop.wait(0.2) and all(p.poll() is None for p in procs):
                pass
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.terminate()
            codes = [proc.wait() for proc in procs]
            reservation.close()
    return 0 if stop.is_set() and not any(codes) else 1


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `python -m benchmarks.floor_server`."""
    parser.add_argument("--bundle", type=Path, help="bundle whose reply to the frame's first row is sent")
    parser.add_argument("--frame", type=Path, help="MLeap JSON LeapFrame; its first row is scored once")
    parser.add_argument("--response", type=Path, help="a serialized ScoreResponse to send instead")
    parser.add_argument("--model", default="bench", help="model name the reply carries (default bench)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port, printed once listening")
    parser.add_argument("--workers", type=int, default=1, help="server processes on the one port (default 1)")
    parser.add_argument(
        "--kernel",
        action="store_true",
        help="score each request's dense rows with --bundle's kernel before replying (the kernel floor)",
    )


def read_message(path: Path, kind: type[Message]) -> bytes:
    """The bytes of a serialized `kind` message read from `path`, checked to parse as one."""
    name = kind.DESCRIPTOR.name
    try:
        data = path.read_bytes()
    except OSError as err:
        raise InvalidArgument(f"{path}: cannot read the {name}: {err.strerror}") from err
    try:
        kind.FromString(data)
    except Exception as err:  # protobuf's DecodeError: the file is not a serialized `kind`
        raise InvalidArgument(f"{path}: not a serialized {name}: {err}") from err
    return data


def reply_from(args: argparse.Namespace) -> bytes:
    """The fixed reply the options describe."""
    if args.response is not None:
        return read_message(args.response, scorer_pb2.ScoreResponse)
    if args.bundle is None or args.frame is None:
        raise InvalidArgument("give --bundle and --frame (the reply is scored from them), or --response")
    return scorer_reply(args.bundle, args.frame, args.model)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the fixed reply; errors become one line on stderr."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.floor_server", description=__doc__)
    add_serve_arguments(parser)
    args = parser.parse_args(argv)
    import uvloop

    try:
        if args.workers < 1:
            raise InvalidArgument(f"--workers must be at least 1, got {args.workers}")
        if args.kernel and args.bundle is None:
            raise InvalidArgument("--kernel scores with --bundle: give it")
        reply = reply_from(args)
        kernel_of = args.bundle if args.kernel else None
        if args.workers > 1:
            return supervise(reply, args.host, args.port, args.workers, kernel_of)
        return uvloop.run(serve(reply, args.host, args.port, kernel_of))
    except RtscoreError as err:
        print(f"floor server: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
