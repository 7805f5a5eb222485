"""What a pool call returns."""

from __future__ import annotations

from dataclasses import dataclass

from protos.rtscore.v1 import scorer_pb2


@dataclass(frozen=True, slots=True)
class Scored:
    """A scored frame and how it was obtained."""

    response: scorer_pb2.ScoreResponse
    endpoint: str
    attempts: int
    hedged: bool = False
