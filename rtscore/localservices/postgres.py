"""A throwaway PostgreSQL cluster made and run with the machine's `initdb` and `pg_ctl`."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from rtscore.localservices.errors import ServiceFailed, ToolMissing
from rtscore.localservices.probes import postgres_answers, run_in_own_loop
from rtscore.localservices.processes import (
    Account,
    chown_tree,
    is_alive,
    log_tail,
    reachable_by,
    wait_gone,
)
from rtscore.localservices.settings import LocalServicesSettings

DATABASE = "rtscore"
SUPERUSER = "rtscore"
# Unix socket paths are limited to ~107 bytes; beyond that the cluster listens on TCP only.
_MAX_SOCKET_DIR = 90
_INSTALL_HINT = (
    "install PostgreSQL's server programs (e.g. `apt-get install postgresql-15`), set "
    "RTSCORE_PG_BIN_DIR to the folder holding them, or point RTSCORE_DATABASE_URL at a running server"
)


@dataclass(frozen=True)
class PostgresRun:
    """A running local cluster: its postmaster pid, port and connection URL."""

    pid: int
    port: int
    url: str


def find_pg_bin(settings: LocalServicesSettings) -> Path:
    """The folder holding `initdb` and `pg_ctl`: the setting, else PATH, else the newest packaged one."""
    candidates: list[Path] = []
    if settings.pg_bin_dir is not None:
        candidates.append(settings.pg_bin_dir)
    else:
        on_path = shutil.which("initdb")
        if on_path:
            candidates.append(Path(on_path).resolve().parent)
        packaged = Path("/usr/lib/postgresql").glob("*/bin")
        candidates += sorted(packaged, key=lambda p: _major(p.parent.name), reverse=True)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    where = str(settings.pg_bin_dir) if settings.pg_bin_dir else "PATH or /usr/lib/postgresql/*/bin"
    raise ToolMissing(f"PostgreSQL's initdb and pg_ctl were not found in {where}: {_INSTALL_HINT}")


def _major(name: str) -> int:
    return int(name) if name.isdigit() else -1


def cluster_home(state_dir: Path, account: Account | None) -> Path:
    """Where the cluster lives: `<state>/postgres`, or a /tmp folder linked from there when the
    unprivileged account cannot reach the repository (a clone under a private home, say)."""
    home = state_dir / "postgres"
    if account is None or reachable_by(account, state_dir):
        return home
    digest = hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"rtscore-postgres-{digest}"


class PostgresCluster:
    """One cluster folder: `data/`, `socket/` and `postgres.log`, owned by the account it runs as."""

    def __init__(self, state_dir: Path, settings: LocalServicesSettings, account: Account | None) -> None:
        self.home = cluster_home(state_dir, account)
        self._link = state_dir / "postgres"
        self.data = self.home / "data"
        self.socket_dir = self.home / "socket"
        self.log = self.home / "postgres.log"
        self._settings = settings
        self._account = account

    def version(self) -> str:
        """`pg_ctl --version` of the binaries in use, e.g. `pg_ctl (PostgreSQL) 15.13`."""
        bin_dir = find_pg_bin(self._settings)
        return subprocess.run(
            [str(bin_dir / "pg_ctl"), "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()

    def running_pid(self) -> int | None:
        """The postmaster's pid when this cluster runs, else None."""
        try:
            first = (self.data / "postmaster.pid").read_text().splitlines()[0]
        except (OSError, IndexError):
            return None
        pid = int(first) if first.strip().isdigit() else None
        return pid if is_alive(pid) else None

    def start(self, port: int) -> PostgresRun:
        """Create the cluster if needed, start it on 127.0.0.1:`port` and wait until it answers."""
        bin_dir = find_pg_bin(self._settings)
        if not (self.data / "PG_VERSION").is_file():
            self._initdb(bin_dir)
        url = f"postgresql://{SUPERUSER}@127.0.0.1:{port}/{DATABASE}"
        timeout = self._settings.start_timeout_s
        started = self._pg_ctl(
            bin_dir, "start", "-w", "-t", str(int(timeout)), "-l", str(self.log), "-o", f"-p {port}"
        )
        pid = self.running_pid()
        if started.returncode != 0 or pid is None:
            raise ServiceFailed(
                f"Postgres did not start on port {port} ({started.stdout.strip()} {started.stderr.strip()}); "
                f"last lines of {self.log}:\n{log_tail(self.log)}"
            )
        self._create_database(port)
        problem = postgres_answers(url, timeout)
        if problem is not None:
            raise ServiceFailed(
                f"Postgres at {url} did not answer `select 1` within {timeout:.0f}s ({problem}); "
                f"last lines of {self.log}:\n{log_tail(self.log)}"
            )
        return PostgresRun(pid=pid, port=port, url=url)

    def stop(self) -> None:
        """Stop the cluster (fast mode: running sessions are cut); a no-op when it is not running."""
        pid = self.running_pid()
        if pid is None:
            return
        timeout = self._settings.stop_timeout_s
        self._pg_ctl(find_pg_bin(self._settings), "stop", "-m", "fast", "-w", "-t", str(int(timeout)))
        if self.running_pid() is not None:
            # Immediate shutdown: the postmaster takes its backends down with it.
            self._pg_ctl(find_pg_bin(self._settings), "stop", "-m", "immediate", "-w", "-t", "10")
        # pg_ctl returns once the pid file is gone, a moment before the postmaster has exited.
        wait_gone(pid, timeout)

    def _initdb(self, bin_dir: Path) -> None:
        if self.data.exists():
            shutil.rmtree(self.data)  # a half-made cluster from an interrupted run
        self.home.mkdir(mode=0o755, parents=True, exist_ok=True)
        if self.home != self._link and not self._link.exists():
            self._link.unlink(missing_ok=True)  # a link to a folder that has since been removed
            self._link.symlink_to(self.home)
        self.socket_dir.mkdir(exist_ok=True)
        if self._account is not None:
            chown_tree(self.home, self._account)
        made = self._run(
            str(bin_dir / "initdb"),
            "-D", str(self.data),
            "-U", SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )  # fmt: skip
        if made.returncode != 0:
            output = (made.stdout + made.stderr).strip()
            raise ServiceFailed(f"initdb failed for {self.data}: {output}")
        socket_dirs = str(self.socket_dir) if len(str(self.socket_dir)) <= _MAX_SOCKET_DIR else ""
        # Throwaway data: durability settings off make tests faster; nothing listens beyond loopback.
        extra = (
            "\n# rtscore local services\n"
            "listen_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{socket_dirs}'\n"
            "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
            "max_connections = 200\nshared_buffers = 64MB\n"
        )
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(extra)

    def _create_database(self, port: int) -> None:
        admin_url = f"postgresql://{SUPERUSER}@127.0.0.1:{port}/postgres"

        async def create() -> None:
            conn = await asyncpg.connect(admin_url, timeout=10)
            try:
                if not await conn.fetchval("select 1 from pg_database where datname = $1", DATABASE):
                    await conn.execute(f'create database "{DATABASE}"')
            finally:
                await conn.close()

        run_in_own_loop(create)

    def _pg_ctl(self, bin_dir: Path, action: str, *options: str) -> subprocess.CompletedProcess[str]:
        return self._run(str(bin_dir / "pg_ctl"), action, "-D", str(self.data), *options)

    def _run(self, *command: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "LC_ALL": "C"}
        if self._account is None:
            return subprocess.run(
                command, capture_output=True, text=True, check=False, env=env, start_new_session=True
            )
        account = self._account
        env.update(HOME=str(self.home), USER=account.name, LOGNAME=account.name)
        # initdb and postgres refuse to run as root: setpriv drops to the service account, no extra
        # groups. Not subprocess's user=/group=: those force a plain fork(), whose atfork handlers
        # (gRPC's among them) can crash the child of a process with live gRPC threads before it execs.
        drop = ["setpriv", f"--reuid={account.uid}", f"--regid={account.gid}", "--clear-groups", "--"]
        return subprocess.run(
            [*drop, *command],
            capture_output=True,
            text=True,
            check=False,
            env=env,
            start_new_session=True,
            cwd=self.home,
        )
