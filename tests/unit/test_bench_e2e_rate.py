"""`rtscore bench e2e`'s search for the highest rate whose p99 stays within 10 ms."""

from __future__ import annotations

import argparse
from typing import Any

from benchmarks.e2e_rate import highest_rate


def record(rate: float, knee: float) -> dict[str, Any]:
    """A run that holds (p99 5 ms, every call sent) below `knee` calls/s and not above it."""
    p99 = 5.0 if rate <= knee else 40.0
    return {"latency_ms": {"p99": p99}, "errors": {}, "achieved_rate": rate}


def search(knee: float, start: float = 500.0) -> tuple[dict[str, Any], list[float]]:
    measured: list[float] = []

    def measure(name: str, target: str, method: str, requests: list[bytes], rate: float, s: float) -> Any:
        measured.append(rate)
        return record(rate, knee)

    args = argparse.Namespace(rate=start, max_rate=3000.0)
    return highest_rate(measure, "t", [b""], args, 60.0, record(start, knee)), measured


def test_up_from_a_rate_that_holds_until_one_does_not_then_between_the_two() -> None:
    found, measured = search(knee=1200.0)
    # 1.5x steps bracket the knee between 1125 and 1687.5; two geometric bisections narrow it
    assert measured == [750.0, 1125.0, 1687.5, 1377.8, 1245.0]
    assert found["rate"] == 1125.0
    found, measured = search(knee=1300.0)
    assert measured == [750.0, 1125.0, 1687.5, 1377.8, 1245.0]
    assert found["rate"] == 1245.0  # within 11% of the knee, where the 1.5x steps alone said 1125


def test_down_from_a_rate_that_does_not_hold_until_one_does_then_between_the_two() -> None:
    found, measured = search(knee=200.0)
    assert [round(r, 1) for r in measured] == [333.3, 222.2, 148.1, 181.4, 200.8]
    assert found["rate"] == 181.4
    assert [t["held"] for t in found["tried"]] == [False, False, False, True, True, False]


def test_no_bisection_without_a_rate_missed() -> None:
    found, measured = search(knee=10_000.0)  # every rate up to --max-rate holds
    assert measured == [750.0, 1125.0, 1687.5, 2531.25]
    assert found["rate"] == 2531.25


def test_none_when_nothing_down_to_the_lowest_rate_holds() -> None:
    found, measured = search(knee=1.0)
    assert found["rate"] is None
    assert min(measured) >= 25.0
