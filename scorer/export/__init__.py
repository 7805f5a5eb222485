"""Write fitted scikit-learn models as MLeap bundles (Bundle.ML, json or protobuf)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["export_sklearn"]


def export_sklearn(
    estimator: Any,
    out: Path,
    *,
    format: str = "protobuf",
    features: Sequence[str] | None = None,
    name: str | None = None,
) -> Path:
    """Write `estimator` as a bundle at `out` (zip when it ends in `.zip`, else a directory); return `out`."""
    # Imported here: the writers pull in numba, and `rtscore --help` imports this package.
    from scorer.export.translate import build_graph
    from scorer.export.writer import write_bundle

    root = build_graph(estimator, features, name or type(estimator).__name__.lower())
    return write_bundle(root, Path(out), name=root.name, fmt=format)
