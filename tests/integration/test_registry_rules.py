"""Rules the registry enforces on the server and in the database, whoever the client is."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import grpc
import pytest

from protos.rtscore.v1 import registry_pb2 as pb
from tests.integration.registry_fixtures import (  # noqa: F401 - fixtures used by name
    Caller,
    Team,
    bundle_variant,
    database_url_fixture,
    db_fixture,
    registry_fixture,
    status_of,
    team_fixture,
)

pytestmark = [pytest.mark.services, pytest.mark.asyncio(loop_scope="module")]


def deploy_request(name: str, version: int, env: str, role: str, reason: str = "ship it") -> pb.DeployRequest:
    return pb.DeployRequest(name=name, version=version, environment=env, role=role, reason=reason)


def change(name: str, version: int, env: str = "production", reason: str = "ship it") -> pb.ChangeRequest:
    return pb.ChangeRequest(name=name, version=version, environment=env, reason=reason)


async def evaluate(
    team: Team, name: str, version: int, agreement: float = 0.999, champion: int = 0
) -> pb.Evaluation:
    request = pb.EvaluationRequest(
        name=name,
        candidate_version=version,
        champion_version=champion,
        environment="production",
        sample_size=500,
        agreement=agreement,
        score_distance=0.01,
    )
    return await team.service.call("RecordEvaluation", request)


async def shadow_in_production(
    team: Team, tmp_path: Path, name: str, versions: int, by: Caller | None = None
) -> None:
    for i in range(1, versions + 1):
        await (by or team.author).register(name, bundle_variant(tmp_path, f"{name}-{i}"))
        await team.author.call("Deploy", deploy_request(name, i, "integration", "shadow"))
        await team.author.call("Deploy", deploy_request(name, i, "qa", "shadow"))
        await team.author.call("Deploy", deploy_request(name, i, "production", "shadow"))


async def test_database_refuses_a_second_champion(team: Team, db: asyncpg.Pool, tmp_path: Path) -> None:
    await shadow_in_production(team, tmp_path, "solo", 2)
    await team.approver.call("Promote", change("solo", 1, "integration"))
    with pytest.raises(asyncpg.UniqueViolationError, match="deployments_one_champion"):
        await db.execute(
            "UPDATE deployments SET role = 'champion' WHERE environment = 'integration'"
            " AND version_id = (SELECT v.id FROM versions v JOIN models m ON m.id = v.model_id"
            " WHERE m.name = 'solo' AND v.version = 2)"
        )


async def test_event_rows_cannot_be_updated_or_deleted(db: asyncpg.Pool, team: Team) -> None:
    assert await db.fetchval("SELECT count(*) FROM events") > 0
    for statement in ("UPDATE events SET actor = 'mallory'", "DELETE FROM events", "TRUNCATE events"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await db.execute(statement)


async def test_environments_are_reached_in_order(team: Team, tmp_path: Path) -> None:
    await team.author.register("ordered", bundle_variant(tmp_path, "ordered"))
    code, message = await status_of(team.author.call("Deploy", deploy_request("ordered", 1, "qa", "shadow")))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "not been deployed to integration yet" in message
    await team.author.call("Deploy", deploy_request("ordered", 1, "integration", "shadow"))
    code, message = await status_of(
        team.author.call("Deploy", deploy_request("ordered", 1, "production", "shadow"))
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "not been deployed to qa yet" in message


async def test_production_promotion_needs_a_passing_evaluation(team: Team, tmp_path: Path) -> None:
    await shadow_in_production(team, tmp_path, "gated", 1)
    code, message = await status_of(team.approver.call("Promote", change("gated", 1)))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "has no evaluation in production" in message
    failing = await evaluate(team, "gated", 1, agreement=0.5)
    assert not failing.passed
    code, message = await status_of(team.approver.call("Promote", change("gated", 1)))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "failed: agreement 0.5000 < 0.95" in message
    code, _ = await status_of(
        team.approver.call("Deploy", deploy_request("gated", 1, "production", "champion"))
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION, "deploying as champion passes the same gate"
    await evaluate(team, "gated", 1)
    assert (await team.approver.call("Promote", change("gated", 1))).role == "champion"


async def test_the_author_cannot_approve_their_own_version(team: Team, tmp_path: Path) -> None:
    await shadow_in_production(team, tmp_path, "selfish", 1, by=team.admin)
    await evaluate(team, "selfish", 1)
    code, message = await status_of(team.admin.call("Promote", change("selfish", 1)))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "admin registered selfish@1, so cannot approve it" in message
    assert (await team.approver.call("Promote", change("selfish", 1))).role == "champion"


async def test_the_gate_needs_an_evaluation_against_the_champion_being_replaced(
    team: Team, tmp_path: Path
) -> None:
    await shadow_in_production(team, tmp_path, "stale", 3)
    await evaluate(team, "stale", 1)
    await evaluate(team, "stale", 3)  # v3 measured while there was no champion yet
    await team.approver.call("Promote", change("stale", 1))

    code, message = await status_of(team.approver.call("Promote", change("stale", 3)))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "compared it with no champion, but the champion there is stale@1" in message
    await evaluate(team, "stale", 2, champion=1)
    await team.approver.call("Promote", change("stale", 2))
    await evaluate(team, "stale", 3, champion=1)  # v2 replaced v1 meanwhile
    code, message = await status_of(team.approver.call("Promote", change("stale", 3)))
    assert "compared it with stale@1, but the champion there is stale@2" in message
    await evaluate(team, "stale", 3, champion=2)
    assert (await team.approver.call("Promote", change("stale", 3))).role == "champion"


async def test_promotion_demotes_the_previous_champion(team: Team, db: asyncpg.Pool, tmp_path: Path) -> None:
    await shadow_in_production(team, tmp_path, "relay", 2)
    for version in (1, 2):
        await evaluate(team, "relay", version, champion=version - 1)
        await team.approver.call("Promote", change("relay", version))
    roles = await db.fetch(
        "SELECT v.version, d.role FROM deployments d JOIN versions v ON v.id = d.version_id"
        " JOIN models m ON m.id = d.model_id WHERE m.name = 'relay' AND d.environment = 'production'"
        " ORDER BY v.version"
    )
    assert [(r["version"], r["role"]) for r in roles] == [(1, "retired"), (2, "champion")]


async def test_concurrent_promotions_leave_one_champion(team: Team, db: asyncpg.Pool, tmp_path: Path) -> None:
    await shadow_in_production(team, tmp_path, "race", 2)
    for version in (1, 2):
        await evaluate(team, "race", version)
    outcomes = await asyncio.gather(
        team.approver.call("Promote", change("race", 1, reason="bob's pick")),
        team.approver2.call("Promote", change("race", 2, reason="carol's pick")),
        return_exceptions=True,
    )
    won = [o for o in outcomes if isinstance(o, pb.Deployment)]
    lost = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    assert len(won) + len(lost) == 2, outcomes
    assert won, outcomes
    for err in lost:
        assert err.code() in (grpc.StatusCode.ABORTED, grpc.StatusCode.FAILED_PRECONDITION)
        assert err.details(), "a refused promotion says why"
    champions = await db.fetch(
        "SELECT v.version FROM deployments d JOIN versions v ON v.id = d.version_id JOIN models m"
        " ON m.id = d.model_id WHERE m.name = 'race' AND d.environment = 'production' AND d.role = 'champion'"
    )
    assert len(champions) == 1
    assert champions[0]["version"] in {w.version for w in won}
    promotions = await db.fetchval("SELECT count(*) FROM events WHERE model = 'race' AND action = 'promote'")
    assert promotions == len(won), "every successful promotion, and only those, is in the event log"


async def test_of_two_promotions_in_flight_together_one_wins_and_one_is_aborted(
    team: Team, db: asyncpg.Pool, tmp_path: Path
) -> None:
    await shadow_in_production(team, tmp_path, "duel", 2)
    for version in (1, 2):
        await evaluate(team, "duel", version)
    async with db.acquire() as conn:
        # an unrelated change holds the model, so both promotions are surely in flight at once
        holder = conn.transaction()
        await holder.start()
        await conn.execute("SELECT 1 FROM models WHERE name = 'duel' FOR UPDATE")
        calls = [
            asyncio.ensure_future(team.approver.call("Promote", change("duel", 1, reason="bob's pick"))),
            asyncio.ensure_future(team.approver2.call("Promote", change("duel", 2, reason="carol's pick"))),
        ]
        await asyncio.sleep(0.5)
        assert not any(c.done() for c in calls), "both promotions wait for the model"
        await holder.commit()
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    won = [o for o in outcomes if isinstance(o, pb.Deployment)]
    lost = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    assert len(won) == 1, outcomes
    assert len(lost) == 1, outcomes
    assert lost[0].code() == grpc.StatusCode.ABORTED
    assert f"a concurrent change made duel@{won[0].version} champion" in (lost[0].details() or "")


async def test_a_retired_version_needs_a_new_reason_to_return(team: Team, tmp_path: Path) -> None:
    await team.author.register("phoenix", bundle_variant(tmp_path, "phoenix"))
    await team.author.call("Deploy", deploy_request("phoenix", 1, "integration", "shadow"))
    await team.approver.call("Retire", change("phoenix", 1, "integration", reason="drift"))
    code, message = await status_of(
        team.author.call("Deploy", deploy_request("phoenix", 1, "integration", "shadow", reason="drift"))
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "needs a new reason" in message
    back = await team.author.call(
        "Deploy", deploy_request("phoenix", 1, "integration", "shadow", reason="drift fixed upstream")
    )
    assert back.role == "shadow"


async def test_every_change_needs_a_reason(team: Team, tmp_path: Path) -> None:
    await team.author.register("terse", bundle_variant(tmp_path, "terse"))
    code, message = await status_of(
        team.author.call("Deploy", deploy_request("terse", 1, "integration", "shadow", reason=" "))
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "reason is required" in message


async def test_tokens_and_roles_decide_who_may_call(team: Team) -> None:
    anonymous = team.author.stub.GetVersion(pb.VersionRef(name="x", version=1), timeout=10)
    code, message = await status_of(anonymous)
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert "missing bearer token" in message
    forged = team.author.stub.GetVersion(
        pb.VersionRef(name="x", version=1), metadata=[("authorization", "Bearer rts_forged")], timeout=10
    )
    assert (await status_of(forged))[0] == grpc.StatusCode.UNAUTHENTICATED
    code, message = await status_of(team.author.call("Promote", change("x", 1)))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert "Promote needs one of the roles admin, approver; alice has role author" in message
    code, _ = await status_of(team.service.call("Deploy", deploy_request("x", 1, "qa", "shadow")))
    assert code == grpc.StatusCode.PERMISSION_DENIED


async def test_unknown_environment_is_named(team: Team, tmp_path: Path) -> None:
    await team.author.register("lost", bundle_variant(tmp_path, "lost"))
    code, message = await status_of(
        team.author.call("Deploy", deploy_request("lost", 1, "staging", "shadow"))
    )
    assert code == grpc.StatusCode.NOT_FOUND
    assert "unknown environment 'staging': known are integration, qa, production" in message


async def test_a_version_reading_other_inputs_cannot_replace_the_champion(team: Team, tmp_path: Path) -> None:
    await team.author.register("contract", bundle_variant(tmp_path, "contract-1"))
    await team.author.register("contract", bundle_variant(tmp_path, "contract-2", "airbnb.model.lr.zip"))
    await team.author.register("contract", bundle_variant(tmp_path, "contract-3"))
    await team.author.call("Deploy", deploy_request("contract", 1, "integration", "champion"))
    for version in (2, 3):
        await team.author.call("Deploy", deploy_request("contract", version, "integration", "shadow"))
    code, message = await status_of(team.approver.call("Promote", change("contract", 2, "integration")))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "contract@2 reads other inputs than contract@1, champion in integration" in message
    assert "reads 'bathrooms', which the champion does not" in message
    assert "does not read 'demo:a'" in message
    assert "register it as a model of its own" in message
    # the same inputs in other bytes (a retrained model) replace it as ever
    promoted = await team.approver.call("Promote", change("contract", 3, "integration"))
    assert promoted.role == "champion"
    # deployed straight as champion, the same check
    await team.author.register("contract", bundle_variant(tmp_path, "contract-4", "airbnb.model.lr.zip"))
    code, message = await status_of(
        team.author.call("Deploy", deploy_request("contract", 4, "integration", "champion"))
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "contract@4 reads other inputs than contract@3" in message
