"""Read MLeap's `tree.json`: one JSON node per line, pre-order."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from scorer.trees.errors import TreeFormatError
from scorer.trees.preorder import CATEGORICAL, CONTINUOUS, LEAF, MAX_FEATURE_INDEX, assemble_tree
from scorer.trees.tree import Tree


def decode_tree_json(data: bytes, where: str) -> Tree:
    """Decode a whole `tree.json` file; malformed content raises `TreeFormatError` naming `where`."""
    lines = [line for line in data.split(b"\n") if line.strip()]
    nodes = _parse_lines(lines, where)
    n = len(nodes)
    kind = np.empty(n, dtype=np.int8)
    feature = np.zeros(n, dtype=np.int64)
    threshold = np.zeros(n, dtype=np.float64)
    value_start = np.zeros(n, dtype=np.int64)
    value_count = np.zeros(n, dtype=np.int64)
    flat: list[float] = []
    categorical: dict[int, tuple[frozenset[float], bool]] = {}
    for i, node in enumerate(nodes):
        try:
            tpe = node["type"]
            if tpe == "leaf":
                kind[i] = LEAF
                leaf_values = node["values"]
                value_start[i] = len(flat)
                value_count[i] = len(leaf_values)
                flat.extend(leaf_values)
                continue
            if tpe != "internal":
                raise TreeFormatError(f"{where}: node {i}: unknown node type {tpe!r}")
            split = node["split"]
            feature[i] = _feature_index(split["featureIndex"], where, i)
            if split["type"] == "continuous":
                kind[i] = CONTINUOUS
                threshold[i] = float(split["threshold"])
            elif split["type"] == "categorical":
                kind[i] = CATEGORICAL
                categories = frozenset(float(c) for c in split["categories"])
                categorical[i] = (categories, bool(split.get("isLeft", False)))
            else:
                raise TreeFormatError(f"{where}: node {i}: unknown split type {split['type']!r}")
        except (KeyError, TypeError, ValueError, OverflowError) as err:
            raise TreeFormatError(
                f"{where}: node {i}: malformed node ({type(err).__name__}: {err})"
            ) from None
    try:
        flat_values = np.asarray(flat, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TreeFormatError(f"{where}: leaf values are not numbers ({err})") from None
    return assemble_tree(where, kind, feature, threshold, value_start, value_count, flat_values, categorical)


def _parse_lines(lines: list[bytes], where: str) -> list[Any]:
    """All lines parsed in one C-level call; on failure, find and name the first bad line."""
    try:
        nodes = json.loads(b"[" + b",".join(lines) + b"]")
    except ValueError:
        for i, line in enumerate(lines):
            try:
                json.loads(line)
            except ValueError as err:
                raise TreeFormatError(f"{where}: node {i}: not valid JSON ({err})") from None
        raise TreeFormatError(f"{where}: lines do not form a list of JSON nodes") from None
    if not all(isinstance(node, dict) for node in nodes):
        i = next(i for i, node in enumerate(nodes) if not isinstance(node, dict))
        raise TreeFormatError(f"{where}: node {i}: expected a JSON object")
    return list(nodes)


def _feature_index(value: object, where: str, node: int) -> int:
    """A split's feature index as a non-negative int."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise TreeFormatError(f"{where}: node {node}: feature index {value!r} is not an integer")
    index = int(value)
    if index < 0:
        raise TreeFormatError(f"{where}: node {node}: negative feature index {index}")
    if index > MAX_FEATURE_INDEX:
        raise TreeFormatError(f"{where}: node {node}: feature index {index} is too large")
    return index
