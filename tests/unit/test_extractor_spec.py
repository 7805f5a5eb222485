"""Feature specs, the schema check, transaction checks, the generator and the shadow sample."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score

from extractor.check import schema_problems
from extractor.features import FeatureExtractor, TransactionInvalid
from extractor.generate import GenerateOptions, generate
from extractor.shadow import ShadowSample
from extractor.spec import DEFAULT_SPEC, SpecError, load_spec, parse_spec
from extractor.train import feature_matrix
from protos.rtscore.v1 import extractor_pb2, frame_pb2
from tests.paths import ROOT

BASE = """
name = "t"
base_currency = "USD"
[rates]
USD = 1.0
[[features]]
kind = "log_amount"
name = "amount_log"
"""


def test_default_spec_names_every_feature_once() -> None:
    names = load_spec().spec.feature_names()
    assert len(names) == len(set(names)) == 32
    assert names[:2] == ["amount_log", "amount_base"]
    assert "card_distinct_7d" in names


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ('[[features]]\nkind = "sqrt_amount"\nname = "x"\n', "features.1"),
        ('[[velocity]]\nentity = "card_token"\nprefix = "card"\nwindows = ["10x"]\n', "velocity.0.windows"),
        ('[[features]]\nkind = "log_amount"\nname = "amount_log"\n', "defined twice"),
        ('[timezones]\nUS = "Mars/Olympus"\n', "timezones"),
        ('[[features]]\nkind = "flag"\nname = "f"\nfield = "pin"\nany_of = ["1"]\n', "features.1.flag.field"),
    ],
)
def test_spec_errors_name_the_place(extra: str, named: str) -> None:
    with pytest.raises(SpecError, match=r"spec\.toml") as caught:
        parse_spec(BASE + extra, "spec.toml")
    assert named in str(caught.value)


def test_base_currency_must_have_a_rate() -> None:
    with pytest.raises(SpecError, match="base_currency EUR is missing from rates"):
        parse_spec(BASE.replace('base_currency = "USD"', 'base_currency = "EUR"'))


def test_schema_check_names_missing_mistyped_and_unused_columns() -> None:
    double, tensor = frame_pb2.COLUMN_TYPE_DOUBLE, frame_pb2.COLUMN_TYPE_DOUBLE_TENSOR
    inputs = [
        frame_pb2.FieldSpec(name="a", type=double),
        frame_pb2.FieldSpec(name="b", type=tensor, shape=[3]),
        frame_pb2.FieldSpec(name="c", type=double),
    ]
    problems = schema_problems(["a", "b", "d"], inputs)
    assert problems == [
        "mistyped: 'b' is double_tensor of shape [3] in the model; the spec produces double",
        "missing: the model reads 'c', which the spec does not produce",
        "unused: the spec produces 'd', which the model does not read",
    ]
    assert schema_problems(["a", "c"], [inputs[0], inputs[2]]) == []


def _tx(**fields: object) -> extractor_pb2.Transaction:
    tx = extractor_pb2.Transaction(
        id="t1", amount_minor=1250, currency="USD", card_token="c", merchant_category="5411", country="US"
    )
    tx.event_time.CopyFrom(Timestamp(seconds=1_780_272_000))
    for name, value in fields.items():
        if name == "attributes":
            tx.attributes.update(value)  # type: ignore[call-overload]
        else:
            setattr(tx, name, value)
    return tx


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"amount_minor": -1}, "transaction.amount_minor"),
        ({"amount_minor": 10**14}, "transaction.amount_minor"),
        ({"currency": "XXX"}, "transaction.currency"),
        ({"card_token": ""}, "transaction.card_token"),
        ({"ip": "999.1.1.1"}, "transaction.ip"),
        ({"country": "usa"}, "transaction.country"),
        ({"channel": 99}, "transaction.channel"),
        ({"attributes": {f"k{i}": "1" for i in range(40)}}, "transaction.attributes"),
        ({"attributes": {"account_age_days": "old"}}, "transaction.attributes['account_age_days']"),
        ({"id": "a\x1fb"}, "transaction.id"),
    ],
)
def test_bad_transactions_are_refused_naming_the_field(fields: dict[str, object], path: str) -> None:
    extractor = FeatureExtractor(load_spec())
    with pytest.raises(TransactionInvalid) as caught:
        extractor.prepare(_tx(**fields))
    assert str(caught.value).startswith(path + ":")


def test_derived_features_follow_the_merchant_time_zone_and_rates() -> None:
    extractor = FeatureExtractor(load_spec())
    prepared = extractor.prepare(_tx(currency="JPY", amount_minor=1000))
    derived = dict(zip(extractor.names, prepared.derived, strict=False))
    assert derived["amount_base"] == pytest.approx(6.7)  # JPY has no minor unit
    assert derived["local_hour"] == 20.0  # 00:00 UTC on 2026-06-01 is 20:00 in New York (EDT)
    assert derived["local_weekday"] == 6.0  # …on Sunday


def test_generator_is_deterministic_by_seed_and_labels_each_pattern() -> None:
    spec = load_spec().spec
    first = generate(GenerateOptions(count=3_000, seed=11), spec)
    again = generate(GenerateOptions(count=3_000, seed=11), spec)
    other = generate(GenerateOptions(count=3_000, seed=12), spec)
    assert first == again
    assert first != other
    patterns = {line["pattern"] for line in first if line["label"] == 1}
    assert patterns == {"card_testing", "account_takeover", "dormant_high_value"}
    share = sum(line["label"] for line in first) / len(first)
    assert 0.02 < share < 0.04
    honest = {line["pattern"] for line in first if line["label"] == 0}
    assert honest == {"legit", "legit_burst", "legit_first_large"}


def test_generated_fraud_is_learnable_but_not_given_away() -> None:
    loaded = load_spec()
    x, y = feature_matrix(generate(GenerateOptions(count=12_000, seed=6), loaded.spec), loaded)
    forest = RandomForestClassifier(30, max_leaf_nodes=500, random_state=0, class_weight="balanced_subsample")
    forest.fit(x[:8_000], y[:8_000])
    held_out_auc = roc_auc_score(y[8_000:], forest.predict_proba(x[8_000:])[:, 1])
    assert 0.9 < held_out_auc < 0.99  # the patterns alone gave 0.9999


def test_shadow_sample_holds_its_fraction_and_is_the_same_in_every_process() -> None:
    sample = ShadowSample(1 / 3)
    ids = [f"tx-{i:08d}" for i in range(100_000)]
    taken = [i for i in ids if sample.takes(i)]
    assert abs(len(taken) / len(ids) - 1 / 3) <= 0.01 / 3
    digest = hashlib.sha256("".join(taken).encode()).hexdigest()
    script = (
        "import hashlib; from extractor.shadow import ShadowSample; s = ShadowSample(1 / 3); "
        "print(hashlib.sha256(''.join(i for i in (f'tx-{n:08d}' for n in range(100_000)) "
        "if s.takes(i)).encode()).hexdigest())"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    other = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
    assert other.stdout.strip() == digest, other.stderr


def test_shadow_sample_by_card_takes_a_card_s_whole_history() -> None:
    sample = ShadowSample(0.5, "card_token")
    txs = [_tx(id=f"t{i}", card_token=f"card-{i % 50}") for i in range(500)]
    by_card: dict[str, set[bool]] = {}
    for tx in txs:
        by_card.setdefault(tx.card_token, set()).add(sample.takes(sample.key_of(tx)))
    assert all(len(decisions) == 1 for decisions in by_card.values())
    assert {True, False} == {next(iter(d)) for d in by_card.values()}


def test_default_spec_file_is_shipped() -> None:
    assert DEFAULT_SPEC.is_file()
