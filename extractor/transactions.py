"""Transactions as JSON (generated files, `rtscore evaluate`) to protobuf and back."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

from protos.rtscore.v1 import extractor_pb2
from rtscore.errors import InvalidArgument

_STRINGS = ("id", "currency", "card_token", "email", "device_id", "ip", "merchant_id", "merchant_category",
            "country")  # fmt: skip
_SIMPLE = frozenset((*_STRINGS, "event_time", "amount_minor", "channel", "attributes"))


def transaction_from_json(data: Any) -> extractor_pb2.Transaction:
    """A Transaction from its JSON object, or from a generated line's `transaction` member."""
    if isinstance(data, dict) and "transaction" in data:
        data = data["transaction"]
    if not isinstance(data, dict):
        raise InvalidArgument("a transaction is a JSON object")
    if data.keys() <= _SIMPLE and _plain(data):
        # The shape generated files use: built directly, ~20x faster than json_format.
        tx = extractor_pb2.Transaction(**{k: data[k] for k in _STRINGS if k in data})
        if "amount_minor" in data:
            tx.amount_minor = int(data["amount_minor"])
        if "channel" in data:
            tx.channel = extractor_pb2.Channel.Value(data["channel"])  # type: ignore[assignment]
        if "attributes" in data:
            tx.attributes.update(data["attributes"])
        if "event_time" in data:
            stamp = Timestamp()
            stamp.FromJsonString(data["event_time"])
            tx.event_time.CopyFrom(stamp)
        return tx
    try:
        return json_format.ParseDict(data, extractor_pb2.Transaction())
    except json_format.ParseError as err:
        raise InvalidArgument(f"not a transaction: {err}") from None


def _plain(data: dict[str, Any]) -> bool:
    try:
        return (
            all(isinstance(data.get(k, ""), str) for k in _STRINGS)
            and isinstance(data.get("amount_minor", 0), int | str)
            and data.get("channel", "CHANNEL_UNSPECIFIED") in extractor_pb2.Channel.keys()  # noqa: SIM118
            and all(isinstance(v, str) for v in data.get("attributes", {}).values())
            and isinstance(data.get("event_time", ""), str)
        )
    except (AttributeError, TypeError):
        return False


def transaction_to_json(tx: extractor_pb2.Transaction) -> dict[str, Any]:
    """The JSON object of a Transaction (field names as in the .proto)."""
    out: dict[str, Any] = json_format.MessageToDict(tx, preserving_proto_field_name=True)
    return out
