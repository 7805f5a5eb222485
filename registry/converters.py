"""Core dicts to and from registry protobuf messages; no logic beyond the translation."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from protos.rtscore.v1 import registry_pb2 as pb
from rtscore.errors import InvalidArgument


def _time(value: datetime | None) -> str:
    return value.isoformat() if value is not None else ""


def _json(value: Any) -> str:
    return json.dumps(value) if value is not None else ""


def version_pb(row: dict[str, Any], created: bool = False) -> pb.Version:
    """A version row as a Version message."""
    meta = row["bundle_meta"] or {}
    return pb.Version(
        name=row["name"],
        version=row["version"],
        sha256=row["sha256"],
        size=row["size"],
        input_schema_json=_json(row["input_schema"]),
        output_schema_json=_json(row["output_schema"]),
        bundle_name=meta.get("name") or "",
        bundle_format=meta.get("format") or "",
        mleap_version=meta.get("mleap_version") or "",
        canary_frame_json=_json(row["canary_frame"]),
        canary_expected_json=_json(row["canary_expected"]),
        metrics=row["metrics"],
        tags=row["tags"],
        author=row["author"],
        created_at=_time(row["created_at"]),
        created=created,
    )


def deployment_pb(row: dict[str, Any]) -> pb.Deployment:
    """A deployment row as a Deployment message."""
    return pb.Deployment(
        name=row["name"],
        version=row["version"],
        environment=row["environment"],
        pool=row["pool"],
        role=row["role"],
        traffic_share=row["traffic_share"],
        sha256=row["sha256"],
        revision=row["revision"],
        updated_at=_time(row["updated_at"]),
        updated_by=row["updated_by"],
        reason=row["reason"],
    )


def evaluation_pb(row: dict[str, Any]) -> pb.Evaluation:
    """An evaluation row as an Evaluation message."""
    fields = {k: v for k, v in row.items() if k != "recorded_at"}
    return pb.Evaluation(**fields, recorded_at=_time(row["recorded_at"]))


def event_pb(row: dict[str, Any]) -> pb.Event:
    """An event row as an Event message."""
    return pb.Event(
        id=row["id"],
        at=_time(row["at"]),
        actor=row["actor"],
        action=row["action"],
        name=row["name"] or "",
        version=row["version"] or 0,
        environment=row["environment"] or "",
        pool=row["pool"] or "",
        reason=row["reason"],
        before_json=_json(row["before"]),
        after_json=_json(row["after"]),
    )


def desired_state_pb(state: dict[str, Any]) -> pb.DesiredState:
    """A desired-state snapshot as a DesiredState message."""
    return pb.DesiredState(
        environment=state["environment"],
        pool=state["pool"],
        revision=state["revision"],
        deployments=[deployment_pb(d) for d in state["deployments"]],
    )


def parse_json_field(text: str, what: str) -> Any:
    """A JSON text field of a request (empty means absent)."""
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise InvalidArgument(f"{what} is not valid JSON: {err}") from err


def hosted_versions(messages: Any) -> list[dict[str, Any]]:
    """HostedVersion messages as the dicts the membership table keeps."""
    return [
        {"name": m.name, "version": m.version, "sha256": m.sha256, "roles": list(m.roles),
         "health": m.health, "reason": m.reason}
        for m in messages
    ]  # fmt: skip


def membership_pb(environment: str, pool: str, members: list[dict[str, Any]]) -> pb.Membership:
    """Live member rows as a Membership message (endpoints, and each member's detail)."""
    return pb.Membership(
        environment=environment,
        pool=pool,
        endpoints=[m["endpoint"] for m in members],
        members=[
            pb.Member(
                endpoint=m["endpoint"],
                health=m["health"],
                hosted=[pb.HostedVersion(**h) for h in m["hosted"]],
                refused=[pb.HostedVersion(**h) for h in m["refused"]],
                expires_at=_time(m["expires_at"]),
            )
            for m in members
        ],
    )
