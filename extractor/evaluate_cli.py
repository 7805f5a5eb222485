"""`rtscore evaluate --target H:P --transaction TX.json`: one Decision as one JSON object."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(subparsers: Any, name: str, help_text: str) -> None:
    """Add the `evaluate` command to the rtscore CLI."""
    command = subparsers.add_parser(name, help=help_text, description=help_text)
    command.add_argument("--target", required=True, help="extractor address, host:port")
    command.add_argument("--transaction", required=True, help="JSON file with one transaction (- for stdin)")
    command.add_argument("--timeout", type=float, default=5.0, help="deadline in seconds (default 5)")
    command.set_defaults(func=_evaluate)


def decision_json(decision: Any) -> dict[str, Any]:
    """A Decision as the flat JSON object `rtscore evaluate` prints."""
    from protos.rtscore.v1 import extractor_pb2

    timings = decision.timings
    return {
        "transaction_id": decision.transaction_id,
        "score": decision.score,
        "action": extractor_pb2.Action.Name(decision.action).removeprefix("ACTION_").lower(),
        "model": decision.model,
        "version": decision.version,
        "scorer": decision.scorer,
        "timings_ms": {
            "features": round(timings.features_ms, 4),
            "velocity": round(timings.velocity_ms, 4),
            "score": round(timings.score_ms, 4),
            "total": round(timings.total_ms, 4),
        },
    }


def _evaluate(args: argparse.Namespace) -> int:
    import grpc

    from extractor.transactions import transaction_from_json
    from protos.rtscore.v1 import extractor_pb2_grpc
    from rtscore.errors import InvalidArgument

    try:
        if args.transaction == "-":
            text = sys.stdin.read()
        else:
            with open(args.transaction, encoding="utf-8") as handle:
                text = handle.read()
        data = json.loads(text)
    except OSError as err:
        raise InvalidArgument(f"{args.transaction}: cannot read ({err.strerror})") from None
    except json.JSONDecodeError as err:
        raise InvalidArgument(f"{args.transaction}: invalid JSON ({err})") from None
    tx = transaction_from_json(data)
    with grpc.insecure_channel(args.target) as channel:
        try:
            decision = extractor_pb2_grpc.ExtractorStub(channel).Evaluate(tx, timeout=args.timeout)
        except grpc.RpcError as err:
            print(f"rtscore evaluate: {err.code().name}: {err.details()}", file=sys.stderr)
            return 1
    print(json.dumps(decision_json(decision)))
    return 0
