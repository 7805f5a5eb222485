"""`rtscore bench e2e`'s search for the highest rate at which the end-to-end p99 stays within 10 ms."""

from __future__ import annotations

import argparse
import math
from typing import Any

P99_LIMIT_MS = 10.0
_LOWEST_RATE = 25.0  # the downward search gives up below this rate
_REFINE_RUNS = 2  # bisections between the highest rate held and the lowest missed


def highest_rate(
    measure: Any,
    target: str,
    requests: list[bytes],
    args: argparse.Namespace,
    duration: float,
    base: dict[str, Any],
) -> dict[str, Any]:
    """The highest rate whose p99 stays within the limit, by short runs: up from --rate by 1.5x while
    they hold when the run at --rate (`base`) held, else down by 1.5x until one holds; then, between
    the highest rate held and the lowest that was not, `_REFINE_RUNS` bisections (geometric), so the
    answer is within about 11% rather than 50%."""
    from extractor.bench import EVALUATE_METHOD

    def holds(record: dict[str, Any], rate: float) -> tuple[bool, float | None]:
        p99 = (record["latency_ms"] or {}).get("p99")
        ok = p99 is not None and p99 <= P99_LIMIT_MS and not sum(record["errors"].values())
        return ok and record["achieved_rate"] >= 0.95 * rate, p99

    def attempt(rate: float) -> bool:
        record = measure(f"e2e@{rate:g}", target, EVALUATE_METHOD, requests, rate, min(duration, 15.0))
        ok, p99 = holds(record, rate)
        tried.append({"rate": rate, "p99_ms": p99, "held": ok})
        return ok

    held_at_base, base_p99 = holds(base, args.rate)
    tried = [{"rate": args.rate, "p99_ms": base_p99, "held": held_at_base}]
    up = held_at_base
    held = args.rate if held_at_base else None
    missed: float | None = None if held_at_base else args.rate
    rate = args.rate * 1.5 if up else args.rate / 1.5
    while (rate <= args.max_rate) if up else (rate >= _LOWEST_RATE):
        ok = attempt(rate)
        if ok:
            held = max(held or 0.0, rate)
        else:
            missed = rate  # the search stops at the first miss going up; going down, each is lower
        if ok != up:
            break
        rate = rate * 1.5 if up else rate / 1.5
    if held is not None and missed is not None:
        for _ in range(_REFINE_RUNS):
            rate = round(math.sqrt(held * missed), 1)
            if not held < rate < missed:
                break
            if attempt(rate):
                held = rate
            else:
                missed = rate
    return {"rate": held, "tried": tried}
