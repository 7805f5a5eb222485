"""A single-node Apache Kafka broker (KRaft, broker and controller in one JVM) on loopback."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import psutil

from rtscore.localservices.errors import ServiceFailed, ToolMissing
from rtscore.localservices.probes import kafka_answers
from rtscore.localservices.processes import log_tail, spawn_detached, stop_group
from rtscore.localservices.settings import LocalServicesSettings

MAIN_CLASS = "kafka.Kafka"
_DEPENDENCY_PLUGIN = "3.8.1"  # the version jvm/kafka/pom.xml configures
_STAMP = ".pom-sha256"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Lines by which Maven says the network, not the build, failed.
_OFFLINE = re.compile(
    r"Could not transfer|Unknown host|UnknownHost|Connection refused|Network is unreachable|"
    r"timed out|Could not resolve|No route to host|offline mode|No plugin found for prefix|"
    r"could not be resolved|Non-resolvable",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class KafkaRun:
    """A running local broker: its pid, ports and bootstrap address."""

    pid: int
    port: int
    controller_port: int
    bootstrap: str


def java_binary() -> str:
    """The `java` to run Kafka with (JAVA_HOME first, then PATH); Kafka 4 brokers need Java 17+."""
    java_home = os.environ.get("JAVA_HOME")
    candidate = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    hint = "install a Java 17+ runtime (e.g. `apt-get install openjdk-17-jre-headless`) or set JAVA_HOME"
    if not candidate or not Path(candidate).is_file():
        raise ToolMissing(
            f"java was not found, and the local Kafka broker needs it: {hint}, "
            "or point RTSCORE_KAFKA_BOOTSTRAP at a running cluster"
        )
    shown = subprocess.run([candidate, "-version"], capture_output=True, text=True, check=False).stderr
    match = re.search(r'version "(\d+)', shown)
    if match is None or int(match.group(1)) < 17:
        found = match.group(1) if match else "unknown"
        raise ToolMissing(f"{candidate} is Java {found}, but Kafka 4 brokers need Java 17 or newer: {hint}")
    return candidate


def fetch_jars(libs: Path, pom: Path, timeout_s: float) -> bool:
    """Copy the broker's jars named by `pom` into `libs` unless already there; True if it downloaded."""
    digest = hashlib.sha256(pom.read_bytes()).hexdigest() if pom.is_file() else None
    stamp = libs / _STAMP
    present = any(libs.glob("kafka_2.13-*.jar"))
    if present and (digest is None or (stamp.is_file() and stamp.read_text().strip() == digest)):
        return False
    if digest is None:
        raise ToolMissing(f"Kafka's jars are not in {libs}, and {pom}, which fetches them, is missing")
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ToolMissing(
            f"mvn was not found, and it fetches Kafka's jars into {libs}: install Maven "
            "(e.g. `apt-get install maven`) or point RTSCORE_KAFKA_BOOTSTRAP at a running cluster"
        )
    if libs.exists():
        shutil.rmtree(libs)  # jars of another Kafka version must not share the classpath
    # The goal is named in full so an unreachable registry reads as a transfer error, not as an
    # unknown plugin prefix.
    goal = f"org.apache.maven.plugins:maven-dependency-plugin:{_DEPENDENCY_PLUGIN}:copy-dependencies"
    command = [mvn, "-B", "-q", "-Dstyle.color=never", "-f", str(pom), goal, f"-Dlibs.dir={libs}"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=timeout_s)
    except subprocess.TimeoutExpired as err:
        raise ToolMissing(
            f"fetching Kafka's jars from Maven Central took over {timeout_s:.0f}s: check access to "
            "https://repo.maven.apache.org (or a mirror in ~/.m2/settings.xml)"
        ) from err
    if done.returncode != 0:
        output = _ANSI.sub("", done.stdout + done.stderr).strip()
        offline = next((line for line in output.splitlines() if _OFFLINE.search(line)), None)
        if offline is not None:
            reason = offline.removeprefix("[ERROR]").strip()
            raise ToolMissing(
                f"Maven could not download Kafka's jars ({reason[:400]}): allow access to "
                "https://repo.maven.apache.org (or configure a mirror in ~/.m2/settings.xml) and run again"
            )
        raise ServiceFailed(f"`{' '.join(command)}` failed:\n{output[-3000:]}")
    stamp.write_text(digest + "\n")
    return True


def kafka_version(libs: Path) -> str | None:
    """The Kafka version whose jars are in `libs`, e.g. `4.4.0`."""
    for jar in libs.glob("kafka_2.13-*.jar"):
        return jar.stem.removeprefix("kafka_2.13-")
    return None


