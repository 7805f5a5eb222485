"""A throwaway Redis on loopback, run with Debian's `redis-server` (installed with apt where missing)."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psutil

from rtscore.localservices.errors import ServiceFailed, ToolMissing
from rtscore.localservices.probes import redis_answers
from rtscore.localservices.processes import log_tail, spawn_detached, stop_group
from rtscore.localservices.settings import LocalServicesSettings

_PACKAGE = "redis-server"
_HINT = (
    "install Debian's redis-server (`apt-get install -y redis-server`, as root), put `redis-server` on PATH, "
    "or point RTSCORE_REDIS_URL at a running Redis"
)


@dataclass(frozen=True)
class RedisRun:
    """A running local Redis: its pid, port and URL."""

    pid: int
    port: int
    url: str


def redis_binary(install: bool = True, timeout_s: float = 600.0) -> str:
    """The `redis-server` program; installed with apt-get when missing, we are root and `install` is set."""
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").is_file() else None
    )
    if found:
        return found
    apt = shutil.which("apt-get")
    if not install or apt is None or os.geteuid() != 0:
        raise ToolMissing(f"redis-server was not found, and the local velocity store needs it: {_HINT}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        done = subprocess.run(
            [apt, "install", "-y", "--no-install-recommends", _PACKAGE],
            capture_output=True, text=True, env=env, timeout=timeout_s, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as err:
        raise ToolMissing(f"`apt-get install {_PACKAGE}` took over {timeout_s:.0f}s: {_HINT}") from err
    found = shutil.which("redis-server")
    if done.returncode != 0 or found is None:
        output = (done.stdout + done.stderr).strip()[-1500:]
        raise ToolMissing(f"`apt-get install {_PACKAGE}` failed ({output}): {_HINT}")
    return found


class RedisServer:
    """One Redis folder: `redis.conf`, `redis.log` and an empty data dir (no persistence)."""

    def __init__(self, home: Path, settings: LocalServicesSettings) -> None:
        self.home = home
        self.config = home / "redis.conf"
        self.log = home / "redis.log"
        self.data = home / "data"
        self._settings = settings

    def owns(self, pid: int | None) -> bool:
        """Whether `pid` is this folder's Redis (its command line names our config file)."""
        if pid is None:
            return False
        try:
            command = psutil.Process(pid).cmdline()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            return False
        return any("redis-server" in part for part in command) and str(self.config) in command

    def find_pid(self) -> int | None:
        """The pid of this folder's Redis if one runs."""
        for process in psutil.process_iter(["pid"]):
            if self.owns(int(process.info["pid"])):
                return int(process.info["pid"])
        return None

    def start(self, port: int) -> RedisRun:
        """Write the config, start Redis on `port` and wait until it answers PING."""
        binary = redis_binary(timeout_s=self._settings.fetch_timeout_s)
        self.data.mkdir(parents=True, exist_ok=True)
        settings = {
            "bind": "127.0.0.1",
            "port": str(port),
            "protected-mode": "yes",
            "daemonize": "no",
            "dir": str(self.data),
            "logfile": str(self.log),
            # Velocity windows are rebuilt by traffic; a dev store needs no snapshots.
            "save": '""',
            "appendonly": "no",
            # The command line keeps naming the config file, which is how `owns` recognises it.
            "set-proc-title": "no",
            "maxmemory": self._settings.redis_maxmemory,
            "maxmemory-policy": "volatile-ttl",
        }
        self.config.write_text("".join(f"{key} {value}\n" for key, value in settings.items()))
        pid = spawn_detached([binary, str(self.config)], self.home / "stdout.log")
        url = f"redis://127.0.0.1:{port}/0"
        problem = redis_answers(url, self._settings.start_timeout_s)
        if problem is not None or not self.owns(pid):
            stop_group(pid, self._settings.stop_timeout_s)
            raise ServiceFailed(
                f"Redis at {url} did not answer PING within {self._settings.start_timeout_s:.0f}s "
                f"({problem or 'redis-server exited'}); last lines of {self.log}:\n{log_tail(self.log)}"
            )
        return RedisRun(pid=pid, port=port, url=url)

    def stop(self, pid: int | None) -> None:
        """SIGTERM Redis, SIGKILL it after the stop timeout; no-op if `pid` is not ours."""
        if self.owns(pid):
            assert pid is not None
            stop_group(pid, self._settings.stop_timeout_s)
