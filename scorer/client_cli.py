"""`rtscore score`: send an MLeap JSON frame to a running scorer (or a pool of them) and print the
scored frame."""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from pathlib import Path
from typing import Any

from rtscore.errors import InvalidArgument


def register(subparsers: Any, name: str, help_text: str) -> None:
    """Add the `score` command."""
    score = subparsers.add_parser(name, help=help_text, description=help_text)
    where = score.add_mutually_exclusive_group(required=True)
    where.add_argument("--target", metavar="HOST:PORT", help="address of the scorer")
    where.add_argument(
        "--scorers",
        metavar="HOST:PORT,…",
        help="a pool of scorers: the call goes to a ready one, failing over",
    )
    score.add_argument("--model", required=True, metavar="NAME[@VERSION]", help="hosted model to use")
    score.add_argument(
        "--frame", required=True, metavar="FRAME.json", help="MLeap JSON LeapFrame ('-' = stdin)"
    )
    score.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS", help="deadline of the call")
    score.add_argument("--ca", metavar="PEM", help="CA of the scorers' TLS certificates (speaks TLS)")
    score.add_argument("--cert", metavar="PEM", help="client certificate, for mutual TLS")
    score.add_argument("--key", metavar="PEM", help="private key of --cert")
    score.set_defaults(func=_score)


def channel_credentials(args: argparse.Namespace) -> Any:
    """TLS credentials from --ca/--cert/--key, or None for plaintext."""
    from rtscore.tls import optional_channel_credentials

    ca, cert, key = (Path(p) if p else None for p in (args.ca, args.cert, args.key))
    return optional_channel_credentials(ca, cert, key)


def trace_metadata() -> list[tuple[str, str]]:
    """Metadata starting a new trace (W3C traceparent) and naming the request."""
    from opentelemetry import trace
    from opentelemetry.propagate import inject
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    span = SpanContext(
        trace_id=secrets.randbits(128) or 1, span_id=secrets.randbits(64) or 1, is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )  # fmt: skip
    carrier: dict[str, str] = {}
    inject(carrier, context=trace.set_span_in_context(NonRecordingSpan(span)))
    return [*carrier.items(), ("x-request-id", secrets.token_hex(8))]


def _read(path: str) -> bytes:
    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as err:
        raise InvalidArgument(f"{path}: cannot read frame ({err.strerror})") from None
    try:
        json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InvalidArgument(f"{path}: invalid JSON ({err})") from None
    return data


def _score(args: argparse.Namespace) -> int:
    import grpc

    from protos.ml.combust.mleap.pb import grpc_pb2_grpc, mleap_pb2
    from scorer.service.mleap_api import JSON_FORMAT

    frame = _read(args.frame)
    credentials = channel_credentials(args)
    # MLeap's Transform carries the frame as MLeap JSON both ways, so the output is exactly the frame
    # `rtscore bundle score` prints for the same bundle: same types, nullability and column order.
    request = mleap_pb2.TransformFrameRequest(model_name=args.model, format=JSON_FORMAT, frame=frame)
    if args.scorers:
        from scorer.client.cli_call import transform_through_pool

        reply = transform_through_pool(args.scorers, request, args.timeout, trace_metadata(), credentials)
        if reply is None:
            return 1
    else:
        channel = (
            grpc.secure_channel(args.target, credentials)
            if credentials is not None
            else grpc.insecure_channel(args.target)
        )
        with channel:
            stub = grpc_pb2_grpc.MleapStub(channel)
            try:
                reply = stub.Transform(request, timeout=args.timeout, metadata=trace_metadata())
            except grpc.RpcError as err:
                print(f"rtscore score: {err.code().name}: {err.details()}", file=sys.stderr)
                return 1
    if reply.status != mleap_pb2.STATUS_OK:
        print(f"rtscore score: INVALID_ARGUMENT: {reply.error}", file=sys.stderr)
        return 1
    json.dump(json.loads(reply.frame), sys.stdout)
    sys.stdout.write("\n")
    return 0
