"""The feature spec: a TOML file, validated with pydantic, naming every feature the model sees."""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rtscore.errors import InvalidArgument

DEFAULT_SPEC = Path(__file__).resolve().parent / "specs" / "default.toml"
# Entity fields a velocity group may key on, and string fields a flag or a distinct count may read.
ENTITY_FIELDS = ("card_token", "email", "device_id", "ip", "merchant_id")
TEXT_FIELDS = (*ENTITY_FIELDS, "currency", "merchant_category", "country", "channel")
_DURATION = re.compile(r"^(\d+)(s|m|h|d)$")
_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_NAME = r"^[a-z][a-z0-9_]{0,62}$"


class SpecError(InvalidArgument):
    """A feature spec that cannot be read or does not validate; the message names the place."""


def duration_ms(text: str) -> int:
    """`"10m"` → 600000; units s, m, h, d."""
    match = _DURATION.match(text)
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"{text!r} is not a duration like 30s, 10m, 1h or 7d")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LogAmount(_Strict):
    """ln(1 + amount in the base currency's major units)."""

    kind: Literal["log_amount"]
    name: str = Field(pattern=_NAME)


class BaseAmount(_Strict):
    """The amount in the base currency's major units, converted with the spec's rate table."""

    kind: Literal["amount"]
    name: str = Field(pattern=_NAME)


class LocalHour(_Strict):
    """Hour of day (0-23) of the event time in the merchant country's time zone."""

    kind: Literal["hour"]
    name: str = Field(pattern=_NAME)


class LocalWeekday(_Strict):
    """Day of week (Monday 0 … Sunday 6) of the event time in the merchant country's time zone."""

    kind: Literal["weekday"]
    name: str = Field(pattern=_NAME)


class Flag(_Strict):
    """1.0 when the transaction's `field` is one of `any_of`, else 0.0 (channels without `CHANNEL_`)."""

    kind: Literal["flag"]
    name: str = Field(pattern=_NAME)
    field: Literal[TEXT_FIELDS]  # type: ignore[valid-type]
    any_of: list[str] = Field(min_length=1)


class Attribute(_Strict):
    """A numeric value from the transaction's attribute map, `default` when absent."""

    kind: Literal["attribute"]
    name: str = Field(pattern=_NAME)
    key: str = Field(min_length=1, max_length=64)
    default: float = 0.0


Derived = Annotated[
    LogAmount | BaseAmount | LocalHour | LocalWeekday | Flag | Attribute, Field(discriminator="kind")
]


class VelocityGroup(_Strict):
    """Count, sum of base amount and distinct count of `distinct` per `entity` over sliding windows."""

    entity: Literal[ENTITY_FIELDS]  # type: ignore[valid-type]
    prefix: str = Field(pattern=_NAME)
    windows: list[str] = Field(min_length=1, max_length=8)
    count: bool = True
    sum: bool = True
    distinct: Literal[TEXT_FIELDS] | None = None  # type: ignore[valid-type]

    @field_validator("windows")
    @classmethod
    def _durations(cls, windows: list[str]) -> list[str]:
        lengths = [duration_ms(w) for w in windows]
        if len(set(lengths)) != len(lengths):
            raise ValueError("windows must differ in length")
        return windows

    @property
    def windows_ms(self) -> list[int]:
        """Window lengths in milliseconds, in the spec's order."""
        return [duration_ms(w) for w in self.windows]

    def feature_names(self) -> list[str]:
        """`{prefix}_count_{w}`, `{prefix}_sum_{w}`, `{prefix}_distinct_{w}` per window, in that order."""
        names = []
        for window in self.windows:
            if self.count:
                names.append(f"{self.prefix}_count_{window}")
            if self.sum:
                names.append(f"{self.prefix}_sum_{window}")
            if self.distinct is not None:
                names.append(f"{self.prefix}_distinct_{window}")
        return names


class Limits(_Strict):
    """What a transaction may carry before it is refused as INVALID_ARGUMENT."""

    max_amount_base: float = Field(default=1_000_000.0, gt=0)
    max_attributes: int = Field(default=32, ge=0)
    max_attribute_bytes: int = Field(default=256, gt=0)
    max_field_bytes: int = Field(default=256, gt=0)
    # Velocity accepts events this far behind the newest of their entity; older ones are trimmed.
    lateness: str = "10m"
    # An event time further than this ahead of the extractor's clock is refused.
    max_future: str = "1h"


class FeatureSpec(_Strict):
    """A whole spec: base currency, rate table, time zones, derived features and velocity groups."""

    name: str = Field(min_length=1, max_length=64)
    base_currency: str = Field(pattern=r"^[A-Z]{3}$")
    # Units of the base currency per major unit of each currency; the base itself must be listed.
    rates: dict[str, float]
    # Minor-unit exponents that differ from 2 (ISO 4217: JPY 0, KWD 3, …).
    exponents: dict[str, int] = Field(default_factory=dict)
    timezones: dict[str, str] = Field(default_factory=dict)
    default_timezone: str = "UTC"
    features: list[Derived] = Field(default_factory=list)
    velocity: list[VelocityGroup] = Field(default_factory=list)
    limits: Limits = Field(default_factory=Limits)

    @field_validator("rates")
    @classmethod
    def _rates(cls, rates: dict[str, float]) -> dict[str, float]:
        for code, rate in rates.items():
            if not re.match(r"^[A-Z]{3}$", code) or not rate > 0:
                raise ValueError(f"rate {code} = {rate}: codes are ISO 4217 (3 capitals), rates positive")
        return rates

    @field_validator("timezones")
    @classmethod
    def _zones(cls, zones: dict[str, str]) -> dict[str, str]:
        for country, zone in zones.items():
            _zone(zone, f"timezones.{country}")
        return zones

    @model_validator(mode="after")
    def _consistent(self) -> FeatureSpec:
        if self.base_currency not in self.rates:
            raise ValueError(f"base_currency {self.base_currency} is missing from rates")
        _zone(self.default_timezone, "default_timezone")
        names = self.feature_names()
        duplicate = next((n for n in names if names.count(n) > 1), None)
        if duplicate is not None:
            raise ValueError(f"feature {duplicate!r} is defined twice")
        if not names:
            raise ValueError("the spec defines no features")
        return self

    def feature_names(self) -> list[str]:
        """Every column the spec produces, in order: derived features, then velocity groups."""
        names = [f.name for f in self.features]
        for group in self.velocity:
            names += group.feature_names()
        return names


def _zone(name: str, where: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ValueError(f"{where}: unknown time zone {name!r}") from err


class LoadedSpec:
    """A validated spec with the name and sha256 of the text it came from (shadow records carry both)."""

    def __init__(self, spec: FeatureSpec, text: str, source: str) -> None:
        self.spec = spec
        self.source = source
        self.sha256 = hashlib.sha256(text.encode()).hexdigest()


def load_spec(path: str | Path | None = None) -> LoadedSpec:
    """Read and validate a spec file (the project's default when `path` is None)."""
    where = Path(path) if path is not None else DEFAULT_SPEC
    try:
        text = where.read_text(encoding="utf-8")
    except OSError as err:
        raise SpecError(f"{where}: cannot read the feature spec ({err.strerror})") from None
    return parse_spec(text, str(where))


def parse_spec(text: str, source: str = "<spec>") -> LoadedSpec:
    """Validate spec text; every problem is a SpecError naming the file and the field."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"{source}: not valid TOML ({err})") from None
    try:
        spec = FeatureSpec.model_validate(raw)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in err.errors()
        )
        raise SpecError(f"{source}: {problems}") from None
    return LoadedSpec(spec, text, source)
