"""A candidate's own feature spec: its features recomputed from the transaction with the extractor's code.

By default a candidate scores the features the live model saw (carried in the record), so a difference is
the model's alone. A version that declares its own spec (the registry tag `feature_spec`, the spec's TOML)
gets, for records whose spec differs from it:

- its stateless (derived) features computed from the record's transaction by `extractor.features`;
- each velocity feature from this worker's own velocity store when the record's `sample_key` is that
  feature's entity: the sample then holds the entity's whole history, and Kafka's record key (the sample
  key) sends all of it to one partition, so to one worker;
- otherwise the value the record carries under the same name, if it carries one;
- otherwise the record cannot be scored by that candidate: it is dead-lettered for it, saying why.

The worker's velocity store lives in memory: after a restart or rebalance it fills again as records
arrive, so velocity features are complete only once their longest window has passed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from extractor.features import FeatureExtractor
from extractor.spec import LoadedSpec, parse_spec
from extractor.velocity.memory import MemoryVelocityStore
from rtscore.errors import InvalidArgument
from scorer.frame import DataType, Field, LeapFrame
from shadow.errors import PoisonRecord
from shadow.models import SPEC_TAG
from shadow.records import ParsedRecord

_DOUBLE = DataType.scalar("double")


class OwnFeatures:
    """Features of one candidate's spec for batches of records."""

    def __init__(self, loaded: LoadedSpec) -> None:
        self.loaded = loaded
        self.extractor = FeatureExtractor(loaded)
        self.derived_names = [f.name for f in loaded.spec.features]
        self.velocity_names = self.extractor.plan.names
        # the entity each velocity column counts by
        self.entity_of = {n: g.entity for g in loaded.spec.velocity for n in g.feature_names()}
        self.store = MemoryVelocityStore(self.extractor.plan)

    @staticmethod
    def from_tags(tags: dict[str, str]) -> OwnFeatures | None:
        """The spec a version declares in its tags, if any (a bad spec is refused, naming the tag)."""
        text = tags.get(SPEC_TAG)
        if not text:
            return None
        return OwnFeatures(parse_spec(text, f"tag {SPEC_TAG}"))

    def applies_to(self, record: ParsedRecord) -> bool:
        """Whether the record was made with another spec (with the same spec its features are ours)."""
        return record.spec_sha256 != self.loaded.sha256

    def frame(
        self, records: Sequence[ParsedRecord], carried: LeapFrame
    ) -> tuple[LeapFrame, list[int], list[tuple[int, PoisonRecord]]]:
        """(frame of the records that could be featurised, their indexes, (index, why) of the others)."""
        names = self.derived_names + self.velocity_names
        rows: list[list[float]] = []
        kept: list[int] = []
        refused: list[tuple[int, PoisonRecord]] = []
        carried_names = set(carried.names)
        for i, record in enumerate(records):
            try:
                prepared = self.extractor.prepare(record.transaction)
            except InvalidArgument as err:
                refused.append((i, PoisonRecord(f"candidate features: {err}", kind="features")))
                continue
            computed = self.store.observe_now(prepared.event)
            velocity: list[float] = []
            for j, name in enumerate(self.velocity_names):
                if self.entity_of[name] == record.sample_key:
                    velocity.append(computed[j])
                elif name in carried_names:
                    velocity.append(float(carried.column(name)[i]))
                else:
                    keyed = record.sample_key or "transaction"
                    why = (
                        f"velocity feature {name!r} counts by {self.entity_of[name]}, but the sample is"
                        f" keyed by {keyed} and the record does not carry it"
                    )
                    refused.append((i, PoisonRecord(why, kind="features")))
                    break
            else:
                rows.append(prepared.derived + velocity)
                kept.append(i)
        matrix = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(names))
        fields = [Field(n, _DOUBLE) for n in names]
        return (
            LeapFrame(fields, [np.ascontiguousarray(matrix[:, j]) for j in range(len(names))]),
            kept,
            refused,
        )
