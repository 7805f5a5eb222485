"""Tree models: decision tree, random forest and GBT, classifier and regressor, on compiled forests."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from scorer.bundle.archive import BundleArchive
from scorer.bundle.errors import BundleError
from scorer.bundle.op import NodeContext, Op
from scorer.bundle.ops.classify import build_classifier, normalize_rows, optional_thresholds
from scorer.bundle.ops.linear import build_regressor
from scorer.trees import CompiledForest, Tree, TreeFormatError, compile_forest

LeafTransform = Callable[[Tree], Tree]


def _tree_reader(
    ctx: NodeContext, directories: Sequence[str], width: int, n_features: int
) -> Callable[[], list[Tree]]:
    """A callable decoding the tree file of each directory, checking leaf widths and feature indices."""

    def read() -> list[Tree]:
        # imported here: the decoders start numba, which a load from the compiled cache never needs
        from scorer.trees.json_decoder import decode_tree_json
        from scorer.trees.pb_decoder import decode_tree_pb

        trees = []
        ext = "json" if ctx.format == "json" else "pb"
        for directory in directories:
            rel = BundleArchive.join(directory, f"tree.{ext}")
            legacy = BundleArchive.join(directory, f"nodes.{ext}")
            if not ctx.archive.exists(rel) and ctx.archive.exists(legacy):
                rel = legacy  # MLeap before 0.23 wrote its trees as nodes.json / nodes.pb
            where = f"{ctx.archive.label}: {rel}"
            data = ctx.archive.read(rel)
            tree = decode_tree_json(data, where) if ctx.format == "json" else decode_tree_pb(data, where)
            if tree.n_values != width:
                raise BundleError(f"{where}: leaves hold {tree.n_values} values, expected {width}")
            # checked before compiling: a forest sizes its buffers by the largest feature index
            if tree.n_nodes and int(tree.feature.max()) >= n_features:
                node = int(tree.feature.argmax())
                raise BundleError(
                    f"{where}: node {node} splits on feature {int(tree.feature.max())}, "
                    f"but attribute 'num_features' is {n_features}"
                )
            trees.append(tree)
        return trees

    return read


def _per_tree_probabilities(tree: Tree) -> Tree:
    """Leaf class counts scaled to sum 1 (MLeap's random forest votes with each tree's class shares)."""
    values = normalize_rows(tree.values)
    return Tree(tree.feature, tree.threshold, tree.left, tree.right, values, tree.categorical)


def _forest(
    ctx: NodeContext,
    directories: Sequence[str],
    width: int,
    weights: np.ndarray | None,
    leaf_transform: LeafTransform | None = None,
) -> CompiledForest:
    n_features = ctx.attrs.long("num_features")
    if n_features < 1:
        raise BundleError(f"{ctx.where}: attribute 'num_features' is {n_features}, expected at least 1")
    read = _tree_reader(ctx, directories, width, n_features)

    def trees() -> list[Tree]:
        decoded = read()
        return [leaf_transform(t) for t in decoded] if leaf_transform else decoded

    key = f"{ctx.bundle_sha256}/{ctx.path}"
    try:
        if ctx.cache is None:
            return compile_forest(trees(), weights)
        return ctx.cache.get_or_compile(key, trees, weights)
    except TreeFormatError as err:
        # a malformed tree is a malformed bundle: callers catch one error type for both
        msg = str(err)
        raise BundleError(msg if msg.startswith(ctx.archive.label) else f"{ctx.where}: {msg}") from None


def _n_features(ctx: NodeContext, forest: CompiledForest) -> int:
    n = ctx.attrs.long("num_features")
    if n < forest.n_features:  # a cache entry made for other trees: never trust it over the bundle
        raise BundleError(
            f"{ctx.where}: trees split on feature {forest.n_features - 1} but num_features is {n}"
        )
    return n


def _ensemble(ctx: NodeContext) -> tuple[list[str], np.ndarray]:
    names = ctx.attrs.string_list("trees")
    if not names:
        raise BundleError(f"{ctx.where}: attribute 'trees' is empty")
    weights = ctx.attrs.double_list("tree_weights") if ctx.attrs.has("tree_weights") else np.ones(len(names))
    if weights.shape[0] != len(names):
        raise BundleError(f"{ctx.where}: {weights.shape[0]} tree_weights for {len(names)} trees")
    ctx.attrs.finite("tree_weights", weights)
    return [BundleArchive.join(ctx.path, n) for n in names], weights


def _num_classes(ctx: NodeContext) -> int:
    n = ctx.attrs.long("num_classes")
    if n < 2:
        raise BundleError(f"{ctx.where}: attribute 'num_classes' is {n}, expected at least 2")
    return n


def load_decision_tree_regression(ctx: NodeContext) -> Op:
    """The leaf value of one tree."""
    forest = _forest(ctx, [ctx.path], 1, None)
    return build_regressor(ctx, _n_features(ctx, forest), lambda x: forest.sum_leaves(x)[:, 0])


def load_decision_tree_classifier(ctx: NodeContext) -> Op:
    """Raw = the leaf's class counts, probability = counts normalised."""
    k = _num_classes(ctx)
    forest = _forest(ctx, [ctx.path], k, None)
    return build_classifier(
        ctx, _n_features(ctx, forest), k, forest.sum_leaves, normalize_rows, optional_thresholds(ctx)
    )


