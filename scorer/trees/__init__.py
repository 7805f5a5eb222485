"""Decision trees: decoding MLeap's tree files, the compiled forest kernel and its on-disk cache."""

from scorer.trees.cache import ForestCache, default_cache
from scorer.trees.errors import ForestInputError, TreeFormatError
from scorer.trees.forest import CompiledForest, compile_forest
from scorer.trees.json_decoder import decode_tree_json
from scorer.trees.pb_decoder import decode_tree_pb
from scorer.trees.tree import Tree

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
