"""`LocalServices`: bring the local Postgres, Kafka and Redis up, report them, and take them down."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from rtscore.localservices.errors import ServiceFailed, ServicesNotRunning
from rtscore.localservices.kafka import KafkaBroker, fetch_jars, kafka_version
from rtscore.localservices.postgres import PostgresCluster
from rtscore.localservices.probes import kafka_answers, postgres_answers, redis_answers
from rtscore.localservices.processes import free_port, is_alive, port_is_free, service_account
from rtscore.localservices.redis import RedisServer
from rtscore.localservices.settings import LocalServicesSettings
from rtscore.localservices.state import ServiceRecord, StateFile

Probe = Callable[[str, float], str | None]
Starter = Callable[[ServiceRecord | None], ServiceRecord]
# The variable that names an existing server for each service, and how to check that it answers.
_EXTERNAL: dict[str, tuple[str, Probe]] = {
    "postgres": ("RTSCORE_DATABASE_URL", postgres_answers),
    "kafka": ("RTSCORE_KAFKA_BOOTSTRAP", kafka_answers),
    "redis": ("RTSCORE_REDIS_URL", redis_answers),
}
SERVICES = ("postgres", "kafka", "redis")
PROJECT_ROOT = Path(__file__).resolve().parents[2]
# A service that was up a moment ago answers at once; this bounds the re-check on a repeated `up`.
_RECHECK_S = 10.0


@dataclass(frozen=True)
class ServiceEndpoints:
    """Where the services answer."""

    database_url: str
    kafka_bootstrap: str
    redis_url: str | None = None

    def env_lines(self, export: bool = False) -> list[str]:
        """Shell assignments for `eval "$(rtscore services env)"` (`export` prefixed if asked)."""
        prefix = "export " if export else ""
        return [
            f"{prefix}RTSCORE_DATABASE_URL={shlex.quote(self.database_url)}",
            f"{prefix}RTSCORE_KAFKA_BOOTSTRAP={shlex.quote(self.kafka_bootstrap)}",
        ] + ([f"{prefix}RTSCORE_REDIS_URL={shlex.quote(self.redis_url)}"] if self.redis_url else [])


@dataclass(frozen=True)
class ServiceStatus:
    """One service as `status` sees it."""

    name: str
    running: bool
    managed: bool
    address: str | None
    pid: int | None
    where: str

    def describe(self) -> str:
        """One line for people: what runs where."""
        if not self.running:
            return f"{self.name}: stopped ({self.where})"
        owner = f"started here, pid {self.pid}" if self.managed else "provided by the environment"
        return f"{self.name}: running at {self.address} ({owner}; {self.where})"


class LocalServices:
    """The Postgres, Kafka and Redis whose state lives under `<root>/.rtscore` (root: the repository)."""

    def __init__(
        self,
        root: Path = PROJECT_ROOT,
        settings: LocalServicesSettings | None = None,
        *,
        kafka_libs: Path | None = None,
        kafka_pom: Path | None = None,
    ) -> None:
        self.root = root.resolve()
        self.settings = settings if settings is not None else LocalServicesSettings()
        self.state_dir = self.root / ".rtscore"
        self.kafka_libs = kafka_libs if kafka_libs is not None else self.root / ".cache" / "kafka" / "libs"
        self.kafka_pom = kafka_pom if kafka_pom is not None else PROJECT_ROOT / "jvm" / "kafka" / "pom.xml"
        self._state = StateFile(self.state_dir)
        self._broker = KafkaBroker(self.state_dir / "kafka", self.kafka_libs, self.settings)
        self._redis = RedisServer(self.state_dir / "redis", self.settings)

    def fetch(self) -> bool:
        """Download Kafka's jars unless present (or unless an external Kafka is configured)."""
        if self.settings.kafka_bootstrap:
            return False
        return fetch_jars(self.kafka_libs, self.kafka_pom, self.settings.fetch_timeout_s)

    def up(self) -> ServiceEndpoints:
        """Start whatever is not running yet, check each answers, record what was started, return where."""
        given = self.settings
        with self._state.locked():
            records = self._state.load()
            database_url = self._bring_up(records, "postgres", given.database_url, self._up_postgres)
            bootstrap = self._bring_up(records, "kafka", given.kafka_bootstrap, self._up_kafka)
            redis_url = self._bring_up(records, "redis", given.redis_url, self._up_redis)
        return ServiceEndpoints(database_url, bootstrap, redis_url)

    def down(self, names: Collection[str] = SERVICES) -> None:
        """Stop the services `up` started under this root (never external ones), all or those in
        `names`, and forget them."""
        unknown = sorted(set(names) - set(SERVICES))
        if unknown:
            raise ValueError(f"no local service named {', '.join(unknown)} (known: {', '.join(SERVICES)})")
        with self._state.locked():
            records = self._state.load()
            kafka, redis = records.get("kafka"), records.get("redis")
            if "kafka" in names:
                self._broker.stop(kafka.pid if kafka is not None else self._broker.find_pid())
            if "redis" in names:
                self._redis.stop(
                    redis.pid if redis is not None and self._redis.owns(redis.pid) else self._redis.find_pid()
                )
            if "postgres" in names:
                self._cluster().stop()
            self._state.save({name: record for name, record in records.items() if name not in names})

    def endpoints(self) -> ServiceEndpoints:
        """Where the services answer; `ServicesNotRunning` when a local one is not up."""
        by_name = {status.name: status for status in self.status()}
        stopped = [name for name, status in by_name.items() if not status.running or status.address is None]
        if stopped:
            raise ServicesNotRunning(
                f"{' and '.join(stopped)} not running (state in {self.state_dir}): run `rtscore services up`"
            )
        records = self._state.load()
        database_url = self.settings.database_url or records["postgres"].address
        bootstrap = self.settings.kafka_bootstrap or records["kafka"].address
        return ServiceEndpoints(database_url, bootstrap, self.settings.redis_url or records["redis"].address)

    def status(self) -> list[ServiceStatus]:
        """What runs where, checked now (external services by a short request)."""
        records = self._state.load()
        return [
            self._postgres_status(records.get("postgres")),
            self._kafka_status(records.get("kafka")),
            self._redis_status(records.get("redis")),
        ]

    def versions(self) -> dict[str, str | None]:
        """The versions in use: `postgres` (of pg_ctl) and `kafka` (of the fetched jars)."""
        return {"postgres": self._cluster().version(), "kafka": kafka_version(self.kafka_libs)}

    def _cluster(self) -> PostgresCluster:
        account = service_account(self.settings.service_user)
        return PostgresCluster(self.state_dir, self.settings, account)

    def _bring_up(
        self, records: dict[str, ServiceRecord], name: str, given: str | None, start: Starter
    ) -> str:
        """The address of service `name`: the one `given` in the environment once it answers, else ours."""
        if given:
            variable, answers = _EXTERNAL[name]
            problem = answers(given, self.settings.start_timeout_s)
            _require(problem, f"the server at {variable} ({_redact(given)})")
            return given
        records[name] = start(records.get(name))
        self._state.save(records)
        return records[name].address

    def _up_postgres(self, previous: ServiceRecord | None) -> ServiceRecord:
        cluster = self._cluster()
        pid = cluster.running_pid()
        if pid is not None and previous is not None:
            problem = postgres_answers(previous.address, _RECHECK_S)
            _require(problem, f"the running local Postgres ({previous.address})")
            return ServiceRecord(address=previous.address, pid=pid, port=previous.port)
        cluster.stop()  # running without a record: restart it on a port we know
        run = cluster.start(_reuse_or_new(previous.port if previous else None))
        return ServiceRecord(address=run.url, pid=run.pid, port=run.port)

    def _up_kafka(self, previous: ServiceRecord | None) -> ServiceRecord:
        if previous is not None and self._broker.owns(previous.pid):
            problem = kafka_answers(previous.address, _RECHECK_S)
            _require(problem, f"the running local Kafka ({previous.address})")
            return previous
        fetch_jars(self.kafka_libs, self.kafka_pom, self.settings.fetch_timeout_s)
        self._broker.stop(self._broker.find_pid())
        port = _reuse_or_new(previous.port if previous else None)
        controller = _reuse_or_new(self._broker.formatted_controller_port(), avoid={port})
        run = self._broker.start(port, controller)
        return ServiceRecord(address=run.bootstrap, pid=run.pid, port=run.port, controller_port=controller)

    def _up_redis(self, previous: ServiceRecord | None) -> ServiceRecord:
        if previous is not None and self._redis.owns(previous.pid):
            problem = redis_answers(previous.address, _RECHECK_S)
            _require(problem, f"the running local Redis ({previous.address})")
            return previous
        self._redis.stop(self._redis.find_pid())
        run = self._redis.start(_reuse_or_new(previous.port if previous else None))
        return ServiceRecord(address=run.url, pid=run.pid, port=run.port)

    def _postgres_status(self, record: ServiceRecord | None) -> ServiceStatus:
        url = self.settings.database_url
        if url:
            running = postgres_answers(url, 2.0) is None
            return ServiceStatus("postgres", running, False, _redact(url), None, "RTSCORE_DATABASE_URL")
        cluster = self._cluster()
        pid = cluster.running_pid()
        address = _redact(record.address) if record is not None and pid is not None else None
        return ServiceStatus("postgres", pid is not None, True, address, pid, f"data in {cluster.data}")

    def _kafka_status(self, record: ServiceRecord | None) -> ServiceStatus:
        bootstrap = self.settings.kafka_bootstrap
        if bootstrap:
            running = kafka_answers(bootstrap, 2.0) is None
            return ServiceStatus("kafka", running, False, bootstrap, None, "RTSCORE_KAFKA_BOOTSTRAP")
        pid = record.pid if record is not None and self._broker.owns(record.pid) else self._broker.find_pid()
        address = record.address if record is not None and pid is not None else None
        where = f"data in {self._broker.data}, log {self._broker.log}"
        return ServiceStatus("kafka", pid is not None and is_alive(pid), True, address, pid, where)

    def _redis_status(self, record: ServiceRecord | None) -> ServiceStatus:
        url = self.settings.redis_url
        if url:
            running = redis_answers(url, 2.0) is None
            return ServiceStatus("redis", running, False, _redact(url), None, "RTSCORE_REDIS_URL")
        pid = record.pid if record is not None and self._redis.owns(record.pid) else self._redis.find_pid()
        address = record.address if record is not None and pid is not None else None
        where = f"log {self._redis.log}"
        return ServiceStatus("redis", pid is not None and is_alive(pid), True, address, pid, where)


def _require(problem: str | None, what: str) -> None:
    if problem is not None:
        raise ServiceFailed(f"{what} does not answer: {problem}")


def _reuse_or_new(port: int | None, avoid: frozenset[int] | set[int] = frozenset()) -> int:
    if port is not None and port not in avoid and port_is_free(port):
        return port
    while True:
        candidate = free_port()
        if candidate not in avoid:
            return candidate


def _redact(url: str) -> str:
    """`url` with any password replaced by `***`, for messages and status lines."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