class KafkaBroker:
    """One broker folder: `data/`, `server.properties`, `log4j2.properties` and `server.log`."""

    def __init__(self, home: Path, libs: Path, settings: LocalServicesSettings) -> None:
        self.home = home
        self.libs = libs
        self.data = home / "data"
        self.config = home / "server.properties"
        self.log = home / "server.log"
        self.stdout_log = home / "stdout.log"
        self._cluster = home / "cluster.json"
        self._settings = settings

    def owns(self, pid: int | None) -> bool:
        """Whether `pid` is this folder's broker process."""
        if pid is None:
            return False
        try:
            command = psutil.Process(pid).cmdline()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            return False
        return MAIN_CLASS in command and str(self.config) in command

    def find_pid(self) -> int | None:
        """The pid of this folder's broker if one runs (found by its command line)."""
        for process in psutil.process_iter(["pid", "cmdline"]):
            command = process.info["cmdline"] or []
            if MAIN_CLASS in command and str(self.config) in command:
                return int(process.info["pid"])
        return None

    def formatted_controller_port(self) -> int | None:
        """The controller port the storage was formatted for, if it is formatted."""
        if not (self.data / "meta.properties").is_file():
            return None
        try:
            return int(json.loads(self._cluster.read_text())["controller_port"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def start(self, port: int, controller_port: int) -> KafkaRun:
        """Format storage if needed, start the broker on the given ports and wait until it answers."""
        java = java_binary()
        if not any(self.libs.glob("kafka_2.13-*.jar")):
            raise ToolMissing(f"Kafka's jars are not in {self.libs}: run `rtscore services fetch` (uses mvn)")
        self.home.mkdir(parents=True, exist_ok=True)
        self._write_config(port, controller_port)
        if self.formatted_controller_port() != controller_port:
            self._format(java, controller_port)
        command = [
            java,
            f"-Xmx{self._settings.kafka_heap}",
            "-Xms128m",
            "-XX:+UseSerialGC",
            # C1 only: a dev broker needs a quick start on a busy 2-core machine more than peak speed.
            "-XX:TieredStopAtLevel=1",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.home}",
            "-cp",
            f"{self.libs}/*",
            MAIN_CLASS,
            str(self.config),
        ]
        pid = spawn_detached(command, self.stdout_log)
        bootstrap = f"127.0.0.1:{port}"
        problem = kafka_answers(bootstrap, self._settings.start_timeout_s)
        if problem is not None or not self.owns(pid):
            stop_group(pid, self._settings.stop_timeout_s)
            raise ServiceFailed(
                f"Kafka at {bootstrap} did not answer a metadata request within "
                f"{self._settings.start_timeout_s:.0f}s ({problem or 'the broker exited'}); "
                f"last lines of {self.log}:\n{log_tail(self.log)}\n{log_tail(self.stdout_log, 5)}"
            )
        return KafkaRun(pid=pid, port=port, controller_port=controller_port, bootstrap=bootstrap)

    def stop(self, pid: int | None) -> None:
        """SIGTERM the broker's process group, SIGKILL it after the stop timeout; no-op if not ours."""
        if self.owns(pid):
            assert pid is not None
            stop_group(pid, self._settings.stop_timeout_s)

    def _write_config(self, port: int, controller_port: int) -> None:
        listeners = f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}"
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{controller_port}",
            "listeners": listeners,
            "advertised.listeners": listeners,
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.data),
            "num.partitions": "1",
            # One node: every internal topic has exactly one replica.
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # Tests join consumer groups constantly; waiting for more members only slows them.
            "group.initial.rebalance.delay.ms": "0",
        }
        self.config.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
        (self.home / "log4j2.properties").write_text(
            "status = warn\n"
            "appender.file.type = File\n"
            "appender.file.name = file\n"
            f"appender.file.fileName = {self.log}\n"
            "appender.file.layout.type = PatternLayout\n"
            "appender.file.layout.pattern = [%d] %p %m (%c)%n\n"
            "rootLogger.level = INFO\n"
            "rootLogger.appenderRef.file.ref = file\n"
        )

    def _format(self, java: str, controller_port: int) -> None:
        if self.data.exists():
            shutil.rmtree(self.data)  # formatted for other ports: throwaway data, start afresh
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        command = [
            java,
            "-Xmx256m",
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
            "-cp",
            f"{self.libs}/*",
            "kafka.tools.StorageTool",
            "format",
            "--standalone",
            f"--cluster-id={cluster_id}",  # one token: an id may start with "-" (urlsafe base64)
            "--config",
            str(self.config),
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            output = (done.stdout + done.stderr).strip()
            raise ServiceFailed(f"formatting Kafka's storage in {self.data} failed: {output}")
        self._cluster.write_text(json.dumps({"cluster_id": cluster_id, "controller_port": controller_port}))
