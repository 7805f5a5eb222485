"""Synthetic payment traffic with labelled fraud, deterministic by seed (`rtscore extractor generate`).

Cards, merchants and amounts are skewed the way card traffic is: a few cards and merchants carry most
transactions (Zipf-like weights), amounts are log-normal around each card's own scale, and activity
follows the day in the card's country. Three fraud patterns are injected and labelled 1: card-testing
bursts (many tiny card-not-present charges within minutes from one device), account takeover (a new
device and IP, mostly abroad, spending fast), and high value after dormancy (a card silent for over a
week, then a large charge). As in real traffic, no one signal gives fraud away: some honest cards are
new, shop at risky merchants or abroad, tap many small charges in minutes (`legit_burst`) or make a
large first purchase (`legit_first_large`), and some fraud keeps to ordinary merchants and countries,
so a model is ranked by how it weighs them together (held-out AUC below 1). Lines come in arrival
order: most in event-time order, some delayed by up to `max_delay_s`, as a real feed delivers them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from extractor.spec import FeatureSpec

# Bumped whenever the same options start to give other lines, so caches of generated data are rebuilt.
GENERATOR_VERSION = 2
START_S = 1_780_272_000  # 2026-06-01T00:00:00Z
_COUNTRIES = ["US", "US", "US", "GB", "DE", "FR", "CA", "MX", "BR", "IN", "JP", "AU"]
_CURRENCY = {"US": "USD", "GB": "GBP", "DE": "EUR", "FR": "EUR", "CA": "CAD", "MX": "MXN",
             "BR": "BRL", "IN": "INR", "JP": "JPY", "AU": "AUD", "NG": "USD", "RU": "EUR"}  # fmt: skip
_CATEGORIES = ["5411", "5812", "5541", "5999", "5311", "4121", "5732", "5691", "7011", "5967", "7995"]
_RISKY_CATEGORIES = ["5967", "7995", "4829", "6051", "5816"]
_RISKY_COUNTRIES = ["NG", "RU"]
_CHANNELS = ["ECOMMERCE", "POS", "POS", "POS", "IN_APP", "ATM", "MOTO"]
# Share of honest traffic in look-alike episodes of each kind.
_LEGIT_BURST_SHARE = 0.02
_LEGIT_FIRST_LARGE_SHARE = 0.005


@dataclass(frozen=True)
class GenerateOptions:
    """How much traffic, how much fraud, how late arrivals may be."""

    count: int
    seed: int = 0
    fraud_rate: float = 0.03
    days: float = 14.0
    max_delay_s: float = 120.0
    delayed_share: float = 0.05


class _World:
    """Cards (with email, devices, home country, spend scale) and merchants, drawn from the seed."""

    def __init__(self, rng: np.random.Generator, n_cards: int, n_merchants: int) -> None:
        self.rng = rng
        self.card_weight = _zipf(rng, n_cards, 0.5)
        self.card_country = rng.choice(_COUNTRIES, n_cards)
        self.card_scale = np.exp(rng.normal(3.3, 0.8, n_cards))  # typical spend, USD
        # One card in twenty is a new account, as young as the accounts fraudsters open.
        young = rng.random(n_cards) < 0.05
        self.card_age = np.where(young, rng.integers(0, 30, n_cards), rng.integers(30, 3650, n_cards))
        self.card_devices = rng.integers(1, 3, n_cards)
        self.merchant_weight = _zipf(rng, n_merchants, 1.2)
        # Honest merchants in every risky category (two are among _CATEGORIES too) and risky country exist.
        categories = _CATEGORIES + _RISKY_CATEGORIES
        self.merchant_category = rng.choice(
            categories, n_merchants, p=_shares(_CATEGORIES, _RISKY_CATEGORIES, 0.08)
        )
        countries = _COUNTRIES + _RISKY_COUNTRIES
        self.merchant_country = rng.choice(
            countries, n_merchants, p=_shares(_COUNTRIES, _RISKY_COUNTRIES, 0.03)
        )

    def card(self, i: int, tx: dict[str, Any], device: int | None = None) -> None:
        tx["card_token"] = f"card-{i:06d}"
        tx["email"] = f"user{i:06d}@example.com"
        tx["device_id"] = (
            f"dev-{i:06d}-{device if device is not None else self.rng.integers(self.card_devices[i])}"
        )
        tx["ip"] = f"10.{(i >> 8) & 255}.{i & 255}.{1 + i % 200}"
        tx["attributes"] = {"account_age_days": str(int(self.card_age[i]))}

    def merchant(self, j: int, tx: dict[str, Any]) -> None:
        tx["merchant_id"] = f"m-{j:05d}"
        tx["merchant_category"] = str(self.merchant_category[j])
        tx["country"] = str(self.merchant_country[j])


def _shares(usual: list[str], risky: list[str], risky_share: float) -> np.ndarray:
    """Choice weights: `risky_share` spread evenly over `risky`, the rest over `usual`."""
    return np.array([(1 - risky_share) / len(usual)] * len(usual) + [risky_share / len(risky)] * len(risky))


def _zipf(rng: np.random.Generator, n: int, a: float) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1) ** a
    rng.shuffle(weights)
    return np.asarray(weights / weights.sum())


def _amount_minor(usd: float, currency: str, spec: FeatureSpec) -> int:
    exponent = spec.exponents.get(currency, 2)
    return max(1, round(usd / spec.rates[currency] * 10**exponent))


def generate(options: GenerateOptions, spec: FeatureSpec) -> list[dict[str, Any]]:
    """The lines (transaction, label, pattern) in arrival order."""
    rng = np.random.default_rng(options.seed)
    n = options.count
    world = _World(rng, max(50, n // 8), max(20, n // 100))
    span_s = options.days * 86_400
    n_fraud_target = int(n * options.fraud_rate)
    events: list[tuple[float, dict[str, Any], int, str]] = []
    # Legitimate traffic: more by day than by night.
    n_legit = n - n_fraud_target
    look_alikes = _legit_look_alikes(rng, world, spec, span_s, n)
    n_legit -= len(look_alikes)
    times = np.sort(START_S + span_s * rng.random(n_legit))
    keep = rng.random(n_legit) < 0.55 + 0.45 * np.sin(np.pi * ((times % 86_400) / 86_400))
    times = np.concatenate([times[keep], START_S + span_s * rng.random(n_legit - int(keep.sum()))])
    cards = rng.choice(len(world.card_weight), n_legit, p=world.card_weight)
    merchants = rng.choice(len(world.merchant_weight), n_legit, p=world.merchant_weight)
    for t, c, m in zip(times, cards, merchants, strict=True):
        tx: dict[str, Any] = {"channel": str(rng.choice(_CHANNELS))}
        world.card(int(c), tx)
        world.merchant(int(m), tx)
        usd = float(world.card_scale[c] * rng.lognormal(0.0, 0.6))
        events.append((float(t), _finish(tx, usd, spec), 0, "legit"))
    events += look_alikes
    while len(events) < n:
        events += _fraud(rng, world, spec, span_s)
    events = events[:n]
    events.sort(key=lambda e: e[0])
    return _arrival_order(rng, events, options)


def _legit_look_alikes(
    rng: np.random.Generator, world: _World, spec: FeatureSpec, span_s: float, n: int
) -> list[tuple[float, dict[str, Any], int, str]]:
    """Honest episodes that resemble fraud: bursts of small charges (transit taps, top-ups, in-app
    purchases) and a large first purchase on a card the feed has not seen (a new card, a holiday)."""
    out: list[tuple[float, dict[str, Any], int, str]] = []
    while len(out) < n * _LEGIT_BURST_SHARE:
        card = int(rng.choice(len(world.card_weight), p=world.card_weight))
        merchants = rng.integers(len(world.merchant_weight), size=int(rng.choice([1, 3])))  # a stand, a mall
        start = START_S + float(rng.random()) * span_s
        channel = str(rng.choice(["IN_APP", "ECOMMERCE", "POS"]))
        device = int(rng.integers(world.card_devices[card]))
        for k in range(int(rng.integers(3, 12))):
            tx: dict[str, Any] = {"channel": channel}
            world.card(card, tx, device=device)
            world.merchant(int(rng.choice(merchants)), tx)
            event = (start + 30.0 * k * float(rng.random()), _finish(tx, float(rng.uniform(0.5, 6.0)), spec))
            out.append((*event, 0, "legit_burst"))
    for _ in range(int(n * _LEGIT_FIRST_LARGE_SHARE)):
        card = int(rng.integers(len(world.card_weight)))
        tx = {"channel": str(rng.choice(["ECOMMERCE", "POS"]))}
        world.card(card, tx, device=0)
        world.merchant(int(rng.integers(len(world.merchant_weight))), tx)
        tx["card_token"] = f"new-{rng.integers(1_000_000_000):09d}"
        usd = float(world.card_scale[card] * rng.uniform(8, 30))
        out.append((START_S + float(rng.random()) * span_s, _finish(tx, usd, spec), 0, "legit_first_large"))
    return out


def _fraud(
    rng: np.random.Generator, world: _World, spec: FeatureSpec, span_s: float
) -> list[tuple[float, dict[str, Any], int, str]]:
    """One fraud episode of a random pattern."""
    card = int(rng.integers(len(world.card_weight)))
    start = START_S + float(rng.random()) * span_s
    pattern = str(rng.choice(["card_testing", "account_takeover", "dormant_high_value"], p=[0.4, 0.35, 0.25]))
    out = []
    if pattern == "card_testing":
        device, ip = f"fraud-dev-{rng.integers(1_000_000)}", f"198.51.100.{rng.integers(1, 255)}"
        fresh_account = rng.random() < 0.5  # else the stolen card's own, old account
        for k in range(int(rng.integers(5, 16))):
            tx: dict[str, Any] = {"channel": "ECOMMERCE"}
            world.card(card, tx)
            tx.update(device_id=device, ip=ip)
            if fresh_account:
                tx["attributes"] = {"account_age_days": str(int(rng.integers(0, 5)))}
            world.merchant(int(rng.integers(len(world.merchant_weight))), tx)
            if rng.random() < 0.6:  # else the merchant's own category: testers use any checkout
                tx["merchant_category"] = str(rng.choice(_RISKY_CATEGORIES))
            out.append(
                (start + 20.0 * k * float(rng.random()), _finish(tx, float(rng.uniform(0.5, 2.0)), spec))
            )
    elif pattern == "account_takeover":
        device, ip = f"ato-dev-{rng.integers(1_000_000)}", f"203.0.113.{rng.integers(1, 255)}"
        abroad = rng.random() < 0.6  # else in the merchant's country, like honest traffic: new device, IP
        for k in range(int(rng.integers(2, 6))):
            tx = {"channel": str(rng.choice(["ECOMMERCE", "IN_APP"]))}
            world.card(card, tx)
            tx.update(device_id=device, ip=ip)
            world.merchant(int(rng.integers(len(world.merchant_weight))), tx)
            if abroad:
                tx["country"] = str(rng.choice(_RISKY_COUNTRIES))
            usd = float(world.card_scale[card] * rng.uniform(1.5, 8))
            out.append((start + 300.0 * k * float(rng.random()), _finish(tx, usd, spec)))
    else:
        tx = {"channel": "ECOMMERCE"}
        world.card(card, tx, device=0)
        world.merchant(int(rng.integers(len(world.merchant_weight))), tx)
        # Dormant cards are fresh tokens: nothing else in the feed uses them for over a week.
        tx["card_token"] = f"dormant-{rng.integers(1_000_000_000):09d}"
        out.append((start, _finish(tx, float(world.card_scale[card] * rng.uniform(10, 40)), spec)))
    return [(t, tx, 1, pattern) for t, tx in out]


def _finish(tx: dict[str, Any], usd: float, spec: FeatureSpec) -> dict[str, Any]:
    currency = _CURRENCY[tx["country"]]
    tx["currency"] = currency
    tx["amount_minor"] = _amount_minor(usd, currency, spec)
    tx["channel"] = f"CHANNEL_{tx['channel']}"
    return tx


def _arrival_order(
    rng: np.random.Generator, events: list[tuple[float, dict[str, Any], int, str]], options: GenerateOptions
) -> list[dict[str, Any]]:
    delays = np.where(
        rng.random(len(events)) < options.delayed_share, rng.random(len(events)) * options.max_delay_s, 0.0
    )
    arrivals = np.array([e[0] for e in events]) + delays
    lines = []
    for rank, i in enumerate(np.argsort(arrivals, kind="stable")):
        t, tx, label, pattern = events[int(i)]
        seconds = int(t)
        stamp = np.datetime_as_string(np.datetime64(seconds, "s")) + f".{int((t - seconds) * 1000):03d}Z"
        transaction = {"id": f"tx-{options.seed}-{rank:08d}", "event_time": stamp, **tx}
        lines.append({"transaction": transaction, "label": label, "pattern": pattern})
    return lines


def write_jsonl(lines: list[dict[str, Any]], out: Path) -> None:
    """One JSON object per line."""
    with Path(out).open("w", encoding="utf-8") as handle:
        for line in lines:
            handle.write(json.dumps(line, separators=(",", ":")) + "\n")


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """The lines of a generated (or hand-written) transactions file."""
    with Path(path).open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)
