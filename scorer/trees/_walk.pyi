"""The forest kernel (scorer/trees/_walk.c)."""

import numpy as np

LEAF_MARK: int
MAX_LANES: int

class Forest:
    def __init__(
        self,
        nodes: np.ndarray,
        roots: np.ndarray,
        values: np.ndarray,
        cat_meta: np.ndarray,
        cat_values: np.ndarray,
        n_features: int,
        lanes: int,
    ) -> None: ...
    def sum_leaves(self, rows: np.ndarray, out: np.ndarray, /) -> None: ...
