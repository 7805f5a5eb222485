"""Shadow models: bundles loaded in-process on the compiled runtime, scoring a frame of many rows."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from rtscore.errors import InvalidArgument
from scorer.bundle import Bundle
from scorer.frame import LeapFrame
from scorer.service.frames import check_inputs
from shadow.errors import PoisonRecord

if TYPE_CHECKING:
    from shadow.recompute import OwnFeatures

# The version tag holding a candidate's own feature spec (TOML), see shadow.recompute.
SPEC_TAG = "feature_spec"


def score_column(bundle: Bundle) -> tuple[str, bool]:
    """(column, is_tensor) holding the fraud score: the positive class's probability, else the prediction."""
    outputs = {f.name: f for f in bundle.output_schema}
    probability = outputs.get("probability")
    if probability is not None and probability.dtype.shape == "tensor":
        return "probability", True
    if "prediction" in outputs:
        return "prediction", False
    last = bundle.output_schema[-1]
    return last.name, last.dtype.shape == "tensor"


@dataclass(eq=False)
class ShadowModel:
    """One shadow deployment's version, loaded and ready to score batches."""

    name: str
    version: int
    sha256: str
    bundle: Bundle
    # a spec of its own (registry tag `feature_spec`): features recomputed from the transaction
    own: OwnFeatures | None = None
    column: str = field(init=False)
    tensor: bool = field(init=False)

    def __post_init__(self) -> None:
        self.column, self.tensor = score_column(self.bundle)

    @property
    def ref(self) -> str:
        """`name@version`."""
        return f"{self.name}@{self.version}"

    def score(self, frame: LeapFrame) -> tuple[np.ndarray, float]:
        """(scores, milliseconds per row) for every row of frame; PoisonRecord if the frame cannot fit."""
        started = time.perf_counter()
        try:
            out = self.bundle.transform(check_inputs(frame, self.bundle.input_schema))
        except InvalidArgument as err:  # FrameError: these features cannot feed this model
            raise PoisonRecord(f"{self.ref} cannot read these features: {err}", kind="features") from err
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        values = out.column(self.column)
        scores = values[:, -1] if self.tensor else values
        return np.asarray(scores, dtype=np.float64), elapsed_ms / max(frame.n_rows, 1)


@dataclass(frozen=True)
class ModelSet:
    """The shadow models in force, swapped whole when the registry's desired state changes."""

    revision: int = 0
    models: tuple[ShadowModel, ...] = ()

    def refs(self) -> list[str]:
        """`name@version` of every model, in order."""
        return [m.ref for m in self.models]
