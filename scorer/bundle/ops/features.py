"""Categorical features: `string_indexer`, `one_hot_encoder`, `string_map`, and `vector_assembler`."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from scorer.bundle.errors import BundleError, FrameError
from scorer.bundle.op import DOUBLE, NodeContext, Op, double_vector
from scorer.frame import DataType, Field, LeapFrame, all_rows, compressed_rows

_HANDLERS = ("error", "skip", "keep")


def _handle_invalid(ctx: NodeContext, allowed: tuple[str, ...], default: str = "error") -> str:
    value = ctx.attrs.string("handle_invalid") if ctx.attrs.has("handle_invalid") else default
    if value not in allowed:
        raise BundleError(f"{ctx.where}: attribute 'handle_invalid' is {value!r}, expected one of {allowed}")
    return value


def _as_label(v: Any) -> str | None:
    # MLeap indexes `value.toString`; Python's str agrees for strings, integers and doubles like 1.0
    return v if v is None or isinstance(v, str) else str(v)


class StringIndexer(Op):
    """Label -> its index in `labels`; unseen labels raise, drop the row, or map to len(labels)."""

    index: dict[str, float]
    handle: str
    source: str

    def transform(self, frame: LeapFrame) -> LeapFrame:
        """Append the index column (dropping rows with unseen labels when handle_invalid is skip)."""
        values = self.strings(frame, self.source)
        unseen = float(len(self.index))
        if values.shape[0] == 1:
            found = self.index.get(_as_label(values[0]))  # type: ignore[arg-type]
            if found is not None:
                return frame.with_column(self.output_fields[0], np.array([found]))
        out = np.fromiter(
            (self.index.get(_as_label(v), -1.0) for v in values),  # type: ignore[arg-type]
            dtype=np.float64,
            count=values.shape[0],
        )
        bad = out < 0
        if bad.any():
            if self.handle == "error":
                label = values[np.argmax(bad)]
                raise FrameError(
                    f"{self.where(self.source)}: unseen label {label!r} (handle_invalid is error)"
                )
            if self.handle == "keep":
                out[bad] = unseen
            else:
                frame = frame.take(~bad)
                out = out[~bad]
        return frame.with_column(self.output_fields[0], out)


def load_string_indexer(ctx: NodeContext) -> Op:
    """Single-column string indexer (`labels`, or `labels_array_0` when `labels_length` is 1)."""
    if ctx.attrs.has("labels_length"):
        if ctx.attrs.long("labels_length") != 1:
            raise BundleError(f"{ctx.where}: only single-column string indexers are supported")
        labels = ctx.attrs.string_list("labels_array_0")
    else:
        labels = ctx.attrs.string_list("labels")
    ports = dict(ctx.inputs)
    source = ports.get("input") or ctx.input("input0")
    target = ctx.optional_output("output") or ctx.output("output0")
    op = StringIndexer(ctx.op, ctx.name, ctx.path, ctx.inputs, ctx.outputs)
    op.index = {label: float(i) for i, label in reversed(list(enumerate(labels)))}
    op.handle = _handle_invalid(ctx, _HANDLERS)
    op.source = source
    op.input_fields = [Field(source, DataType.scalar("string"))]
    op.output_fields = [Field(target, DOUBLE)]
    return op


class StringMap(Op):
    """Label -> a double from a table; unknown labels raise or take `default_value`."""

    table: dict[str, float]
    handle: str
    default: float
    source: str

    def transform(self, frame: LeapFrame) -> LeapFrame:
        """Append the mapped column."""
        values = self.strings(frame, self.source)
        out = np.empty(values.shape[0], dtype=np.float64)
        for i, v in enumerate(values):
            got = self.table.get(_as_label(v))  # type: ignore[arg-type]
            if got is None:
                if self.handle == "error":
                    raise FrameError(
                        f"{self.where(self.source)}: unknown label {v!r} (handle_invalid is error)"
                    )
                got = self.default
            out[i] = got
        return frame.with_column(self.output_fields[0], out)


def load_string_map(ctx: NodeContext) -> Op:
    """`labels` and `values` zipped into a table."""
    labels = ctx.attrs.string_list("labels")
    values = ctx.attrs.double_list("values")
    if len(labels) != values.shape[0]:
        raise BundleError(f"{ctx.where}: {len(labels)} labels but {values.shape[0]} values")
    op = StringMap(ctx.op, ctx.name, ctx.path, ctx.inputs, ctx.outputs)
    op.table = dict(zip(labels, values.tolist(), strict=True))
    op.handle = _handle_invalid(ctx, ("error", "keep"))
    op.default = ctx.attrs.double("default_value") if ctx.attrs.has("default_value") else 0.0
    op.source = ctx.input("input")
    op.input_fields = [Field(op.source, DataType.scalar("string"))]
    op.output_fields = [Field(ctx.output("output"), DOUBLE)]
    return op


class OneHotEncoder(Op):
    """Category indices -> one-hot vectors (dense), per input column."""

    columns: list[tuple[str, int, np.ndarray]]  # (input column, category size, rows to copy out)
    keep: bool

    def transform(self, frame: LeapFrame) -> LeapFrame:
        """Append one vector column per input."""
        out = []
        for (source, size, table), field in zip(self.columns, self.output_fields, strict=True):
            x = self.doubles(frame, source)
            if x.shape[0] == 1:
                # one row is the latency-critical case: plain Python beats eight tiny numpy calls
                out.append((field, table[self._one_index(source, float(x[0]), size)][None, :]))
                continue
            with np.errstate(invalid="ignore"):
                idx = x.astype(np.int64)
            whole = idx == x  # False for NaN, infinities and fractions
            if not whole.all():
                raise FrameError(
                    f"{self.where(source)}: invalid label {x[np.argmin(whole)]}, must be an integer"
                )
            invalid = (idx < 0) | (idx >= size)
            if invalid.any():
                if not self.keep:
                    bad = x[np.argmax(invalid)]
                    raise FrameError(f"{self.where(source)}: unseen value {bad} (handle_invalid is error)")
                idx[invalid] = size
            out.append((field, table[idx]))
        # MLeap's encoder builds sparse vectors, so its frames print them with indices
        every_row = all_rows(frame.n_rows)
        return frame.with_columns(out, sparse={f.name: every_row for f, _ in out})

    def _one_index(self, source: str, v: float, size: int) -> int:
        if not math.isfinite(v) or v != int(v):
            raise FrameError(f"{self.where(source)}: invalid label {v}, must be an integer")
        i = int(v)
        if 0 <= i < size:
            return i
        if not self.keep:
            raise FrameError(f"{self.where(source)}: unseen value {v} (handle_invalid is error)")
        return size


def _one_hot_table(size: int, width: int) -> np.ndarray:
    """Row i is the output for category i; row `size` is the output for an invalid value (kept)."""
    return np.eye(size + 1, dtype=np.float64)[:, :width].copy()


def load_one_hot_encoder(ctx: NodeContext) -> Op:
    """Pre-Spark-2.3 form (`size`, `drop_last`) or the multi-column form (`category_sizes`)."""
    drop_last = ctx.attrs.boolean("drop_last") if ctx.attrs.has("drop_last") else True
    if ctx.attrs.has("size"):
        sizes = [ctx.attrs.long("size")]
        # bundles from before handle_invalid existed meant keep when dropping the last category
        default = "keep" if drop_last else "error"
        handle = _handle_invalid(ctx, ("error", "keep"), default)
        sources = [dict(ctx.inputs).get("input") or ctx.input("input0")]
        targets = [ctx.optional_output("output") or ctx.output("output0")]
    else:
        sizes = ctx.attrs.long_list("category_sizes")
        handle = _handle_invalid(ctx, ("error", "keep"))
        sources = ctx.numbered_inputs()
        targets = [ctx.output(f"output{i}") for i in range(len(sources))]
        if len(sizes) != len(sources):
            raise BundleError(f"{ctx.where}: {len(sizes)} category sizes for {len(sources)} inputs")
    if any(s < 0 for s in sizes):
        raise BundleError(f"{ctx.where}: category sizes must not be negative, got {sizes}")
    keep = handle == "keep"
    # MLeap's configured width: keep adds a slot for invalid values, drop_last removes one
    extra = (1 if keep else 0) - (1 if drop_last else 0)
    op = OneHotEncoder(ctx.op, ctx.name, ctx.path, ctx.inputs, ctx.outputs)
    op.columns = [(s, n, _one_hot_table(n, n + extra)) for s, n in zip(sources, sizes, strict=True)]
    op.keep = keep
    op.input_fields = [Field(s, DataType.scalar("double", nullable=False)) for s in sources]
    op.output_fields = [Field(t, double_vector(n + extra)) for t, n in zip(targets, sizes, strict=True)]
    return op


class VectorAssembler(Op):
    """Scalars and vectors concatenated into one vector."""

    parts: list[tuple[str, int | None]]  # (column, width or None for a scalar)
    scalar_names: list[str] | None  # the input columns when every one is a scalar

    def transform(self, frame: LeapFrame) -> LeapFrame:
        """Append the assembled vector."""
        field = self.output_fields[0]
        if self.scalar_names is not None:
            # the common case (named numeric features): one copy, no per-column checks; anything
            # unusual (a missing, string or tensor column) takes the checked path below for its error
            n, n_inputs = frame.n_rows, len(self.scalar_names)
            try:
                columns = [frame.column(name) for name in self.scalar_names]
                # one row: its values joined end to end, a third of the cost of stacking and transposing
                stacked = np.concatenate(columns)[None, :] if n == 1 else np.array(columns).T
            except (FrameError, ValueError, TypeError):  # TypeError: numbers and fixed-width strings
                stacked = None
            if stacked is not None and stacked.shape == (n, n_inputs) and stacked.dtype == np.float64:
                vectors = np.ascontiguousarray(stacked)
                return frame.with_columns(((field, vectors),), sparse={field.name: compressed_rows(vectors)})
        blocks = []
        for name, width in self.parts:
            if width is None:
                blocks.append(self.doubles(frame, name)[:, None])
            else:
                blocks.append(self.vectors(frame, name, width))
        vectors = np.concatenate(blocks, axis=1)
        return frame.with_columns(((field, vectors),), sparse={field.name: compressed_rows(vectors)})


def load_vector_assembler(ctx: NodeContext) -> Op:
    """Inputs input0..inputN with shapes from `input_shapes`."""
    sources = ctx.numbered_inputs()
    shapes = ctx.attrs.data_shapes("input_shapes")
    if len(shapes) != len(sources):
        raise BundleError(
            f"{ctx.where}: attribute 'input_shapes' has {len(shapes)} shapes for {len(sources)} inputs"
        )
    parts: list[tuple[str, int | None]] = []
    fields = []
    for name, shape in zip(sources, shapes, strict=True):
        if shape.base == "scalar":
            parts.append((name, None))
            fields.append(Field(name, DataType.scalar("double", shape.nullable)))
        elif shape.base == "tensor" and shape.dimensions is not None and len(shape.dimensions) == 1:
            parts.append((name, shape.dimensions[0]))
            fields.append(Field(name, double_vector(shape.dimensions[0], shape.nullable)))
        else:
            raise BundleError(f"{ctx.where}: input {name!r} has unsupported shape {shape}")
    width = sum(1 if w is None else w for _, w in parts)
    op = VectorAssembler(ctx.op, ctx.name, ctx.path, ctx.inputs, ctx.outputs)
    op.parts = parts
    op.scalar_names = [name for name, _ in parts] if all(w is None for _, w in parts) else None
    op.input_fields = fields
    op.output_fields = [Field(ctx.output("output"), double_vector(width))]
    return op


FACTORIES = {
    "string_indexer": load_string_indexer,
    "string_map": load_string_map,
    "one_hot_encoder": load_one_hot_encoder,
    "vector_assembler": load_vector_assembler,
}
