"""One row of features as a scorer frame, built from a pre-encoded template (no per-column messages)."""

from __future__ import annotations

import struct
from collections.abc import Sequence

from protos.rtscore.v1 import frame_pb2, scorer_pb2
from rtscore.errors import Unavailable

_DOUBLE = struct.Struct("<d")


class RowEncoder:
    """Frames of one row for fixed column names: the encoded template with each value written in place."""

    def __init__(self, names: Sequence[str], dense: bool = False) -> None:
        self.names = list(names)
        self.dense = dense
        if dense:
            self._template = frame_pb2.Frame(
                rows=1, dense=frame_pb2.DenseDoubles(names=self.names, values=bytes(8 * len(self.names)))
            ).SerializeToString()
            # The values are the encoding's last bytes: one pack writes the whole row.
            self._row = struct.Struct(f"<{len(self.names)}d")
            self._start = len(self._template) - self._row.size
            return
        # Sentinels that cannot occur elsewhere in the encoding mark where each value's 8 bytes live.
        sentinels = [float.fromhex(f"0x1.{i + 1:013x}p+1000") for i in range(len(self.names))]
        columns = [
            frame_pb2.Column(name=n, type=frame_pb2.COLUMN_TYPE_DOUBLE, doubles=[s])
            for n, s in zip(self.names, sentinels, strict=True)
        ]
        self._template = frame_pb2.Frame(rows=1, columns=columns).SerializeToString()
        self._offsets = []
        for s in sentinels:
            packed = _DOUBLE.pack(s)
            at = self._template.find(packed)
            if at < 0 or self._template.find(packed, at + 1) >= 0:
                raise ValueError("a frame template value is not unique in its encoding")
            self._offsets.append(at)

    def encode(self, row: Sequence[float]) -> bytes:
        """The encoded Frame holding `row`."""
        buffer = bytearray(self._template)
        if self.dense:
            self._row.pack_into(buffer, self._start, *row)
            return bytes(buffer)
        pack = _DOUBLE.pack_into
        for at, value in zip(self._offsets, row, strict=True):
            pack(buffer, at, value)
        return bytes(buffer)

    def frame(self, row: Sequence[float]) -> frame_pb2.Frame:
        """The Frame holding `row`."""
        return frame_pb2.Frame.FromString(self.encode(row))


def fraud_probability(response: scorer_pb2.ScoreResponse, column: str = "probability") -> float:
    """The positive class's probability from a classifier's output frame (the last entry of its row)."""
    for col in response.frame.columns:
        if col.name == column:
            values = col.doubles
            if len(values) >= 1:
                return float(values[len(values) - 1])
    raise Unavailable(f"the scorer's answer has no {column!r} column with values")
