"""Numeric transforms: scalers, imputer, binarizer, bucketizer, math_unary and math_binary."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from scorer.bundle.errors import BundleError, FrameError
from scorer.bundle.op import DOUBLE, NodeContext, Op, double_vector
from scorer.frame import DataType, Field, LeapFrame, compressed_rows

Elementwise = Callable[[np.ndarray], np.ndarray]


class Elementwise1(Op):
    """One input column, one output column of the same shape, computed by a numpy function."""

    source: str
    width: int | None  # None for a scalar column
    fn: Elementwise
    # how MLeap holds the output vectors: "dense", "compressed" (Spark's rule), or "input" (as the input)
    layout: str = "dense"

    def transform(self, frame: LeapFrame) -> LeapFrame:
        """Append fn(input)."""
        if self.width is None:
            x = self.doubles(frame, self.source)
        else:
            x = self.vectors(frame, self.source, self.width)
        with np.errstate(all="ignore"):
            y = self.fn(x)
        field = self.output_fields[0]
        if self.layout == "dense":
            return frame.with_columns(((field, y),))
        rows = compressed_rows(y) if self.layout == "compressed" else frame.sparse_rows(self.source)
        return frame.with_columns(((field, y),), sparse=None if rows is None else {field.name: rows})


def _unary(ctx: NodeContext, width: int | None, fn: Elementwise, nullable_in: bool = False) -> Elementwise1:
    op = Elementwise1(ctx.op, ctx.name, ctx.path, ctx.inputs, ctx.outputs)
    op.source, op.width, op.fn = ctx.input("input"), width, fn
    out = ctx.output("output")
    if width is None:
        op.input_fields = [Field(op.source, DataType.scalar("double", nullable_in))]
        op.output_fields = [Field(out, DOUBLE)]
    else:
        op.input_fields = [Field(op.source, double_vector(width))]
        op.output_fields = [Field(out, double_vector(width))]
    return op


def load_standard_scaler(ctx: NodeContext) -> Op:
    """(x - mean) * (1/std), either part optional; a zero std gives 0."""
    mean = ctx.attrs.finite("mean", ctx.attrs.vector("mean")) if ctx.attrs.has("mean") else None
    std = ctx.attrs.finite("std", ctx.attrs.vector("std")) if ctx.attrs.has("std") else None
    if mean is None and std is None:
        raise BundleError(f"{ctx.where}: needs attribute 'mean' or 'std'")
    base = std if std is not None else mean
    assert base is not None
    size = int(base.shape[0])
    if mean is not None and std is not None and mean.shape != std.shape:
        raise BundleError(f"{ctx.where}: 'mean' has {mean.shape[0]} values but 'std' has {std.shape[0]}")
    inv = None
    if std is not None:
        with np.errstate(divide="ignore"):
            inv = np.where(std != 0.0, 1.0 / std, 0.0)
    if mean is not None and inv is not None:
        zero = inv == 0.0

        def fn(x: np.ndarray) -> np.ndarray:
            return np.where(zero, 0.0, (x - mean) * inv)
    elif mean is not None:

        def fn(x: np.ndarray) -> np.ndarray:
            return x - mean
    else:

        def fn(x: np.ndarray) -> np.ndarray:
            return x * inv

        # without a mean MLeap scales sparse vectors in place, keeping them sparse
        op = _unary(ctx, size, fn)
        op.layout = "input"
        return op

    return _unary(ctx, size, fn)


def load_min_max_scaler(ctx: NodeContext) -> Op:
    """(x - min) / (max - min) rescaled to [minValue, maxValue]; a zero range gives 0.5; NaN stays."""
    lo = ctx.attrs.finite("min", ctx.attrs.vector("min"))
    hi = ctx.attrs.finite("max", ctx.attrs.vector("max", lo.shape[0]))
    min_value = ctx.attrs.double("minValue") if ctx.attrs.has("minValue") else 0.0
    max_value = ctx.attrs.double("maxValue") if ctx.attrs.has("maxValue") else 1.0
    rng = hi - lo
    scale = max_value - min_value
    safe = np.where(rng != 0, rng, 1.0)

    def fn(x: np.ndarray) -> np.ndarray:
        raw = np.where(rng != 0, (x - lo) / safe, 0.5)
        return np.where(np.isnan(x), x, raw * scale + min_value)

    return _unary(ctx, lo.shape[0], fn)


def load_imputer(ctx: NodeContext) -> Op:
    """NaN (or `missing_value`) replaced by `surrogate_value`."""
    surrogate = ctx.attrs.double("surrogate_value")
    missing = ctx.attrs.double("missing_value") if ctx.attrs.has("missing_value") else float("nan")
    nullable = ctx.attrs.boolean("nullable_input") if ctx.attrs.has("nullable_input") else True

    def fn(x: np.ndarray) -> np.ndarray:
        return np.where(np.isnan(x) | (x == missing), surrogate, x)

    return _unary(ctx, None, fn, nullable)


def load_binarizer(ctx: NodeContext) -> Op:
    """1.0 where x > threshold, else 0.0; a scalar or a tensor per `input_shapes`."""
    if ctx.attrs.has("thresholds"):
        raise BundleError(f"{ctx.where}: multi-column binarizers are not supported")
    threshold = ctx.attrs.double("threshold")
    width = None
    if ctx.attrs.has("input_shapes"):
        shape = ctx.attrs.data_shape("input_shapes")
        if shape.base == "tensor":
            if not shape.dimensions or len(shape.dimensions) != 1:
                raise BundleError(
                    f"{ctx.where}: attribute 'input_shapes' needs a one-dimensional tensor size"
                )
            width = shape.dimensions[0]
    op = _unary(ctx, width, lambda x: (x > threshold).astype(np.float64))
    if width is not None:
        op.layout = "compressed"  # MLeap builds a sparse vector of the ones, then `compressed`
    return op


class Bucketizer(Op):
    """The index of the split interval holding x (Spark's Bucketizer)."""

    splits: np.ndarray
    handle: str
    source: str

    def transform(self, frame: LeapFrame) -> LeapFrame:
        """Append the bucket index; NaN per handle_invalid, out-of-range values raise."""
        x = self.doubles(frame, self.source)
        nan = np.isnan(x)
        if nan.any() and self.handle == "error":
            raise FrameError(f"{self.where(self.source)}: NaN value (handle_invalid is error)")
        if nan.any() and self.handle == "skip":
            frame = frame.take(~nan)
            x = x[~nan]
            nan = nan[~nan]
        s = self.splits
        out = np.searchsorted(s, x, side="right").astype(np.float64) - 1.0
        out[x == s[-1]] = s.shape[0] - 2
        outside = ~nan & ((x < s[0]) | (x > s[-1]))
        if outside.any():
            bad = x[np.argmax(outside)]
            raise FrameError(
                f"{self.where(self.source)}: value {bad} outside the bucket bounds [{s[0]}, {s[-1]}]"
            )
        out[nan] = s.shape[0] - 1
        return frame.with_column(self.output_fields[0], out)


def load_bucketizer(ctx: NodeContext) -> Op:
    """`splits` (strictly increasing, at least three) and `handle_invalid`."""
    splits = ctx.attrs.double_list("splits")
    # JSON cannot hold infinities: the extreme doubles stand for them
    splits = np.where(splits >= np.finfo(np.float64).max, np.inf, splits)
    splits = np.where(splits <= -np.finfo(np.float64).max, -np.inf, splits)
    if splits.shape[0] < 3 or np.isnan(splits).any() or not np.all(np.diff(splits) > 0):
        raise BundleError(f"{ctx.where}: attribute 'splits' must be at least 3 strictly increasing values")
    handle = ctx.attrs.string("handle_invalid") if ctx.attrs.has("handle_invalid") else "error"
    if handle not in ("error", "skip", "keep"):
        raise BundleError(f"{ctx.where}: attribute 'handle_invalid' is {handle!r}")
    op = Bucketizer(ctx.op, ctx.name, ctx.path, ctx.inputs, ctx.outputs)
    op.splits, op.handle, op.source = splits, handle, ctx.input("input")
    op.input_fields = [Field(op.source, DataType.scalar("double", False))]
    op.output_fields = [Field(ctx.output("output"), DOUBLE)]
    return op


def _java_round(x: np.ndarray) -> np.ndarray:
    return np.floor(x + 0.5)


def _logit(x: np.ndarray) -> np.ndarray:
    return np.where((x < 0) | (x > 1), np.nan, np.log(x / (1.0 - x)))


UNARY: dict[str, Elementwise] = {
    "log": np.log,
    "exp": np.exp,
    "sqrt": np.sqrt,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "abs": np.abs,
    "logit": _logit,
    "floor": np.floor,
    "ceil": np.ceil,
    "round": _java_round,
}

BINARY: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": np.divide,
    "rem": np.fmod,  # Java's % keeps the dividend's sign
    "log_n": lambda a, b: np.log(a) / np.log(b),
    "pow": np.power,
    "min": np.minimum,
    "max": np.maximum,
}


