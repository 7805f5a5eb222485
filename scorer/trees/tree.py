"""One decision tree as flat arrays: the form every reader produces and every kernel consumes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Tree:
    """A decision tree in pre-order, struct of arrays; node 0 is the root.

    An internal node sends a row left when `x[feature] <= threshold` (MLeap's continuous split; NaN
    goes right), or, for a categorical split, when `(x[feature] in categories) == is_left`.
    """

    feature: np.ndarray  # int32 [n]; -1 at leaves
    threshold: np.ndarray  # float64 [n]; unused at leaves and categorical nodes
    left: np.ndarray  # int32 [n]; -1 at leaves
    right: np.ndarray  # int32 [n]; -1 at leaves
    values: np.ndarray  # float64 [n, k]; leaf values as stored in the bundle, zeros at internal nodes
    # node index -> (categories, is_left), only for categorical splits
    categorical: dict[int, tuple[frozenset[float], bool]] = field(default_factory=dict)

    @property
    def n_nodes(self) -> int:
        """Number of nodes, internal and leaf."""
        return int(self.feature.shape[0])

    @property
    def n_values(self) -> int:
        """Length of each leaf's value vector."""
        return int(self.values.shape[1])
