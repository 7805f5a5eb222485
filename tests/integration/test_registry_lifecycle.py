"""A model's whole life through the registry's gRPC API, told back by the event log."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest

from protos.rtscore.v1 import registry_pb2 as pb
from tests.integration.registry_fixtures import (  # noqa: F401 - fixtures used by name
    FIXTURES,
    Team,
    bundle_variant,
    database_url_fixture,
    db_fixture,
    registry_fixture,
    status_of,
    team_fixture,
)

pytestmark = [pytest.mark.services, pytest.mark.asyncio(loop_scope="module")]


async def deploy(team: Team, version: int, env: str, role: str, reason: str) -> pb.Deployment:
    request = pb.DeployRequest(name="fraud", version=version, environment=env, role=role, reason=reason)
    return await team.author.call("Deploy", request)


async def passing_evaluation(team: Team, version: int, champion: int) -> pb.Evaluation:
    request = pb.EvaluationRequest(
        name="fraud",
        candidate_version=version,
        champion_version=champion,
        environment="production",
        sample_size=5000,
        agreement=0.995,
        score_distance=0.03,
        candidate_latency_p99_ms=2.1,
        champion_latency_p99_ms=2.4,
    )
    return await team.service.call("RecordEvaluation", request)


async def to_production_shadow(team: Team, version: int) -> None:
    await deploy(team, version, "integration", "champion", f"v{version} passes integration tests")
    await deploy(team, version, "qa", "champion", f"v{version} signed off by QA")
    await deploy(team, version, "production", "shadow", f"v{version} runs dark on live traffic")


async def test_lifecycle_is_told_exactly_by_the_event_log(team: Team, tmp_path: Path) -> None:
    canary = (FIXTURES / "frame.demo.json").read_text()
    v1 = await team.author.register(
        "fraud",
        bundle_variant(tmp_path, "v1"),
        canary_frame_json=canary,
        metrics={"auc": 0.91},
        tags={"team": "risk"},
        reason="first model",
    )
    assert (v1.version, v1.created, v1.author) == (1, True, "alice")
    assert [f["name"] for f in json.loads(v1.input_schema_json)] == ["demo:a", "demo:c", "demo:d"]
    assert json.loads(v1.canary_frame_json) == json.loads(canary)
    expected = json.loads(v1.canary_expected_json)
    assert [f["name"] for f in expected["schema"]["fields"]][-1] == "demo:prediction"
    assert len(expected["rows"]) == len(json.loads(canary)["rows"]), "the registry scored the canary itself"
    await to_production_shadow(team, 1)
    await passing_evaluation(team, 1, 0)
    promoted = await team.approver.call(
        "Promote", pb.ChangeRequest(name="fraud", version=1, environment="production", reason="first launch")
    )
    assert promoted.role == "champion"

    v2 = await team.author.register("fraud", bundle_variant(tmp_path, "v2"), reason="retrained on March")
    assert v2.version == 2
    await to_production_shadow(team, 2)
    evaluation = await passing_evaluation(team, 2, 1)
    assert evaluation.passed, evaluation.verdict
    await team.approver.call(
        "Promote", pb.ChangeRequest(name="fraud", version=2, environment="production", reason="better recall")
    )
    back = await team.approver.call(
        "Rollback", pb.RollbackRequest(name="fraud", environment="production", reason="false positives up")
    )
    assert (back.version, back.role) == (1, "champion")
    retired = await team.approver.call(
        "Retire", pb.ChangeRequest(name="fraud", version=1, environment="production", reason="end of life")
    )
    assert retired.role == "retired"

    history = await team.approver.call("History", pb.HistoryRequest(name="fraud"))
    story = [(e.action, e.version, e.environment, e.actor) for e in history.events]
    assert story == [
        ("register", 1, "", "alice"),
        ("deploy", 1, "integration", "alice"),
        ("deploy", 1, "qa", "alice"),
        ("deploy", 1, "production", "alice"),
        ("evaluate", 1, "production", "shadow-worker"),
        ("promote", 1, "production", "bob"),
        ("register", 2, "", "alice"),
        ("demote", 1, "integration", "alice"),
        ("deploy", 2, "integration", "alice"),
        ("demote", 1, "qa", "alice"),
        ("deploy", 2, "qa", "alice"),
        ("deploy", 2, "production", "alice"),
        ("evaluate", 2, "production", "shadow-worker"),
        ("demote", 1, "production", "bob"),
        ("promote", 2, "production", "bob"),
        ("demote", 2, "production", "bob"),
        ("rollback", 1, "production", "bob"),
        ("retire", 1, "production", "bob"),
    ]
    reasons = {(e.action, e.version, e.environment): e.reason for e in history.events}
    assert reasons[("rollback", 1, "production")] == "false positives up"
    assert reasons[("demote", 2, "production")] == "replaced by fraud@1: false positives up"
    promote = next(e for e in history.events if e.action == "promote" and e.version == 2)
    assert json.loads(promote.before_json)["role"] == "shadow"
    assert json.loads(promote.after_json)["role"] == "champion"

    evaluations = await team.approver.call("History", pb.HistoryRequest(name="fraud", actor="shadow-worker"))
    assert [(e.action, e.version) for e in evaluations.events] == [("evaluate", 1), ("evaluate", 2)]
    rollback_at = next(e.at for e in history.events if e.action == "demote" and e.version == 2)
    since = await team.approver.call("History", pb.HistoryRequest(name="fraud", since=rollback_at))
    assert [e.action for e in since.events] == ["demote", "rollback", "retire"]
    in_qa = await team.approver.call("History", pb.HistoryRequest(name="fraud", environment="qa", version=2))
    assert [e.action for e in in_qa.events] == ["deploy"]
    code, message = await status_of(team.approver.call("History", pb.HistoryRequest(since="yesterday")))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "since is not an RFC 3339 time" in message
    tagged = await team.approver.call("ListVersions", pb.ListVersionsRequest(tags={"team": "risk"}))
    assert [(v.name, v.version) for v in tagged.versions] == [("fraud", 1)]

    live = await team.approver.call(
        "ListVersions", pb.ListVersionsRequest(name="fraud", environment="production")
    )
    assert [v.version for v in live.versions] == [], "v1 retired and v2 demoted: nothing live in production"


async def test_same_bytes_twice_are_the_same_version(team: Team, tmp_path: Path) -> None:
    bundle = bundle_variant(tmp_path, "same")
    first = await team.author.register("twice", bundle)
    second = await team.author.register("twice", bundle)
    assert (first.version, first.created) == (1, True)
    assert (second.version, second.created, second.sha256) == (1, False, first.sha256)
    listed = await team.author.call("ListVersions", pb.ListVersionsRequest(name="twice"))
    assert len(listed.versions) == 1


async def test_download_streams_the_registered_bytes_with_their_sha256(team: Team, tmp_path: Path) -> None:
    bundle = bundle_variant(tmp_path, "download", "airbnb.model.lr.zip")
    version = await team.author.register("download", bundle)
    data, announced, size = b"", "", 0
    async for chunk in team.service.stub.DownloadBundle(
        pb.VersionRef(name="download", version=version.version), metadata=team.service.metadata
    ):
        data += chunk.data
        announced = chunk.sha256 or announced
        size = size or chunk.size
    assert data == bundle.read_bytes()
    assert announced == version.sha256
    assert size == len(data)


async def test_unknown_model_and_version_are_not_found(team: Team, tmp_path: Path) -> None:
    code, message = await status_of(team.author.call("GetVersion", pb.VersionRef(name="nobody", version=1)))
    assert code == grpc.StatusCode.NOT_FOUND
    assert "unknown model 'nobody'" in message
    await team.author.register("known", bundle_variant(tmp_path, "known-v1"))
    code, message = await status_of(team.author.call("GetVersion", pb.VersionRef(name="known", version=9)))
    assert code == grpc.StatusCode.NOT_FOUND
    assert "has no version 9" in message
