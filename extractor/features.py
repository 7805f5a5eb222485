"""A transaction's features from a spec: checked input, derived values, then velocity from a store."""

from __future__ import annotations

import ipaddress
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from extractor.spec import (
    Attribute,
    BaseAmount,
    Flag,
    LoadedSpec,
    LocalHour,
    LocalWeekday,
    LogAmount,
    duration_ms,
)
from extractor.velocity import VelocityEvent, VelocityPlan, VelocityStore
from protos.rtscore.v1 import extractor_pb2
from rtscore.errors import InvalidArgument

_EARLIEST_S = 946_684_800  # 2000-01-01T00:00:00Z: older event times are a client's clock gone wrong
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MCC = re.compile(r"^[0-9]{4}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_CHANNELS = {
    number: name.removeprefix("CHANNEL_")
    for name, number in extractor_pb2.Channel.items()
    if number != extractor_pb2.CHANNEL_UNSPECIFIED
}
_TEXT = ("id", "card_token", "email", "device_id", "ip", "merchant_id")


class TransactionInvalid(InvalidArgument):
    """A transaction the extractor refuses; the message starts with the field's path."""


@dataclass(frozen=True)
class _Context:
    tx: extractor_pb2.Transaction
    amount_base: float
    local: datetime


Compute = Callable[[_Context], float]


@dataclass(frozen=True)
class Prepared:
    """A checked transaction: its derived values and what the velocity store needs."""

    derived: list[float]
    event: VelocityEvent


