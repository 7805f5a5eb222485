"""What the tiers of `rtscore bench e2e` counted during a run, read beside its latency: a call answered
from local velocity (Redis late or away), sent again to another scorer, hedged, or a scorer ejected,
took another path than the others, and its latency is that path's.

The extractor's counts come from its Prometheus endpoints (one per worker), read before and after each
run; the relays' Redis calls given up from the line each prints when it stops (the relays serve one run
each, so that count is the run's, warm-up included).
"""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterable, Mapping, Sequence

from prometheus_client.parser import text_string_to_metric_families

# The extractor's counters a run reports, by their names without `rtscore_extractor_` and `_total`.
EXTRACTOR_COUNTERS = (
    "velocity_fallbacks",
    "pool_retries",
    "pool_hedges",
    "pool_hedge_wins",
    "pool_ejections",
    "shadow_dropped",
    "decisions",  # calls answered, over every action: says the page was read, where the rest may be 0
)
_PREFIX = "rtscore_extractor_"
_GIVEN_UP = re.compile(r"(\d+) Redis calls given up")
_SCRAPE_TIMEOUT_S = 5.0


def extractor_counts(ports: Sequence[int], host: str = "127.0.0.1") -> dict[str, float]:
    """The extractor's counters now, summed over the workers' endpoints on `ports`; failed calls as
    `errors_<CODE>`."""
    totals = dict.fromkeys(EXTRACTOR_COUNTERS, 0.0)
    for port in ports:
        url = f"http://{host}:{port}/metrics"
        with urllib.request.urlopen(url, timeout=_SCRAPE_TIMEOUT_S) as reply:
            text = reply.read().decode("utf-8")
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if not sample.name.startswith(_PREFIX) or not sample.name.endswith("_total"):
                    continue
                name = sample.name[len(_PREFIX) : -len("_total")]
                if name == "errors":
                    name = f"errors_{sample.labels.get('code', 'UNKNOWN')}"
                elif name not in totals:
                    continue
                totals[name] = totals.get(name, 0.0) + sample.value
    return totals


def counted_between(
    before: Mapping[str, float] | None, after: Mapping[str, float] | None
) -> dict[str, int] | None:
    """What was counted from `before` to `after`, by counter (every counter `after` has); None where
    either read failed."""
    if before is None or after is None:
        return None
    return {name: round(value - before.get(name, 0.0)) for name, value in after.items()}


def read_extractor_counts(ports: Sequence[int]) -> tuple[dict[str, float] | None, str]:
    """`extractor_counts` and '', or None and why where a page cannot be read or parsed, so that a
    report keeps its run when the counts are missing."""
    try:
        return extractor_counts(ports), ""
    except (OSError, ValueError) as err:  # unreachable, or a page that is not Prometheus text
        return None, str(err)


def redis_given_up(lines: Iterable[str]) -> int:
    """The Redis calls a relay gave up, from the line it prints when it stops (none printed: 0)."""
    counts = [int(match.group(1)) for line in lines if (match := _GIVEN_UP.search(line))]
    return counts[-1] if counts else 0