def load_math_unary(ctx: NodeContext) -> Op:
    """`operation` applied to a scalar."""
    name = ctx.attrs.string("operation")
    fn = UNARY.get(name)
    if fn is None:
        raise BundleError(f"{ctx.where}: attribute 'operation' is {name!r}, expected one of {sorted(UNARY)}")
    return _unary(ctx, None, fn)


class MathBinary(Op):
    """`operation`(a, b) where either side may be a constant (`da`, `db`)."""

    fn: Callable[[np.ndarray, np.ndarray], np.ndarray]
    a: str | float
    b: str | float

    def transform(self, frame: LeapFrame) -> LeapFrame:
        """Append fn(a, b)."""
        a = self.doubles(frame, self.a) if isinstance(self.a, str) else np.full(frame.n_rows, self.a)
        b = self.doubles(frame, self.b) if isinstance(self.b, str) else np.full(frame.n_rows, self.b)
        with np.errstate(all="ignore"):
            return frame.with_column(self.output_fields[0], np.asarray(self.fn(a, b), dtype=np.float64))


def load_math_binary(ctx: NodeContext) -> Op:
    """Inputs `input_a`/`input_b`, or constants `da`/`db` in their place."""
    name = ctx.attrs.string("operation")
    fn = BINARY.get(name)
    if fn is None:
        raise BundleError(f"{ctx.where}: attribute 'operation' is {name!r}, expected one of {sorted(BINARY)}")
    ports = dict(ctx.inputs)
    op = MathBinary(ctx.op, ctx.name, ctx.path, ctx.inputs, ctx.outputs)
    op.fn = fn
    sides: list[str | float] = []
    for port, const in (("input_a", "da"), ("input_b", "db")):
        if port in ports:
            sides.append(ports[port])
            op.input_fields.append(Field(ports[port], DataType.scalar("double", False)))
        elif ctx.attrs.has(const):
            sides.append(ctx.attrs.double(const))
        else:
            raise BundleError(f"{ctx.where}: needs input port {port!r} or attribute {const!r}")
    op.a, op.b = sides
    op.output_fields = [Field(ctx.output("output"), DOUBLE)]
    return op


FACTORIES = {
    "standard_scaler": load_standard_scaler,
    "min_max_scaler": load_min_max_scaler,
    "imputer": load_imputer,
    "binarizer": load_binarizer,
    "sklearn_binarizer": load_binarizer,  # MLeap's name for the sklearn form with a one-item shape list
    "bucketizer": load_bucketizer,
    "math_unary": load_math_unary,
    "math_binary": load_math_binary,
}
