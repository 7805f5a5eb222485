"""Canaries: a known frame and the output it must produce, so health checks make a real prediction."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

# Scores must match the recorded ones to this relative/absolute tolerance: tight enough to catch a
# wrong model, loose enough for the last-bit differences between kernels and platforms.
RTOL = 1e-9
ATOL = 1e-9


@dataclass(frozen=True)
class Canary:
    """A frame to score and the columns it must yield; `expected` holds only the checked outputs."""

    frame: Any  # LeapFrame
    expected: Any  # LeapFrame


@dataclass(frozen=True)
class CanaryResult:
    """Outcome of one canary run."""

    ok: bool
    reason: str
    seconds: float
    slow: bool = False
    """The answer was right and late: over the budget, not wrong."""


def mismatch(actual: Any, expected: Any) -> str:
    """Why `actual` does not carry `expected`'s columns and values; empty when it does."""
    if actual.n_rows != expected.n_rows:
        return f"expected {expected.n_rows} rows, got {actual.n_rows}"
    have = {f.name for f in actual.fields}
    for f in expected.fields:
        if f.name not in have:
            return f"output has no column {f.name!r}"
        want, got = np.asarray(expected.column(f.name)), np.asarray(actual.column(f.name))
        if want.shape != got.shape:
            return f"column {f.name!r}: expected shape {want.shape}, got {got.shape}"
        if want.dtype.kind in "fiub" and got.dtype.kind in "fiub":
            close = np.isclose(got.astype(np.float64), want.astype(np.float64), rtol=RTOL, atol=ATOL)
            if not bool(np.all(close | (np.isnan(got.astype(float)) & np.isnan(want.astype(float))))):
                row = int(np.argwhere(~close)[0][0])
                return f"column {f.name!r} row {row}: expected {want[row].tolist()}, got {got[row].tolist()}"
        elif not np.array_equal(want, got):
            row = next(i for i in range(len(want)) if not np.array_equal(want[i], got[i]))
            return f"column {f.name!r} row {row}: expected {want[row]!r}, got {got[row]!r}"
    return ""


def run_canary(model: Any, canary: Canary, budget_s: float | None) -> CanaryResult:
    """Score the canary frame with `model`; fail on an error, a wrong answer or a blown budget."""
    start = time.perf_counter()
    try:
        out = model.transform(canary.frame)
    except Exception as err:  # any failure of the model is a failed canary, reported not raised
        return CanaryResult(False, f"canary raised {type(err).__name__}: {err}", time.perf_counter() - start)
    seconds = time.perf_counter() - start
    reason = mismatch(out, canary.expected)
    if reason:
        return CanaryResult(False, reason, seconds)
    if budget_s is not None and seconds > budget_s:
        reason = f"canary took {seconds * 1e3:.1f} ms, over its {budget_s * 1e3:.1f} ms budget"
        return CanaryResult(False, reason, seconds, slow=True)
    return CanaryResult(True, "", seconds)