class FeatureExtractor:
    """Features of one spec, in `names` order: derived values, then velocity values."""

    def __init__(self, loaded: LoadedSpec, clock: Callable[[], float] = time.time) -> None:
        spec = loaded.spec
        self.loaded = loaded
        self.spec = spec
        self.plan = VelocityPlan(spec)
        self.names: list[str] = spec.feature_names()
        self._clock = clock
        self._limits = spec.limits
        self._max_future_s = duration_ms(spec.limits.max_future) / 1e3
        self._scale = {
            code: rate / 10 ** spec.exponents.get(code, 2) for code, rate in spec.rates.items()
        }  # base units per minor unit
        self._default_zone = ZoneInfo(spec.default_timezone)
        self._zones = {country: ZoneInfo(zone) for country, zone in spec.timezones.items()}
        self._derived: list[Compute] = [_compile(f) for f in spec.features]
        self._attributes = [f.key for f in spec.features if isinstance(f, Attribute)]
        self._velocity_fields = self.plan.fields()

    def prepare(self, tx: extractor_pb2.Transaction) -> Prepared:
        """Check `tx` (TransactionInvalid naming the field) and compute everything but velocity."""
        seconds = self._check(tx)
        amount_base = tx.amount_minor * self._scale[tx.currency]
        if amount_base > self._limits.max_amount_base:
            raise TransactionInvalid(
                f"transaction.amount_minor: {tx.amount_minor} {tx.currency} is {amount_base:.2f} "
                f"{self.spec.base_currency}, above the limit of {self._limits.max_amount_base:.2f}"
            )
        local = datetime.fromtimestamp(seconds, self._zones.get(tx.country, self._default_zone))
        context = _Context(tx, amount_base, local)
        derived = [compute(context) for compute in self._derived]
        values = [_field(tx, name) if name else "" for name in self._velocity_fields]
        time_ms = tx.event_time.seconds * 1000 + tx.event_time.nanos // 1_000_000
        return Prepared(derived, self.plan.event(time_ms, tx.id, amount_base, values))

    async def extract(self, tx: extractor_pb2.Transaction, store: VelocityStore) -> list[float]:
        """All features of `tx`; the store records it (its own values leave it out)."""
        prepared = self.prepare(tx)
        return prepared.derived + await store.observe(prepared.event)

    def _check(self, tx: extractor_pb2.Transaction) -> float:
        limit = self._limits.max_field_bytes
        for name in _TEXT:
            value: str = getattr(tx, name)
            if len(value) > limit:
                raise TransactionInvalid(f"transaction.{name}: longer than {limit} characters")
            if _CONTROL.search(value):
                raise TransactionInvalid(f"transaction.{name}: holds control characters")
        if not tx.id:
            raise TransactionInvalid("transaction.id: missing")
        if not tx.card_token:
            raise TransactionInvalid("transaction.card_token: missing")
        if not tx.HasField("event_time"):
            raise TransactionInvalid("transaction.event_time: missing")
        seconds = tx.event_time.seconds + tx.event_time.nanos / 1e9
        if not 0 <= tx.event_time.nanos < 1_000_000_000 or seconds < _EARLIEST_S:
            raise TransactionInvalid(f"transaction.event_time: {seconds:.3f} is before 2000 or malformed")
        if seconds > self._clock() + self._max_future_s:
            raise TransactionInvalid(f"transaction.event_time: more than {self._limits.max_future} ahead")
        if tx.amount_minor < 0:
            raise TransactionInvalid(f"transaction.amount_minor: {tx.amount_minor} is negative")
        if tx.currency not in self._scale:
            shown = tx.currency[:8] or "(empty)"
            raise TransactionInvalid(f"transaction.currency: {shown!r} is not in the spec's rate table")
        if tx.ip:
            try:
                ipaddress.ip_address(tx.ip)
            except ValueError:
                raise TransactionInvalid("transaction.ip: not an IPv4 or IPv6 address") from None
        if tx.merchant_category and not _MCC.match(tx.merchant_category):
            raise TransactionInvalid("transaction.merchant_category: not four digits")
        if tx.country and not _COUNTRY.match(tx.country):
            raise TransactionInvalid("transaction.country: not an ISO 3166 alpha-2 code")
        if tx.channel not in _CHANNELS and tx.channel != extractor_pb2.CHANNEL_UNSPECIFIED:
            raise TransactionInvalid(f"transaction.channel: unknown value {tx.channel}")
        self._check_attributes(tx)
        return seconds

    def _check_attributes(self, tx: extractor_pb2.Transaction) -> None:
        attributes = tx.attributes
        if not attributes:
            return
        limit = self._limits.max_attribute_bytes
        if len(attributes) > self._limits.max_attributes:
            raise TransactionInvalid(
                f"transaction.attributes: {len(attributes)} entries, above the limit of "
                f"{self._limits.max_attributes}"
            )
        for key, value in attributes.items():
            if len(key) > limit or len(value) > limit:
                raise TransactionInvalid(
                    f"transaction.attributes[{key[:64]!r}]: longer than {limit} characters"
                )
        for key in self._attributes:
            if key in attributes:
                try:
                    number = float(attributes[key])
                except ValueError:
                    number = math.nan
                if not math.isfinite(number):
                    raise TransactionInvalid(f"transaction.attributes[{key!r}]: not a finite number")


def _field(tx: extractor_pb2.Transaction, name: str) -> str:
    if name == "channel":
        return _CHANNELS.get(tx.channel, "UNSPECIFIED")
    value: str = getattr(tx, name)
    return value


def _compile(feature: object) -> Compute:
    """One derived feature as a function of the checked transaction."""
    if isinstance(feature, LogAmount):
        return lambda c: math.log1p(c.amount_base)
    if isinstance(feature, BaseAmount):
        return lambda c: c.amount_base
    if isinstance(feature, LocalHour):
        return lambda c: float(c.local.hour)
    if isinstance(feature, LocalWeekday):
        return lambda c: float(c.local.weekday())
    if isinstance(feature, Flag):
        accepted = frozenset(feature.any_of)
        field = feature.field
        return lambda c: 1.0 if _field(c.tx, field) in accepted else 0.0
    if isinstance(feature, Attribute):
        key, default = feature.key, feature.default
        return lambda c: float(c.tx.attributes[key]) if key in c.tx.attributes else default
    raise TypeError(f"no computation for feature {feature!r}")
