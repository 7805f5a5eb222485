"""Keeping idle CPUs awake while a latency-critical process runs: a PM QoS request on
`/dev/cpu_dma_latency`.

An idle CPU normally sleeps (on a VM, the vCPU halts and the host takes it back), and the call that
wakes it pays the wake-up and the cold caches. Writing a limit of N microseconds to the device allows
only idle states that wake within N us; 0 leaves only polling, so an idle CPU spins and answers at once.
The request is the kernel's, machine-wide, and lasts as long as the file stays open: it ends when the
holder closes it or exits, however it exits. Idle CPUs then burn their time (power, and on a VM the
host's CPU), which is why it is asked for, never the default.
"""

from __future__ import annotations

import logging
import os
import struct
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)

DEVICE = Path("/dev/cpu_dma_latency")
# What the device reads with no request held (PM_QOS_CPU_LATENCY_DEFAULT_VALUE): no limit.
_NO_LIMIT = 2_000_000_000
_VALUE = struct.Struct("=i")


class CpuLatencyRequest:
    """`with CpuLatencyRequest(0):` holds idle CPUs to states that wake within `max_us` microseconds.

    Where the request cannot be made (no such device, no permission) the process runs on without it:
    `held` is False and `reason` says why, also logged once as a warning."""

    def __init__(self, max_us: int, device: Path = DEVICE) -> None:
        if not 0 <= max_us < _NO_LIMIT:
            raise ValueError(f"a CPU latency limit is 0..{_NO_LIMIT - 1} us, got {max_us}")
        self.max_us = max_us
        self.device = device
        self.reason = ""
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether the request is in force."""
        return self._fd is not None

    def __enter__(self) -> CpuLatencyRequest:
        try:
            fd = os.open(self.device, os.O_WRONLY | os.O_CLOEXEC)
        except OSError as err:
            self.reason = f"cannot open {self.device}: {err.strerror}"
        else:
            try:
                os.write(fd, _VALUE.pack(self.max_us))
            except OSError as err:
                os.close(fd)
                self.reason = f"cannot write {self.device}: {err.strerror}"
            else:
                self._fd = fd
        if self._fd is None:
            log.warning("CPU latency limit not held", extra={"max_us": self.max_us, "reason": self.reason})
        else:
            log.info("CPU latency limit held", extra={"max_us": self.max_us})
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


def current_limit_us(device: Path = DEVICE) -> int | None:
    """The machine's CPU latency limit in force, in us: the strictest request any process holds; None
    when no process holds one or the device cannot be read."""
    try:
        fd = os.open(device, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        data = os.read(fd, _VALUE.size)
    except OSError:
        return None
    finally:
        os.close(fd)
    if len(data) != _VALUE.size:
        return None
    (value,) = _VALUE.unpack(data)
    return None if value >= _NO_LIMIT else int(value)


def idle_driver() -> str | None:
    """The kernel's cpuidle driver (e.g. `haltpoll` on a KVM guest, `intel_idle`), None if it has none."""
    try:
        return Path("/sys/devices/system/cpu/cpuidle/current_driver").read_text().strip() or None
    except OSError:
        return None
