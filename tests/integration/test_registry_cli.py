"""The `rtscore registry` command contract, run as a real process against a real registry."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from registry.server import RunningRegistry
from tests.integration.registry_fixtures import (  # noqa: F401 - fixtures used by name
    FIXTURES,
    Team,
    bundle_variant,
    database_url_fixture,
    db_fixture,
    registry_fixture,
    team_fixture,
)

pytestmark = [pytest.mark.services, pytest.mark.asyncio(loop_scope="module")]


async def rtscore(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """Run `rtscore ARGS` in a child process; (exit code, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rtscore.cli",
        *args,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def client_env(registry: RunningRegistry, token: str) -> dict[str, str]:
    return {"RTSCORE_REGISTRY": registry.address, "RTSCORE_TOKEN": token}


async def test_token_create_prints_the_token_alone_and_refuses_a_duplicate(database_url: str) -> None:
    env = {"RTSCORE_DATABASE_URL": database_url}
    code, out, err = await rtscore(
        "registry", "token", "create", "--name", "ci-bot", "--role", "author", env=env
    )
    assert (code, err) == (0, "")
    token = out.strip()
    assert out == token + "\n"
    assert token.startswith("rts_")
    code, out, err = await rtscore(
        "registry", "token", "create", "--name", "ci-bot", "--role", "admin", env=env
    )
    assert (code, out) == (1, "")
    assert err == "rtscore registry: a token named 'ci-bot' already exists\n"


async def test_register_deploy_and_history_speak_json(
    registry: RunningRegistry, team: Team, tmp_path: Path
) -> None:
    bundle = bundle_variant(tmp_path, "cli")
    author = client_env(registry, team.author.token)
    code, out, err = await rtscore(
        "registry", "register", "clifraud", "--bundle", str(bundle),
        "--canary", str(FIXTURES / "frame.demo.json"), "--reason", "from the command line",
        "--metric", "auc=0.93", "--tag", "team=risk", env=author,
    )  # fmt: skip
    assert code == 0, err
    version = json.loads(out)
    assert (version["name"], version["version"], version["created"]) == ("clifraud", 1, True)
    assert len(version["sha256"]) == 64
    assert version["metrics"] == {"auc": 0.93}
    code, out, err = await rtscore(
        "registry", "deploy", "clifraud@1", "--env", "integration", "--role", "shadow", "--reason", "try it",
        env=author,
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["role"] == "shadow"
    code, out, err = await rtscore("registry", "history", "clifraud", "--json", env=author)
    assert code == 0, err
    events = json.loads(out)
    assert [(e["action"], e["actor"], e["version"], e["environment"]) for e in events] == [
        ("register", "alice", 1, ""),
        ("deploy", "alice", 1, "integration"),
    ]
    assert all(e["at"] for e in events)
    assert events[1]["after"]["role"] == "shadow"


async def test_a_refused_call_exits_non_zero_with_one_line(registry: RunningRegistry, team: Team) -> None:
    code, out, err = await rtscore(
        "registry", "promote", "clifraud@1", "--env", "integration", "--reason", "mine",
        env=client_env(registry, team.author.token),
    )  # fmt: skip
    assert (code, out) == (1, "")
    assert err.count("\n") == 1
    assert "PERMISSION_DENIED" in err
    assert "Promote needs one of the roles admin, approver" in err
    code, _, err = await rtscore("registry", "list", env=client_env(registry, ""))
    assert code == 1
    assert err.count("\n") == 1
    assert "UNAUTHENTICATED" in err
    code, _, err = await rtscore(
        "registry", "get", "no-version-here", env=client_env(registry, team.author.token)
    )
    assert code == 1
    assert "expected NAME@VERSION" in err
    assert "Traceback" not in err
