"""The CPU latency request: what it writes, how long it holds, and running on when it cannot be made."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from rtscore.cpu_latency import CpuLatencyRequest, current_limit_us


def test_the_request_is_the_limit_written_as_a_native_int_and_held_until_the_block_ends(
    tmp_path: Path,
) -> None:
    device = tmp_path / "cpu_dma_latency"
    device.write_bytes(b"")
    opened_before = len(os.listdir("/proc/self/fd"))
    with CpuLatencyRequest(25, device=device) as request:
        assert request.held
        assert len(os.listdir("/proc/self/fd")) == opened_before + 1  # the kernel holds it while open
        assert device.read_bytes() == struct.pack("=i", 25)
    assert not request.held
    assert len(os.listdir("/proc/self/fd")) == opened_before


def test_without_the_device_the_block_runs_without_the_request_and_says_why(tmp_path: Path) -> None:
    ran = False
    with CpuLatencyRequest(0, device=tmp_path / "missing") as request:
        ran = True
        assert not request.held
        assert "missing" in request.reason
        assert "No such file" in request.reason
    assert ran


def test_a_limit_is_microseconds_from_zero() -> None:
    with pytest.raises(ValueError, match=r"0\.\.1999999999 us, got -1"):
        CpuLatencyRequest(-1)
    with pytest.raises(ValueError, match="got 2000000000"):
        CpuLatencyRequest(2_000_000_000)


@pytest.mark.parametrize(
    ("content", "limit"),
    [
        (struct.pack("=i", 0), 0),
        (struct.pack("=i", 80), 80),
        (struct.pack("=i", 2_000_000_000), None),
        (b"\0", None),
    ],
)
def test_the_limit_in_force_reads_as_microseconds_or_none_for_no_limit(
    tmp_path: Path, content: bytes, limit: int | None
) -> None:
    device = tmp_path / "cpu_dma_latency"
    device.write_bytes(content)
    assert current_limit_us(device) == limit
    assert current_limit_us(tmp_path / "missing") is None
