"""The platform the demo runs: local services, a registry with tokens, scorers, an extractor, a shadow worker.

Every part is a child process started from the real `rtscore` CLI (see `children.py`); this module knows
their command lines, the line each prints when it is ready, and the order they start and stop in.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from rtscore.demo.children import Child, Children

POOL = "fraud"
ENVIRONMENT = "production"
MODEL = "fraud"

# Who does what in the audit log: a data scientist registers and deploys, a release manager approves,
# the platform's processes (scorers, extractor, shadow tier) call with a service token.
PEOPLE = {"author": ("dana", "author"), "approver": ("riley", "approver"), "service": ("platform", "service")}

# What the demo's registry asks of a shadow evaluation before the production gate opens. A short demo
# sees hundreds of shadow transactions, not the thousands a real gate would want.
GATE = {"min_sample_size": 200, "min_agreement": 0.95, "max_score_distance": 0.25}

# The extractor's deadline for its scorer call and its Redis calls. Every part of the demo shares one
# machine (often a laptop with other work on it): a starved CPU should show as latency, not as failures.
SCORE_TIMEOUT_MS = 250

# Stop tiers: the registry (0) last; the scorers and the shadow worker (peers) together; the extractor,
# which calls the scorers, first (it starts in a tier of its own after them).
PEERS = 1

_LISTENING = r"listening on [0-9.]+:(\d+)"
_SCORER_READY = r"rtscore scorer: serving on [0-9.]+:(\d+)"
_EXTRACTOR_READY = r"rtscore extractor: serving on [0-9.]+:(\d+)(?: metrics on [0-9.]+:(\d+))?"
_SHADOW_READY = r"shadow worker ready"


@dataclass(frozen=True)
class Services:
    """Where Postgres, Kafka and Redis answer, and whether this run started them."""

    database_url: str
    kafka_bootstrap: str
    redis_url: str | None
    started_here: bool


def ensure_services() -> Services:
    """The local services: reused when running (or given by RTSCORE_* variables), else started."""
    from rtscore.localservices.settings import LocalServicesSettings
    from rtscore.localservices.stack import PROJECT_ROOT, LocalServices

    settings = LocalServicesSettings()
    stack = LocalServices(settings.services_root or PROJECT_ROOT, settings)
    was_running = all(status.running for status in stack.status())
    endpoints = stack.up()
    return Services(endpoints.database_url, endpoints.kafka_bootstrap, endpoints.redis_url, not was_running)


def with_database(url: str, name: str) -> str:
    """url pointing at database `name` instead."""
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


async def create_database(server_url: str) -> str:
    """A fresh database for this run's registry and shadow rows; returns its URL."""
    name = f"rtscore_demo_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return with_database(server_url, name)


async def drop_database(server_url: str, database_url: str) -> None:
    """Drop this run's database (its connections are closed first)."""
    name = urlsplit(database_url).path.lstrip("/")
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def create_tokens(database_url: str, folder: Path) -> dict[str, Path]:
    """One token per person (as `rtscore registry token create` makes them), each in a 0600 file."""
    from registry.access import create_token
    from registry.db import open_pool

    files = {}
    async with open_pool(database_url, max_size=1) as pool:
        for key, (name, role) in PEOPLE.items():
            path = folder / f"{name}.token"
            path.write_text(await create_token(pool, name, role) + "\n")
            path.chmod(0o600)
            files[key] = path
    return files


def read_token(path: Path) -> str:
    """A token file's token."""
    return path.read_text().strip()


