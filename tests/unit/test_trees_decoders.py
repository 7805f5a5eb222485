"""Decoding MLeap's tree.json and tree.pb, good files and each kind of bad one."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from google.protobuf.internal.encoder import _VarintBytes

from protos.ml.bundle import dtree_pb2
from scorer.trees import Tree, TreeFormatError, decode_tree_json, decode_tree_pb
from tests.unit.test_trees_kernel import random_tree

# As MLeap's JsonSupport writes it: a "type" beside the node's own fields.
MLEAP_JSON = b"""{"type":"internal","split":{"type":"continuous","featureIndex":1,"threshold":0.5}}
{"type":"leaf","values":[1.0,2.0]}
{"type":"internal","split":{"type":"categorical","featureIndex":0,"isLeft":true,"numCategories":3,"categories":[1.0,2.0]}}
{"type":"leaf","values":[3.0,4.0]}
{"type":"leaf","values":[5.0,6.0]}
"""


def leaf(*values: float) -> dtree_pb2.Node:
    """A leaf node message."""
    node = dtree_pb2.Node()
    node.leaf.values.extend(values)
    return node


def continuous(feature: int, threshold: float) -> dtree_pb2.Node:
    """An internal node message with a continuous split."""
    node = dtree_pb2.Node()
    node.internal.split.continuous.feature_index = feature
    node.internal.split.continuous.threshold = threshold
    return node


def categorical(feature: int, categories: list[float], is_left: bool) -> dtree_pb2.Node:
    """An internal node message with a categorical split."""
    node = dtree_pb2.Node()
    split = node.internal.split.categorical
    split.feature_index = feature
    split.is_left = is_left
    split.num_categories = len(categories) + 1
    split.categories.extend(categories)
    return node


def framed(messages: list[bytes], big_endian: bool = True) -> bytes:
    """Messages with MLeap's 4-byte big-endian size prefix, or protobuf's varint prefix."""
    prefix = (lambda m: len(m).to_bytes(4, "big")) if big_endian else (lambda m: _VarintBytes(len(m)))
    return b"".join(prefix(m) + m for m in messages)


def encode_pb(tree: Tree, big_endian: bool = True) -> bytes:
    """A Tree written node by node in pre-order with the protobuf library."""
    messages = []
    stack = [0]
    while stack:
        i = stack.pop()
        if tree.left[i] < 0:
            messages.append(leaf(*tree.values[i]).SerializeToString())
            continue
        if i in tree.categorical:
            cats, is_left = tree.categorical[i]
            node = categorical(int(tree.feature[i]), sorted(cats), is_left)
        else:
            node = continuous(int(tree.feature[i]), float(tree.threshold[i]))
        messages.append(node.SerializeToString())
        stack += [int(tree.right[i]), int(tree.left[i])]
    return framed(messages, big_endian)


def oracle_decode_pb(data: bytes) -> list[dtree_pb2.Node]:
    """The simple path: parse every size-prefixed message with the protobuf library."""
    nodes, pos = [], 0
    while pos < len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        nodes.append(dtree_pb2.Node.FromString(data[pos + 4 : pos + 4 + size]))
        pos += 4 + size
    return nodes


def assert_same_tree(a: Tree, b: Tree) -> None:
    """Field-by-field equality of two trees."""
    for name in ("feature", "threshold", "left", "right", "values"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.categorical == b.categorical


EXPECTED = Tree(
    feature=np.array([1, -1, 0, -1, -1], dtype=np.int32),
    threshold=np.array([0.5, 0.0, 0.0, 0.0, 0.0]),
    left=np.array([1, -1, 3, -1, -1], dtype=np.int32),
    right=np.array([2, -1, 4, -1, -1], dtype=np.int32),
    values=np.array([[0, 0], [1, 2], [0, 0], [3, 4], [5, 6]], dtype=np.float64),
    categorical={2: (frozenset({1.0, 2.0}), True)},
)
EXPECTED_PB = [
    continuous(1, 0.5).SerializeToString(),
    leaf(1.0, 2.0).SerializeToString(),
    categorical(0, [1.0, 2.0], True).SerializeToString(),
    leaf(3.0, 4.0).SerializeToString(),
    leaf(5.0, 6.0).SerializeToString(),
]


def test_json_in_mleap_layout_decodes_to_linked_tree() -> None:
    assert_same_tree(decode_tree_json(MLEAP_JSON, "m/tree.json"), EXPECTED)


@pytest.mark.parametrize("big_endian", [True, False], ids=["mleap-int32-sizes", "varint-sizes"])
def test_pb_decodes_to_linked_tree(big_endian: bool) -> None:
    assert_same_tree(decode_tree_pb(framed(EXPECTED_PB, big_endian), "m/tree.pb"), EXPECTED)


@pytest.mark.parametrize("seed", [0, 1])
def test_pb_and_json_decoders_agree_with_protobuf_library(seed: int) -> None:
    rng = np.random.default_rng(seed)
    tree = random_tree(rng, n_features=300, k=3, max_depth=12)
    data = encode_pb(tree)
    decoded = decode_tree_pb(data, "t.pb")
    assert_same_tree(decoded, tree)
    oracle = oracle_decode_pb(data)
    assert len(oracle) == tree.n_nodes
    leaves = [i for i, node in enumerate(oracle) if node.WhichOneof("n") == "leaf"]
    np.testing.assert_array_equal(decoded.values[leaves], [list(oracle[i].leaf.values) for i in leaves])
    lines = [json.dumps(json_node(node)) for node in oracle]
    assert_same_tree(decode_tree_json("\n".join(lines).encode(), "t.json"), tree)


def json_node(node: dtree_pb2.Node) -> dict[str, object]:
    """The JSON form MLeap writes for a node message."""
    if node.WhichOneof("n") == "leaf":
        return {"type": "leaf", "values": list(node.leaf.values)}
    split = node.internal.split
    if split.WhichOneof("s") == "continuous":
        c = split.continuous
        return {"type": "internal", "split": {"type": "continuous", "featureIndex": c.feature_index,
                                              "threshold": c.threshold}}  # fmt: skip
    g = split.categorical
    body = {"type": "categorical", "featureIndex": g.feature_index, "isLeft": g.is_left,
            "numCategories": g.num_categories, "categories": list(g.categories)}  # fmt: skip
    return {"type": "internal", "split": body}


def test_pb_skips_unknown_fields() -> None:
    unknown = b"\x18\x07" + b"\x2a\x02ab"  # field 3 varint, field 5 bytes: a newer writer's additions
    messages = [EXPECTED_PB[0] + unknown, *EXPECTED_PB[1:]]
    assert_same_tree(decode_tree_pb(framed(messages), "t.pb"), EXPECTED)


LEAF_A = leaf(1.0, 2.0).SerializeToString()
CUT_NODE = framed(EXPECTED_PB)[:-3]
BAD_PB = {
    "empty": (b"", "no nodes"),
    "message cut short": (CUT_NODE, "node 4: truncated"),
    "size prefix cut short": (framed(EXPECTED_PB) + b"\x00\x00", "node 5: truncated"),
    "leftover complete node": (framed([*EXPECTED_PB, LEAF_A]), "node 5: nodes follow"),
    "tree ends early": (framed(EXPECTED_PB[:4]), "node 2 has no right child"),
    "typeless node": (framed([b"", LEAF_A]), "node 0: node is neither"),
    "internal without split": (framed([b"\x0a\x00", LEAF_A, LEAF_A]), "node 0: internal node has no split"),
    "split without type": (framed([b"\x0a\x02\x0a\x00", LEAF_A, LEAF_A]), "node 0: split is neither"),
    "huge feature": (framed([continuous(2**31, 0.5).SerializeToString(), LEAF_A, LEAF_A]), "too large"),
    "nan threshold": (framed([continuous(0, math.nan).SerializeToString(), LEAF_A, LEAF_A]), "not finite"),
    "inf threshold": (framed([continuous(0, math.inf).SerializeToString(), LEAF_A, LEAF_A]), "not finite"),
    "ragged leaves": (
        framed([continuous(0, 0.5).SerializeToString(), LEAF_A, leaf(1.0).SerializeToString()]),
        "node 2: leaf has 1 values but node 1 has 2",
    ),
    "leaf without values": (framed([leaf().SerializeToString()]), "node 0: leaf has no values"),
    "packed doubles not a multiple of 8": (framed([b"\x12\x03\x0a\x01\x00"]), "multiple of 8"),
    "bad varint": (framed([b"\x12" + b"\xff" * 11]), "node 0: malformed varint"),
}


@pytest.mark.parametrize("case", sorted(BAD_PB))
def test_bad_pb_is_rejected_naming_file_and_node(case: str) -> None:
    data, message = BAD_PB[case]
    with pytest.raises(TreeFormatError, match=f"m/tree.pb: .*{message}"):
        decode_tree_pb(data, "m/tree.pb")


def internal_json(feature: object, threshold: object) -> str:
    """A continuous internal node line with literal feature and threshold text."""
    split = f'{{"type":"continuous","featureIndex":{feature},"threshold":{threshold}}}'
    return f'{{"type":"internal","split":{split}}}'


LEAF_JSON = '{"type":"leaf","values":[1.0,2.0]}'
BAD_JSON = {
    "empty": ("", "no nodes"),
    "tree ends early": (f"{internal_json(0, 0.5)}\n{LEAF_JSON}", "node 0 has no right child"),
    "nodes after completion": (f"{LEAF_JSON}\n{LEAF_JSON}", "node 1: nodes follow"),
    "negative feature": (f"{internal_json(-1, 0.5)}\n{LEAF_JSON}\n{LEAF_JSON}", "node 0: negative feature"),
    "huge feature": (f"{internal_json(2**40, 0.5)}\n{LEAF_JSON}\n{LEAF_JSON}", "node 0: .*too large"),
    "nan threshold": (f"{internal_json(0, 'NaN')}\n{LEAF_JSON}\n{LEAF_JSON}", "node 0: threshold nan"),
    "inf threshold": (f"{internal_json(0, '-Infinity')}\n{LEAF_JSON}\n{LEAF_JSON}", "node 0: .*not finite"),
    "ragged leaves": (
        f'{internal_json(0, 0.5)}\n{LEAF_JSON}\n{{"type":"leaf","values":[1.0]}}',
        "node 2: leaf has 1 values",
    ),
    "broken line": (f'{internal_json(0, 0.5)}\n{LEAF_JSON}\n{{"type":"leaf",', "node 2: not valid JSON"),
    "unknown node type": (f'{{"type":"branch"}}\n{LEAF_JSON}', "node 0: unknown node type"),
    "missing split": (f'{{"type":"internal"}}\n{LEAF_JSON}\n{LEAF_JSON}', "node 0: malformed node"),
    "not an object": (f"[1, 2]\n{LEAF_JSON}", "node 0: expected a JSON object"),
    "fractional feature": (f"{internal_json(1.5, 0.5)}\n{LEAF_JSON}\n{LEAF_JSON}", "not an integer"),
}


@pytest.mark.parametrize("case", sorted(BAD_JSON))
def test_bad_json_is_rejected_naming_file_and_node(case: str) -> None:
    text, message = BAD_JSON[case]
    with pytest.raises(TreeFormatError, match=f"m/tree.json: .*{message}"):
        decode_tree_json(text.encode(), "m/tree.json")
