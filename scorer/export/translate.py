"""Translate a fitted scikit-learn estimator or pipeline into an op graph with named scalar inputs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rtscore.errors import InvalidArgument
from scorer.export import models, transforms
from scorer.export import values as v
from scorer.export.graph import OpModel, OpNode


@dataclass(frozen=True)
class Piece:
    """A column produced so far: a scalar double (`size` None) or a vector of `size` doubles."""

    name: str
    size: int | None = None


@dataclass
class GraphBuilder:
    """Appends pipeline stages, naming nodes and columns so they never collide."""

    taken: set[str]
    nodes: list[OpNode] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def fresh(self, base: str) -> str:
        """A column or node name not used yet."""
        n = self.counts.get(base, 0)
        while True:
            candidate = base if n == 0 else f"{base}_{n}"
            n += 1
            if candidate not in self.taken:
                self.counts[base] = n
                self.taken.add(candidate)
                return candidate

    def add(self, model: OpModel, inputs: list[tuple[str, str]], outputs: list[tuple[str, str]]) -> None:
        """Append a stage node for `model`."""
        self.nodes.append(OpNode(self.fresh(model.op), model, inputs, outputs))

    def vector(self, pieces: list[Piece]) -> Piece:
        """One vector column holding `pieces` in order, assembling it when needed."""
        if len(pieces) == 1 and pieces[0].size is not None:
            return pieces[0]
        shapes = [v.scalar_shape() if p.size is None else v.tensor_shape(p.size) for p in pieces]
        out = Piece(self.fresh("features"), sum(1 if p.size is None else p.size for p in pieces))
        model = OpModel("vector_assembler", {"input_shapes": v.data_shape_list(shapes)})
        self.add(model, [(f"input{i}", p.name) for i, p in enumerate(pieces)], [("output", out.name)])
        return out

    def scalar_map(self, ops: list[OpModel], pieces: list[Piece], suffix: str) -> list[Piece]:
        """Apply one scalar op per column."""
        scalars = _scalars(pieces, ops[0].op if ops else suffix)
        if len(ops) != len(scalars):
            raise InvalidArgument(f"{suffix}: fitted on {len(ops)} columns but given {len(scalars)}")
        out = []
        for op, col in zip(ops, scalars, strict=True):
            name = self.fresh(f"{col}_{suffix}")
            self.add(op, [("input", col)], [("output", name)])
            out.append(Piece(name))
        return out


def _scalars(pieces: list[Piece], what: str) -> list[str]:
    if any(p.size is not None for p in pieces):
        raise InvalidArgument(f"{what} works on single columns and cannot follow a step that makes vectors")
    return [p.name for p in pieces]


def _vector_op(builder: GraphBuilder, model: OpModel, pieces: list[Piece]) -> list[Piece]:
    vec = builder.vector(pieces)
    out = Piece(builder.fresh(f"{vec.name}_{model.op}"), vec.size)
    builder.add(model, [("input", vec.name)], [("output", out.name)])
    return [out]


def _column_indices(ct: Any, columns: Any, n: int) -> list[int]:
    if isinstance(columns, slice):
        return list(range(n))[columns]
    cols = np.atleast_1d(np.asarray(columns))
    if cols.dtype == bool:
        return [int(i) for i in np.flatnonzero(cols)]
    if cols.dtype.kind in "iu":
        return [int(i) for i in cols]
    names = list(getattr(ct, "feature_names_in_", []))
    try:
        return [names.index(str(c)) for c in cols]
    except ValueError as err:
        raise InvalidArgument(f"ColumnTransformer selects a column it was not fitted on: {err}") from None


def _column_transformer(builder: GraphBuilder, ct: Any, pieces: list[Piece]) -> list[Piece]:
    scalars = _scalars(pieces, "ColumnTransformer")
    out: list[Piece] = []
    for _name, trans, columns in ct.transformers_:
        if isinstance(trans, str) and trans == "drop":
            continue
        chosen = [Piece(scalars[i]) for i in _column_indices(ct, columns, len(scalars))]
        if not chosen:
            continue
        out += (
            chosen if isinstance(trans, str) and trans == "passthrough" else transform(builder, trans, chosen)
        )
    return out


def transform(builder: GraphBuilder, est: Any, pieces: list[Piece]) -> list[Piece]:
    """Append the stages of a fitted transformer applied to `pieces`; return the columns it produces."""
    kind = type(est).__name__
    if est is None or (isinstance(est, str) and est == "passthrough"):
        return pieces
    if kind == "Pipeline":
        for _name, step in est.steps:
            pieces = transform(builder, step, pieces)
        return pieces
    if kind == "ColumnTransformer":
        return _column_transformer(builder, est, pieces)
    if kind == "StandardScaler":
        return _vector_op(builder, transforms.standard_scaler(est), pieces)
    if kind == "MinMaxScaler":
        return _vector_op(builder, transforms.min_max_scaler(est), pieces)
    if kind == "Binarizer":
        if all(p.size is None for p in pieces):
            # Scalar binarizers per column: every MLeap runtime reads those; vector ones only some.
            ops = [transforms.binarizer(est, None) for _ in pieces]
            return builder.scalar_map(ops, pieces, "binary")
        vec = builder.vector(pieces)
        return _vector_op(builder, transforms.binarizer(est, vec.size), [vec])
    if kind == "FunctionTransformer" and est.func is None:
        return pieces  # ColumnTransformer's fitted `remainder="passthrough"`
    if kind == "SimpleImputer":
        return builder.scalar_map(transforms.imputers(est), pieces, "imputed")
    if kind == "KBinsDiscretizer":
        return builder.scalar_map(transforms.bucketizers(est), pieces, "bucket")
    if kind == "OneHotEncoder":
        encoders = transforms.one_hot_encoders(est)
        scalars = _scalars(pieces, "OneHotEncoder")
        if len(encoders) != len(scalars):
            raise InvalidArgument(
                f"OneHotEncoder: fitted on {len(encoders)} columns but given {len(scalars)}"
            )
        out = []
        for (model, width), col in zip(encoders, scalars, strict=True):
            piece = Piece(builder.fresh(f"{col}_onehot"), width)
            builder.add(model, [("input0", col)], [("output0", piece.name)])
            out.append(piece)
        return out
    raise InvalidArgument(f"rtscore cannot export {kind}: no MLeap op for it")


_CLASSIFIERS = {"RandomForestClassifier", "ExtraTreesClassifier", "DecisionTreeClassifier"}
_LINEAR = {"LinearRegression", "Ridge", "Lasso", "ElasticNet"}


def predictor(est: Any, n_features: int) -> models.Predictor:
    """The op model for a fitted final estimator working on a vector of `n_features`."""
    kind = type(est).__name__
    if kind in (
        "RandomForestClassifier",
        "RandomForestRegressor",
        "ExtraTreesClassifier",
        "ExtraTreesRegressor",
    ):
        return models.random_forest(est, n_features, kind in _CLASSIFIERS)
    if kind in ("DecisionTreeClassifier", "DecisionTreeRegressor"):
        return models.decision_tree(est, n_features, kind in _CLASSIFIERS)
    if kind in ("GradientBoostingClassifier", "GradientBoostingRegressor"):
        return models.gradient_boosting(est, n_features, kind == "GradientBoostingClassifier")
    if kind == "LogisticRegression":
        return models.logistic_regression(est, n_features)
    if kind in _LINEAR:
        return models.linear_regression(est, n_features)
    raise InvalidArgument(f"rtscore cannot export {kind}: no MLeap op for it")


def input_names(est: Any, features: Sequence[str] | None) -> list[str]:
    """The bundle's input column names: given, else the estimator's `feature_names_in_`, else f0..f{n-1}."""
    n = getattr(est, "n_features_in_", None)
    if n is None:
        raise InvalidArgument(f"{type(est).__name__} is not fitted (no n_features_in_)")
    if features is not None:
        names = [str(f) for f in features]
    elif hasattr(est, "feature_names_in_"):
        names = [str(f) for f in est.feature_names_in_]
    else:
        names = [f"f{i}" for i in range(n)]
    if len(names) != n:
        raise InvalidArgument(f"{len(names)} feature names given but the model takes {n} features")
    if len(set(names)) != len(names) or any(not s for s in names):
        raise InvalidArgument("feature names must be unique and non-empty")
    clash = set(names) & set(models.CLASSIFIER_OUTPUTS)
    if clash:
        raise InvalidArgument(f"feature name {sorted(clash)[0]!r} collides with an output column")
    return names


def build_graph(est: Any, features: Sequence[str] | None, name: str) -> OpNode:
    """The bundle's root pipeline node for a fitted estimator (a predictor, or a Pipeline ending in one)."""
    names = input_names(est, features)
    builder = GraphBuilder(taken=set(names) | set(models.CLASSIFIER_OUTPUTS))
    final = est
    pieces = [Piece(n) for n in names]
    if type(est).__name__ == "Pipeline":
        *steps, (_, final) = est.steps
        for _step_name, step in steps:
            pieces = transform(builder, step, pieces)
    features_col = builder.vector(pieces)
    pred = predictor(final, features_col.size or 0)
    if getattr(final, "n_features_in_", features_col.size) != features_col.size:
        raise InvalidArgument(
            f"{type(final).__name__} takes {final.n_features_in_} features "
            f"but the pipeline makes {features_col.size}"
        )
    builder.add(pred.model, [("features", features_col.name)], [(port, port) for port in pred.outputs])
    root_model = OpModel("pipeline", {"nodes": v.string_list([n.name for n in builder.nodes])})
    return OpNode(name, root_model, [], [], children=builder.nodes)
