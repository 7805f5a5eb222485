"""Operating-system pieces the local services share: ports, detached processes, accounts, logs."""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from rtscore.localservices.errors import ToolMissing


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    """Whether 127.0.0.1:port can be bound now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def is_alive(pid: int | None) -> bool:
    """Whether `pid` is a live process (a zombie is reaped if it is ours, and counts as gone)."""
    if pid is None or pid <= 0:
        return False
    try:
        if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
            return True
    except psutil.NoSuchProcess:
        return False
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    return False


def spawn_detached(command: Sequence[str], log: Path, env: dict[str, str] | None = None) -> int:
    """Start `command` in its own session, not as our child, output to `log`; returns its pid."""
    # A shell that backgrounds the command and exits leaves it re-parented to init, so the CLI can
    # exit at once and no caller ever owns a zombie or an unwaited Popen.
    launcher = 'exec "$@" </dev/null >>"$RTSCORE_LAUNCH_LOG" 2>&1 & echo $!'
    full_env = dict(env if env is not None else os.environ)
    full_env["RTSCORE_LAUNCH_LOG"] = str(log)
    done = subprocess.run(
        ["/bin/sh", "-c", launcher, "sh", *command],
        env=full_env,
        start_new_session=True,
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout.strip())


def stop_group(pid: int, timeout_s: float) -> None:
    """SIGTERM the process group led by `pid`'s group, then SIGKILL whatever is left after `timeout_s`."""
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return
    _signal_group(pgid, signal.SIGTERM)
    if wait_gone(pid, timeout_s):
        return
    _signal_group(pgid, signal.SIGKILL)
    wait_gone(pid, 5.0)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def wait_gone(pid: int, timeout_s: float) -> bool:
    """Wait until `pid` has exited; False if it still runs after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while is_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def log_tail(path: Path, lines: int = 20) -> str:
    """The last `lines` lines of a log file, or a note that it does not exist."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


@dataclass(frozen=True)
class Account:
    """A user a service process runs as."""

    name: str
    uid: int
    gid: int


def service_account(preferred: str | None) -> Account | None:
    """The unprivileged account to run Postgres as, or None when we are not root."""
    if os.geteuid() != 0:
        return None
    names = [preferred] if preferred else ["postgres", "nobody"]
    for name in names:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        if entry.pw_uid != 0:
            return Account(name, entry.pw_uid, entry.pw_gid)
    wanted = preferred or "postgres or nobody"
    raise ToolMissing(
        f"Postgres refuses to run as root and no unprivileged account ({wanted}) exists: "
        "create one (e.g. `useradd --system postgres`) or set RTSCORE_SERVICE_USER"
    )


def reachable_by(account: Account, path: Path) -> bool:
    """Whether `account` may traverse every existing folder from / down to `path`."""
    for folder in [path, *path.parents]:
        try:
            info = folder.stat()
        except FileNotFoundError:
            continue  # made later by us, with a mode the account can traverse
        if info.st_uid == account.uid:
            allowed = info.st_mode & 0o100
        elif info.st_gid == account.gid:
            allowed = info.st_mode & 0o010
        else:
            allowed = info.st_mode & 0o001
        if not allowed:
            return False
    return True


def chown_tree(path: Path, account: Account) -> None:
    """Give `path` and everything below it to `account`."""
    os.chown(path, account.uid, account.gid)
    for folder, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            os.chown(os.path.join(folder, name), account.uid, account.gid, follow_symlinks=False)
