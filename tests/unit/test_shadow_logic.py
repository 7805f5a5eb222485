"""The shadow tier's pure parts: record parsing, batch frames, retry-or-dead-letter, evaluation figures."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import numpy as np
import pytest
from confluent_kafka import KafkaError, KafkaException
from sklearn.metrics import roc_auc_score

from protos.rtscore.v1 import extractor_pb2, frame_pb2
from rtscore.errors import FailedPrecondition, Unavailable
from shadow.cli import _print_evaluation
from shadow.deadletter import DeadLetter, headers
from shadow.errors import PoisonRecord, is_retryable
from shadow.evaluate import compare, psi, psi_band
from shadow.records import Delivery, batch_frame, parse

NAMES = ["a", "b", "c"]


def delivery(value: bytes | None, offset: int = 7) -> Delivery:
    return Delivery("records", 2, offset, b"k", value, 0)


def record(txn: str, values: list[float], *, columns: list[frame_pb2.Column] | None = None) -> bytes:
    features = frame_pb2.Frame(
        rows=1,
        dense=frame_pb2.DenseDoubles(names=NAMES, values=np.asarray(values, "<f8").tobytes()),
        columns=columns or [],
    )
    decision = extractor_pb2.Decision(transaction_id=txn, score=0.3, model="fraud", version="4")
    return extractor_pb2.ShadowRecord(
        transaction=extractor_pb2.Transaction(id=txn), features=features, decision=decision
    ).SerializeToString()


def test_records_join_into_one_frame_with_dense_and_column_features() -> None:
    country = [frame_pb2.Column(name="n", type=frame_pb2.COLUMN_TYPE_INT64, int64s=[5])]
    parsed = [parse(delivery(record(f"t{i}", [i, i + 0.5, -i], columns=country), i)) for i in range(3)]
    assert parsed[1].champion_version == "4"
    assert parsed[1].delivery.offset == 1
    frame = batch_frame(parsed)
    assert frame.n_rows == 3
    assert frame.names == [*NAMES, "n"]
    np.testing.assert_array_equal(frame.column("b"), [0.5, 1.5, 2.5])
    np.testing.assert_array_equal(frame.column("n"), [5, 5, 5])


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (None, "empty"),
        (b"\xff\xff\xff not protobuf", "parse"),
        (record("", [1, 2, 3]), "invalid"),
        (
            extractor_pb2.ShadowRecord(
                transaction=extractor_pb2.Transaction(id="x"),
                features=frame_pb2.Frame(
                    rows=1, dense=frame_pb2.DenseDoubles(names=NAMES, values=b"\0" * 16)
                ),
            ).SerializeToString(),
            "invalid",
        ),
        (
            record("y", [1, 2, 3], columns=[frame_pb2.Column(name="z", type=frame_pb2.COLUMN_TYPE_DOUBLE)]),
            "invalid",
        ),
    ],
)
def test_records_that_can_never_score_are_poison(value: bytes | None, kind: str) -> None:
    with pytest.raises(PoisonRecord) as caught:
        parse(delivery(value))
    assert caught.value.kind == kind


def test_dead_letters_carry_kafka_connect_headers() -> None:
    letter = DeadLetter(delivery(b"x", offset=41), PoisonRecord("bad bytes", kind="parse"), "parse")
    found = dict(headers(letter, "shadow-group"))
    assert found["__connect.errors.topic"] == b"records"
    assert found["__connect.errors.partition"] == b"2"
    assert found["__connect.errors.offset"] == b"41"
    assert found["__connect.errors.exception.message"] == b"bad bytes"
    assert found["__connect.errors.exception.class.name"] == b"shadow.errors.PoisonRecord"


@pytest.mark.parametrize(
    ("err", "retry"),
    [
        (ConnectionRefusedError(), True),
        (asyncpg.CannotConnectNowError("starting up"), True),
        (asyncpg.AdminShutdownError("terminating"), True),
        (asyncpg.InterfaceError("connection closed"), True),
        (Unavailable("registry away"), True),
        (KafkaException(KafkaError(KafkaError._TRANSPORT)), True),
        (KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT)), True),
        (PoisonRecord("no"), False),
        (FailedPrecondition("never"), False),
        (asyncpg.UndefinedTableError("no such table"), False),
        (KafkaException(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)), False),
    ],
)
def test_retry_or_dead_letter_is_decided_by_the_error_type(err: BaseException, retry: bool) -> None:
    assert is_retryable(err) is retry


def test_psi_is_zero_for_one_distribution_and_large_for_a_shifted_one() -> None:
    rng = np.random.default_rng(0)
    base = rng.beta(2, 5, 20_000)
    assert psi(base, base) == pytest.approx(0.0, abs=1e-9)
    assert psi(base, rng.beta(2, 5, 20_000)) < 0.01
    shifted = psi(base, np.clip(base + 0.2, 0, 1))
    assert shifted > 0.25
    assert psi_band(shifted) == "large shift"
    assert psi_band(0.15) == "moderate shift"
    assert psi(np.full(100, 0.5), np.full(100, 0.5)) == pytest.approx(0.0, abs=1e-9)


def rows(candidate: np.ndarray, champion: np.ndarray, labels: np.ndarray | None) -> list[dict[str, Any]]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        {
            "score": float(c),
            "threshold": 0.5,
            "champion_score": float(p),
            "champion_version": "3",
            "latency_ms": 0.01 * (i % 100),
            "champion_latency_ms": 0.2,
            "scored_at": start + timedelta(seconds=i),
            "fraud": None if labels is None else bool(labels[i]),
        }
        for i, (c, p) in enumerate(zip(candidate, champion, strict=True))
    ]


def test_a_comparison_measures_agreement_distance_latency_and_auc() -> None:
    rng = np.random.default_rng(1)
    champion = rng.random(5_000)
    candidate = np.clip(champion + rng.normal(scale=0.05, size=5_000), 0, 1)
    labels = rng.random(5_000) < champion
    result = compare(rows(candidate, champion, labels))
    assert result.count == 5_000
    assert result.champion_version == 3
    expected = np.mean((candidate >= 0.5) == (champion >= 0.5))
    assert result.agreement == pytest.approx(expected)
    assert result.mean_abs_difference == pytest.approx(np.mean(np.abs(candidate - champion)))
    assert result.ks_statistic < 0.05
    assert result.candidate_latency_p99_ms == pytest.approx(0.98, abs=0.01)
    assert result.labelled == 5_000
    assert result.candidate_auc == pytest.approx(roc_auc_score(labels, candidate))
    assert result.champion_auc == pytest.approx(roc_auc_score(labels, champion))
    flagged = candidate >= 0.5
    assert result.candidate_recall == pytest.approx(np.sum(flagged & labels) / labels.sum())
    assert result.candidate_precision == pytest.approx(np.sum(flagged & labels) / flagged.sum())
    flagged = champion >= 0.5
    assert result.champion_recall == pytest.approx(np.sum(flagged & labels) / labels.sum())
    assert result.champion_precision == pytest.approx(np.sum(flagged & labels) / flagged.sum())


def test_the_evaluation_text_says_what_each_model_catches_at_the_threshold(
    capsys: pytest.CaptureFixture[str],
) -> None:
    labels = np.array([True, True, True, True, False, False])
    candidate = np.array([0.9, 0.8, 0.7, 0.1, 0.6, 0.1])
    champion = np.array([0.9, 0.2, 0.1, 0.1, 0.1, 0.1])
    result = asdict(compare(rows(candidate, champion, labels)))
    _print_evaluation({"candidate": "fraud@4", "environment": "production", **result})
    text = capsys.readouterr().out
    assert "at the threshold, candidate: 75.0% of the 4 fraud caught, 75.0% of those flagged fraud" in text
    assert "at the threshold, champion: 25.0% of the 4 fraud caught, 100.0% of those flagged fraud" in text
    # the two latencies time different things, and the text says which
    assert "(in this worker, per row of a batch), champion" in text
    assert "(its live scorer call, network included)" in text


def test_a_comparison_without_rows_or_labels_says_so() -> None:
    with pytest.raises(FailedPrecondition):
        compare([])
    result = compare(rows(np.array([0.1, 0.9]), np.array([0.2, 0.8]), None))
    assert result.candidate_auc is None
    assert (result.candidate_recall, result.candidate_precision) == (None, None)
    assert result.agreement == 1.0
