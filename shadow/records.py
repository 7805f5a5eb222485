"""ShadowRecords off Kafka: parsed one by one (a bad one is poison), scored as frames of many rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from google.protobuf.message import DecodeError

from protos.rtscore.v1 import extractor_pb2, frame_pb2
from scorer.frame import DataType, Field, FrameError, LeapFrame
from scorer.service.frames import to_leap_frame
from shadow.errors import PoisonRecord

_DOUBLE = DataType.scalar("double")
# A frame layout: the dense names, then each column's name and wire type.
LayoutKey = tuple[tuple[str, ...], tuple[tuple[str, int], ...]]


@dataclass(slots=True)
class Delivery:
    """Where a Kafka message came from: enough to store its offset or dead-letter it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int


@dataclass(slots=True)
class ParsedRecord:
    """One ShadowRecord, checked: what the rows need and the features in their wire form."""

    delivery: Delivery
    transaction_id: str
    event_time: datetime | None
    champion_model: str
    champion_version: str
    champion_score: float
    champion_latency_ms: float
    layout: LayoutKey
    features: frame_pb2.Frame
    transaction: extractor_pb2.Transaction
    sample_key: str
    spec_sha256: str


def parse(delivery: Delivery) -> ParsedRecord:
    """A checked record, or PoisonRecord saying why it can never be scored."""
    if delivery.value is None:
        raise PoisonRecord("the message has no value (a tombstone?)", kind="empty")
    record = extractor_pb2.ShadowRecord()
    try:
        record.ParseFromString(delivery.value)
    except DecodeError as err:
        raise PoisonRecord(f"the value is not a rtscore.v1.ShadowRecord: {err}", kind="parse") from err
    txn = record.transaction
    if not txn.id:
        raise PoisonRecord("the record's transaction has no id", kind="invalid")
    features = record.features
    if features.rows != 1:
        raise PoisonRecord(f"features must be one row, got {features.rows}", kind="invalid")
    dense = features.dense
    if len(dense.values) != 8 * len(dense.names):
        raise PoisonRecord(
            f"dense features carry {len(dense.values)} bytes for {len(dense.names)} names", kind="invalid"
        )
    if not dense.names and not features.columns:
        raise PoisonRecord("the record carries no features", kind="invalid")
    if features.columns:
        try:
            to_leap_frame(_columns_only(features), {})
        except FrameError as err:
            raise PoisonRecord(f"features do not decode: {err}", kind="invalid") from err
    layout = (tuple(dense.names), tuple((c.name, int(c.type)) for c in features.columns))
    event = txn.event_time.ToDatetime(tzinfo=UTC) if txn.HasField("event_time") else None
    decision = record.decision
    return ParsedRecord(
        delivery,
        txn.id,
        event,
        decision.model,
        decision.version,
        decision.score,
        decision.timings.score_ms,
        layout,
        features,
        txn,
        record.sample_key,
        record.spec_sha256,
    )


def batch_frame(records: Sequence[ParsedRecord]) -> LeapFrame:
    """The features of records sharing one layout as a single frame of len(records) rows."""
    dense_names, column_kinds = records[0].layout
    fields: list[Field] = []
    arrays: list[np.ndarray] = []
    n = len(records)
    if dense_names:
        block = b"".join(r.features.dense.values for r in records)
        matrix = np.frombuffer(block, dtype="<f8").reshape(n, len(dense_names))
        for j, name in enumerate(dense_names):
            fields.append(Field(name, _DOUBLE))
            arrays.append(np.ascontiguousarray(matrix[:, j]))
    if column_kinds:
        # the general form: each record's columns decoded by the scorer's own wire decoder, then joined
        parts = [to_leap_frame(_columns_only(r.features), {}) for r in records]
        first = parts[0]
        for name in first.names:
            fields.append(first.field(name))
            arrays.append(np.concatenate([p.column(name) for p in parts]))
    return LeapFrame(fields, arrays, n)


def _columns_only(features: frame_pb2.Frame) -> frame_pb2.Frame:
    return frame_pb2.Frame(rows=features.rows, columns=features.columns)
