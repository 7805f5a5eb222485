"""Decision trees: decoding MLeap's tree files, the compiled forest kernel and its on-disk cache.

The tree decoders run on numba, which takes about 0.9 s to start; they are imported on first use, so a
process that scores from the compiled cache never starts it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scorer.trees.cache import ForestCache, default_cache
from scorer.trees.errors import ForestInputError, TreeFormatError
from scorer.trees.forest import CompiledForest, compile_forest
from scorer.trees.tree import Tree

if TYPE_CHECKING:
    from scorer.trees.json_decoder import decode_tree_json
    from scorer.trees.pb_decoder import decode_tree_pb

__all__ = [
    "CompiledForest",
    "ForestCache",
    "ForestInputError",
    "Tree",
    "TreeFormatError",
    "compile_forest",
    "decode_tree_json",
    "decode_tree_pb",
    "default_cache",
]


def __getattr__(name: str) -> Any:
    if name == "decode_tree_json":
        from scorer.trees.json_decoder import decode_tree_json

        return decode_tree_json
    if name == "decode_tree_pb":
        from scorer.trees.pb_decoder import decode_tree_pb

        return decode_tree_pb
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