def load_random_forest_regression(ctx: NodeContext) -> Op:
    """Mean of the trees' predictions (MLeap ignores tree_weights here)."""
    dirs, _ = _ensemble(ctx)
    forest = _forest(ctx, dirs, 1, None)
    n = float(len(dirs))
    return build_regressor(ctx, _n_features(ctx, forest), lambda x: forest.sum_leaves(x)[:, 0] / n)


def load_random_forest_classifier(ctx: NodeContext) -> Op:
    """Raw = sum over trees of each leaf's class shares; probability = raw normalised."""
    k = _num_classes(ctx)
    dirs, _ = _ensemble(ctx)
    forest = _forest(ctx, dirs, k, None, _per_tree_probabilities)
    return build_classifier(
        ctx, _n_features(ctx, forest), k, forest.sum_leaves, normalize_rows, optional_thresholds(ctx)
    )


def load_gbt_regression(ctx: NodeContext) -> Op:
    """Weighted sum of the trees' predictions."""
    dirs, weights = _ensemble(ctx)
    forest = _forest(ctx, dirs, 1, weights)
    return build_regressor(ctx, _n_features(ctx, forest), lambda x: forest.sum_leaves(x)[:, 0])


def _gbt_probability(raw: np.ndarray) -> np.ndarray:
    # MLeap's LogLoss: P(class 0) = 1 / (1 + exp(-2 * raw[0])) with raw[0] = -margin
    with np.errstate(over="ignore"):  # exp overflows to inf for a large margin: p0 is then 0
        p0 = 1.0 / (1.0 + np.exp(-2.0 * raw[:, 0]))
    return np.stack([p0, 1.0 - p0], axis=1)


def load_gbt_classifier(ctx: NodeContext) -> Op:
    """Binary only: margin = weighted sum of trees, raw = [-margin, margin], logistic loss probabilities."""
    if ctx.attrs.has("num_classes") and ctx.attrs.long("num_classes") != 2:
        raise BundleError(f"{ctx.where}: GBT classifiers must be binary (num_classes 2)")
    if ctx.attrs.has("lossType") and ctx.attrs.string("lossType") != "logistic":
        raise BundleError(f"{ctx.where}: attribute 'lossType' must be 'logistic'")
    dirs, weights = _ensemble(ctx)
    forest = _forest(ctx, dirs, 1, weights)

    def raw(x: np.ndarray) -> np.ndarray:
        m = forest.sum_leaves(x)[:, 0]
        return np.stack([-m, m], axis=1)

    return build_classifier(ctx, _n_features(ctx, forest), 2, raw, _gbt_probability, optional_thresholds(ctx))


FACTORIES = {
    "decision_tree_regression": load_decision_tree_regression,
    "decision_tree_classifier": load_decision_tree_classifier,
    "random_forest_regression": load_random_forest_regression,
    "random_forest_classifier": load_random_forest_classifier,
    "gbt_regression": load_gbt_regression,
    "gbt_classifier": load_gbt_classifier,
}