@dataclass
class Platform:
    """The running parts and how to reach them."""

    work: Path
    services: Services
    database_url: str
    children: Children
    tokens: dict[str, Path] = field(default_factory=dict)
    registry: str = ""
    scorers: list[str] = field(default_factory=list)
    extractor: str = ""
    shadow_topic: str = ""
    shadow_group: str = ""
    metrics: dict[str, int] = field(default_factory=dict)  # Prometheus ports by part (the extractor's)

    @property
    def env(self) -> dict[str, str]:
        """Environment of every child and of the demo's own registry calls."""
        values = {
            "RTSCORE_DATABASE_URL": self.database_url,
            "RTSCORE_KAFKA_BOOTSTRAP": self.services.kafka_bootstrap,
            "RTSCORE_SHADOW_BUNDLE_DIR": str(self.work / "shadow-bundles"),
        }
        if self.services.redis_url:
            values["RTSCORE_REDIS_URL"] = self.services.redis_url
        if self.registry:
            values["RTSCORE_REGISTRY"] = self.registry
        return values

    def start_registry(self) -> Child:
        """`rtscore registry serve` on a free port, over this run's database and bundle store."""
        gate = {f"RTSCORE_REGISTRY_EVAL_{k.upper()}": str(v) for k, v in GATE.items()}
        child = self.children.start(
            "registry",
            ["registry", "serve", "--port", "0"],
            ready=_LISTENING,
            env={**self.env, **gate, "RTSCORE_REGISTRY_STORE_DIR": str(self.work / "registry-store")},
        )
        assert child.ready is not None
        self.registry = f"127.0.0.1:{child.ready.group(1)}"
        self.children.env.update(self.env)
        return child

    def spawn_scorers(self, count: int) -> list[Child]:
        """`count` scorers following pool `fraud` in production (readiness checked by `wait_scorers`)."""
        token = str(self.tokens["service"])
        args = ["scorer", "serve", "--port", "0", "--registry", self.registry]
        args += ["--pool", POOL, "--env", ENVIRONMENT, "--token-file", token]
        return [self.children.spawn(f"scorer-{i + 1}", args, tier=PEERS) for i in range(count)]

    def wait_scorers(self, spawned: list[Child]) -> None:
        """Block until every scorer listens; their addresses go to `scorers`."""
        for child in spawned:
            found = self.children.wait_ready(child, _SCORER_READY, 180.0)
            self.scorers.append(f"127.0.0.1:{found.group(1)}")

    def spawn_shadow_worker(self) -> Child:
        """`rtscore shadow run` on this run's topic and group (readiness checked by `wait_shadow_worker`)."""
        self.shadow_topic = f"rtscore.demo.{secrets.token_hex(3)}.shadow"
        self.shadow_group = f"{self.shadow_topic}.workers"
        return self.children.spawn(
            "shadow-worker",
            ["shadow", "run", "--registry", self.registry, "--env", ENVIRONMENT, "--topic", self.shadow_topic,
             "--group", self.shadow_group, "--batch-size", "500", "--log-level", "INFO"],
            env={"RTSCORE_SHADOW_TOKEN": read_token(self.tokens["service"])},
            tier=PEERS,
        )  # fmt: skip

    def start_extractor(self, spec: Path | None, shadow_fraction: float) -> Child:
        """`rtscore extractor serve` on the pool's champion, velocity on Redis, shadow copies to Kafka."""
        args = ["extractor", "serve", "--port", "0", "--registry", self.registry, "--pool", POOL,
                "--environment", ENVIRONMENT, "--model", f"{MODEL}:champion", "--velocity", "redis",
                "--shadow-topic", self.shadow_topic, "--shadow-fraction", repr(shadow_fraction),
                "--shadow-key", "card_token", "--score-timeout-ms", str(SCORE_TIMEOUT_MS),
                "--metrics-port", "0"]  # fmt: skip
        if spec is not None:
            args += ["--spec", str(spec)]
        child = self.children.start(
            "extractor",
            args,
            ready=_EXTRACTOR_READY,
            timeout_s=120.0,
            env={
                "RTSCORE_TOKEN": read_token(self.tokens["service"]),
                "RTSCORE_EXTRACTOR_VELOCITY_TIMEOUT_S": str(SCORE_TIMEOUT_MS / 1e3),
            },
        )
        assert child.ready is not None
        self.extractor = f"127.0.0.1:{child.ready.group(1)}"
        if child.ready.group(2):
            self.metrics["extractor"] = int(child.ready.group(2))
        return child

    def wait_shadow_worker(self, child: Child) -> None:
        """Block until the shadow worker has joined its group."""
        self.children.wait_ready(child, _SHADOW_READY, 120.0)
