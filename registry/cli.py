"""`rtscore registry …`: serve, tokens, and a client for every registry call."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from rtscore.errors import InvalidArgument


def message_json(message: Any) -> Any:
    """A protobuf message as plain JSON values (int64 stays a number, unlike json_format)."""
    if hasattr(message, "DESCRIPTOR") and hasattr(message, "ListFields"):
        out: dict[str, Any] = {}
        for field in message.DESCRIPTOR.fields:
            value = getattr(message, field.name)
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                out[field.name] = {k: message_json(v) for k, v in value.items()}
            elif field.is_repeated:
                out[field.name] = [message_json(v) for v in value]
            else:
                out[field.name] = message_json(value)
        return out
    return message


def _print(obj: Any) -> None:
    print(json.dumps(obj, indent=2))


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"{what} must look like key=value, got {item!r}")
        out[key] = value
    return out


def _serve(args: argparse.Namespace) -> int:
    from registry.server import serve
    from registry.settings import RegistrySettings
    from rtscore.settings import settings_from

    overrides: dict[str, Any] = {k: v for k, v in (("port", args.port), ("host", args.host)) if v is not None}
    if args.store:
        overrides["store"] = args.store
    asyncio.run(serve(settings_from(RegistrySettings, **overrides)))
    return 0


def _token_create(args: argparse.Namespace) -> int:
    from registry.access import create_token
    from registry.db import open_pool
    from registry.settings import RegistrySettings
    from rtscore.settings import settings_from

    dsn = settings_from(RegistrySettings).database_url
    if not dsn:
        raise InvalidArgument("no database: set RTSCORE_DATABASE_URL")

    async def create() -> str:
        async with open_pool(dsn, max_size=1) as pool:
            return await create_token(pool, args.name, args.role)

    print(asyncio.run(create()))
    return 0


def _client() -> Any:
    from registry.client import RegistryClient

    return RegistryClient()


def _ref(text: str) -> tuple[str, int]:
    from registry.client import parse_ref

    return parse_ref(text)


def _register(args: argparse.Namespace) -> int:
    header: dict[str, Any] = {"reason": args.reason or "", "tags": _pairs(args.tag, "--tag")}
    header["metrics"] = {k: float(v) for k, v in _pairs(args.metric, "--metric").items()}
    for flag, key in ((args.canary, "canary_frame_json"), (args.expected, "canary_expected_json")):
        if flag is not None:
            header[key] = Path(flag).read_text()
    bundle = Path(args.bundle)
    if not bundle.is_file():
        raise InvalidArgument(f"bundle {bundle} is not a file (register a zipped Bundle.ML)")
    with _client() as client:
        _print(message_json(client.register(args.name, bundle, **header)))
    return 0


def _change(method: str) -> Any:
    def handler(args: argparse.Namespace) -> int:
        from protos.rtscore.v1 import registry_pb2 as pb

        if method == "Rollback":
            request: Any = pb.RollbackRequest(name=args.ref, environment=args.env, reason=args.reason)
        else:
            name, version = _ref(args.ref)
            if method == "Deploy":
                request = pb.DeployRequest(
                    name=name,
                    version=version,
                    environment=args.env,
                    role=args.role,
                    pool=args.pool or "",
                    reason=args.reason,
                    traffic_share=args.traffic_share,
                )
            else:
                request = pb.ChangeRequest(
                    name=name, version=version, environment=args.env, reason=args.reason
                )
        with _client() as client:
            _print(message_json(client.call(method, request)))
        return 0

    return handler


def _get(args: argparse.Namespace) -> int:
    from protos.rtscore.v1 import registry_pb2 as pb

    name, version = _ref(args.ref)
    with _client() as client:
        _print(message_json(client.call("GetVersion", pb.VersionRef(name=name, version=version))))
    return 0


def _list(args: argparse.Namespace) -> int:
    from protos.rtscore.v1 import registry_pb2 as pb

    request = pb.ListVersionsRequest(
        name=args.name or "", environment=args.env or "", tags=_pairs(args.tag, "--tag")
    )
    with _client() as client:
        _print(message_json(client.call("ListVersions", request))["versions"])
    return 0


def _download(args: argparse.Namespace) -> int:
    name, version = _ref(args.ref)
    with _client() as client:
        sha = client.download(name, version, Path(args.out))
    _print({"name": name, "version": version, "sha256": sha, "path": args.out})
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from protos.rtscore.v1 import registry_pb2 as pb

    name, version = _ref(args.ref)
    request = pb.EvaluationRequest(
        name=name,
        candidate_version=version,
        champion_version=args.champion,
        environment=args.env,
        sample_size=args.samples,
        agreement=args.agreement,
        score_distance=args.distance,
        notes=args.notes,
    )
    with _client() as client:
        _print(message_json(client.call("RecordEvaluation", request)))
    return 0


def _history(args: argparse.Namespace) -> int:
    from protos.rtscore.v1 import registry_pb2 as pb

    request = pb.HistoryRequest(
        name=args.name,
        environment=args.env or "",
        actor=args.actor or "",
        version=args.version or 0,
        since=args.since or "",
        until=args.until or "",
    )
    with _client() as client:
        events = message_json(client.call("History", request))["events"]
    for event in events:
        for key in ("before_json", "after_json"):
            event[key.removesuffix("_json")] = json.loads(event.pop(key)) if event[key] else None
    if args.json:
        _print(events)
        return 0
    for e in events:
        where = f"{e['name']}@{e['version']}" + (f" in {e['environment']}" if e["environment"] else "")
        print(f"{e['at']}  {e['actor']:<12} {e['action']:<9} {where}  {e['reason']}")
    return 0


def _watch(args: argparse.Namespace) -> int:
    from protos.rtscore.v1 import registry_pb2 as pb

    with _client() as client:
        if args.members:
            stream = client.stream(
                "WatchMembers", pb.WatchMembersRequest(environment=args.env, pool=args.pool or "")
            )
        else:
            request = pb.WatchDeploymentsRequest(
                environment=args.env, pool=args.pool or "", since_revision=args.since
            )
            stream = client.stream("WatchDeployments", request)
        for message in stream:
            print(json.dumps(message_json(message)), flush=True)
    return 0


def register(subparsers: Any, name: str, help_text: str) -> None:
    """Add `rtscore registry` and its subcommands."""
    group = subparsers.add_parser(name, help=help_text, description=help_text)
    sub = group.add_subparsers(dest="registry_command", metavar="COMMAND", required=True)

    p = sub.add_parser("serve", help="run the registry gRPC service (database from RTSCORE_DATABASE_URL)")
    p.add_argument("--port", type=int)
    p.add_argument("--host")
    p.add_argument("--store", choices=["local", "postgres"])
    p.set_defaults(func=_serve)

    tokens = sub.add_parser("token", help="API tokens (talks to the database directly)")
    token_sub = tokens.add_subparsers(dest="token_command", metavar="COMMAND", required=True)
    p = token_sub.add_parser("create", help="create a token and print it once")
    p.add_argument("--name", required=True)
    p.add_argument("--role", required=True, choices=["admin", "author", "approver", "service"])
    p.set_defaults(func=_token_create)

    p = sub.add_parser("register", help="upload a bundle as a new version")
    p.add_argument("name")
    p.add_argument("--bundle", required=True)
    p.add_argument("--canary", help="a frame in MLeap's JSON LeapFrame format")
    p.add_argument("--expected", help="the output expected for the canary frame (JSON)")
    p.add_argument("--reason")
    p.add_argument("--metric", action="append", default=[], help="training metric key=value (repeatable)")
    p.add_argument("--tag", action="append", default=[], help="tag key=value (repeatable)")
    p.set_defaults(func=_register)

    p = sub.add_parser("get", help="one version as JSON")
    p.add_argument("ref", metavar="NAME@VERSION")
    p.set_defaults(func=_get)

    p = sub.add_parser("list", help="versions as JSON")
    p.add_argument("name", nargs="?")
    p.add_argument("--env")
    p.add_argument("--tag", action="append", default=[])
    p.set_defaults(func=_list)

    p = sub.add_parser("download", help="download a version's bundle, checking its sha256")
    p.add_argument("ref", metavar="NAME@VERSION")
    p.add_argument("--out", required=True)
    p.set_defaults(func=_download)

    for command, method, helptext in (
        ("deploy", "Deploy", "deploy a version to an environment as shadow or champion"),
        ("promote", "Promote", "promote a shadow version to champion"),
        ("retire", "Retire", "retire a version in an environment"),
        ("rollback", "Rollback", "re-promote the previous champion"),
    ):
        p = sub.add_parser(command, help=helptext)
        p.add_argument("ref", metavar="NAME" if command == "rollback" else "NAME@VERSION")
        p.add_argument("--env", required=True)
        p.add_argument("--reason", required=True)
        if command == "deploy":
            p.add_argument("--role", required=True, choices=["shadow", "champion"])
            p.add_argument("--pool")
            p.add_argument("--traffic-share", type=float, default=0.0)
        p.set_defaults(func=_change(method))

    p = sub.add_parser("evaluate", help="record a shadow evaluation of a candidate")
    p.add_argument("ref", metavar="NAME@VERSION")
    p.add_argument("--env", required=True)
    p.add_argument("--champion", type=int, default=0)
    p.add_argument("--samples", type=int, required=True)
    p.add_argument("--agreement", type=float, required=True)
    p.add_argument("--distance", type=float, required=True)
    p.add_argument("--notes", default="")
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("history", help="the audit log of a model")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.add_argument("--version", type=int)
    p.add_argument("--env")
    p.add_argument("--actor")
    p.add_argument("--since")
    p.add_argument("--until")
    p.set_defaults(func=_history)

    p = sub.add_parser("watch", help="stream desired deployments (or --members) as JSON lines")
    p.add_argument("--env", required=True)
    p.add_argument("--pool")
    p.add_argument("--since", type=int, default=0)
    p.add_argument("--members", action="store_true")
    p.set_defaults(func=_watch)
