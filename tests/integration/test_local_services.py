"""`rtscore services`: up is idempotent, down leaves nothing behind, problems read as one sentence."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import pytest

from rtscore.localservices import (
    LocalServices,
    LocalServicesSettings,
    ServiceEndpoints,
    ToolMissing,
    kafka,
)
from rtscore.localservices.kafka import KafkaBroker
from rtscore.localservices.probes import kafka_answers, postgres_answers, redis_answers

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_JARS = LocalServices(REPO_ROOT).kafka_libs


def _own_settings(**overrides: object) -> LocalServicesSettings:
    """Settings ignoring RTSCORE_DATABASE_URL, _KAFKA_BOOTSTRAP and _REDIS_URL: these tests start theirs."""
    return LocalServicesSettings(database_url=None, kafka_bootstrap=None, redis_url=None, **overrides)


def _processes_mentioning(*paths: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        command = " ".join(process.info["cmdline"] or [])
        if any(str(path) in command for path in paths):
            found.append(process)
    return found


def _running(pid: int | None) -> bool:
    """Whether pid is a process that still runs (a zombie waiting for init to reap it does not)."""
    try:
        return pid is not None and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _listening(ports: set[int]) -> set[int]:
    return {
        conn.laddr.port
        for conn in psutil.net_connections(kind="inet")
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port in ports
    }


@pytest.fixture
def private_services(tmp_path: Path, service_endpoints: ServiceEndpoints) -> Iterator[LocalServices]:
    """A second, independent stack under tmp_path (sharing the jar cache), torn down afterwards."""
    services = LocalServices(tmp_path, _own_settings(), kafka_libs=SHARED_JARS)
    try:
        yield services
    finally:
        cluster_home = (tmp_path / ".rtscore" / "postgres").resolve()
        services.down()
        if cluster_home.is_relative_to(tmp_path.resolve()) is False:
            shutil.rmtree(cluster_home, ignore_errors=True)  # the /tmp fallback for unreachable roots


@pytest.mark.services
@pytest.mark.slow
def test_up_twice_then_down_leaves_no_listening_port_and_no_process(
    private_services: LocalServices, tmp_path: Path
) -> None:
    first = private_services.up()
    first_pids = {s.name: s.pid for s in private_services.status()}
    second = private_services.up()
    second_pids = {s.name: s.pid for s in private_services.status()}

    assert second == first
    assert second_pids == first_pids
    assert all(pid is not None for pid in first_pids.values())
    assert postgres_answers(first.database_url, 10) is None
    assert kafka_answers(first.kafka_bootstrap, 10) is None
    assert first.redis_url is not None
    assert redis_answers(first.redis_url, 10) is None
    redis_port = urlsplit(first.redis_url).port or 0
    ports = {urlsplit(first.database_url).port or 0, int(first.kafka_bootstrap.rsplit(":", 1)[1]), redis_port}
    assert _listening(ports) == ports
    cluster_home = (tmp_path / ".rtscore" / "postgres").resolve()

    private_services.down(["redis"])  # only the one named: the others run on as they were

    assert not _running(first_pids["redis"])
    assert _listening(ports) == ports - {redis_port}
    still = {s.name: s.pid for s in private_services.status() if s.running}
    assert still == {"postgres": first_pids["postgres"], "kafka": first_pids["kafka"]}
    assert kafka_answers(first.kafka_bootstrap, 10) is None

    private_services.down()

    assert [pid for pid in first_pids.values() if _running(pid)] == []
    assert _listening(ports) == set()
    assert _processes_mentioning(tmp_path, cluster_home) == []
    leftovers = [
        child for child in psutil.Process().children(recursive=True) if child.pid in first_pids.values()
    ]
    assert leftovers == []
    assert all(not status.running for status in private_services.status())


@pytest.mark.services
def test_env_output_is_shell_evaluable(service_endpoints: ServiceEndpoints) -> None:
    lines = "\n".join(service_endpoints.env_lines())
    shown = subprocess.run(
        [
            "bash",
            "-c",
            'eval "$1"; printf "%s\\n%s\\n" "$RTSCORE_DATABASE_URL" "$RTSCORE_KAFKA_BOOTSTRAP"',
            "_",
            lines,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()

    assert shown == [service_endpoints.database_url, service_endpoints.kafka_bootstrap]


def test_missing_postgres_programs_are_named_in_one_sentence(tmp_path: Path) -> None:
    empty = tmp_path / "no-postgres-here"
    empty.mkdir()
    services = LocalServices(tmp_path, _own_settings(pg_bin_dir=empty), kafka_libs=tmp_path / "libs")

    with pytest.raises(
        ToolMissing, match=r"initdb and pg_ctl were not found in .*no-postgres-here"
    ) as caught:
        services.up()

    assert "\n" not in str(caught.value)
    assert "RTSCORE_DATABASE_URL" in str(caught.value)


@pytest.mark.services
def test_missing_maven_is_named_when_kafka_jars_are_absent(
    tmp_path: Path, service_endpoints: ServiceEndpoints, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no mvn on it
    settings = LocalServicesSettings(database_url=service_endpoints.database_url, kafka_bootstrap=None)
    services = LocalServices(tmp_path, settings, kafka_libs=tmp_path / "libs")

    with pytest.raises(ToolMissing, match=r"mvn was not found"):
        services.up()


def test_cli_reports_a_missing_tool_as_one_line_without_traceback(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {name: value for name, value in os.environ.items() if not name.startswith("RTSCORE_")}
    env.update(RTSCORE_SERVICES_ROOT=str(tmp_path), RTSCORE_PG_BIN_DIR=str(empty))

    done = subprocess.run(
        [sys.executable, "-m", "rtscore.cli", "services", "up"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )

    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "initdb and pg_ctl were not found" in done.stderr


@pytest.mark.slow
def test_unreachable_maven_registry_is_named_with_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An empty local repository and a proxy that refuses every connection: Maven cannot reach Central.
    refuse = "-Dhttps.proxyHost=127.0.0.1 -Dhttps.proxyPort=9 -Dhttp.proxyHost=127.0.0.1 -Dhttp.proxyPort=9"
    monkeypatch.setenv("MAVEN_OPTS", f"-Dmaven.repo.local={tmp_path / 'm2'} {refuse}")
    services = LocalServices(tmp_path, _own_settings(), kafka_libs=tmp_path / "libs")

    with pytest.raises(ToolMissing, match=r"Maven could not download Kafka's jars") as caught:
        services.fetch()

    assert "repo.maven.apache.org" in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.services
def test_kafka_storage_formats_with_a_cluster_id_that_starts_with_a_dash(
    tmp_path: Path, service_endpoints: ServiceEndpoints, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One id in 64 starts with "-" (urlsafe base64); the format tool must not take it for an option."""
    broker = KafkaBroker(tmp_path / "kafka", SHARED_JARS, _own_settings())
    broker.home.mkdir(parents=True)
    broker._write_config(port=1, controller_port=2)
    monkeypatch.setattr(kafka.uuid, "uuid4", lambda: uuid.UUID(bytes=b"\xf8" * 16))

    broker._format(kafka.java_binary(), controller_port=2)

    meta = (broker.data / "meta.properties").read_text()
    assert "cluster.id=-" in meta
    assert broker.formatted_controller_port() == 2
