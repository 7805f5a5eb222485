"""The immutable picker of one model: power of two choices over its ready endpoints."""

from __future__ import annotations

import random
import time
from collections.abc import Collection

from scorer.client.endpoint import Endpoint


class Picker:
    """A frozen set of ready endpoints; `pick` is the only thing a call does with it."""

    __slots__ = ("_random", "endpoints", "tolerance")

    def __init__(self, endpoints: tuple[Endpoint, ...], tolerance: float = 2.0) -> None:
        self.endpoints = endpoints
        self.tolerance = tolerance
        self._random = random.Random().random

    def pick(self, exclude: Collection[Endpoint] = ()) -> Endpoint | None:
        """The cheaper of two distinct random endpoints not in `exclude` (None when there is none).

        A retry or a hedge goes to another scorer address when there is one: the other connections of
        an address that just failed share its host, and often its fate.
        """
        endpoints = self.endpoints
        if exclude:
            tried = {e.address for e in exclude}
            endpoints = tuple(e for e in self.endpoints if e.address not in tried) or tuple(
                e for e in self.endpoints if e not in exclude
            )
        n = len(endpoints)
        if n < 2:
            return endpoints[0] if n else None
        i = int(self._random() * n)
        j = int(self._random() * (n - 1))
        if j >= i:
            j += 1
        a, b = endpoints[i], endpoints[j]
        now = time.monotonic()
        cost_a, cost_b = a.cost(now), b.cost(now)
        # Costs within the tolerance (in-flight counts included) are noise between equal scorers: the
        # random choice stands, so they share evenly and only a clearly slower or busier one is passed over.
        if cost_b * self.tolerance < cost_a:
            return b
        return a

    def __len__(self) -> int:
        return len(self.endpoints)


EMPTY = Picker(())
