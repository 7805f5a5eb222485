"""The extractor as an operator runs it: real scorer and extractor processes, `rtscore evaluate`,
bad input fuzzed over Evaluate, a spec that does not fit the model (at start and after a swap of the
served model), and no ready scorer."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from extractor.transactions import transaction_from_json
from protos.rtscore.v1 import extractor_pb2, extractor_pb2_grpc, scorer_pb2, scorer_pb2_grpc
from rtscore.localservices.processes import free_port
from tests.integration.cli_run import rtscore
from tests.integration.extractor_processes import Served, fraud_files, metric, scorer, started, wait_until
from tests.paths import ROOT

__all__ = ["fraud_files", "started"]


@pytest.fixture(scope="module")
def served(
    fraud_files: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Served, Served]]:
    bundle, _ = fraud_files
    one = scorer(bundle, tmp_path_factory.mktemp("cache"))
    try:
        extractor = Served(
            "extractor", "serve", "--scorers", one.target, "--model", "fraud", "--wait-ready", "20",
            "--dense-frames",  # the default, named: the scenario test sends --no-dense-frames
        )  # fmt: skip
    except BaseException:
        one.kill()
        raise
    yield one, extractor
    assert extractor.stop() == 0
    one.stop()


@pytest.fixture(scope="module")
def stub(served: tuple[Served, Served]) -> Iterator[extractor_pb2_grpc.ExtractorStub]:
    with grpc.insecure_channel(served[1].target) as channel:
        yield extractor_pb2_grpc.ExtractorStub(channel)


def _first_transactions(traffic: Path, n: int) -> list[extractor_pb2.Transaction]:
    with traffic.open() as handle:
        return [transaction_from_json(json.loads(next(handle))) for _ in range(n)]


def test_evaluate_returns_a_decision_with_stage_timings(
    stub: extractor_pb2_grpc.ExtractorStub, fraud_files: tuple[Path, Path], served: tuple[Served, Served]
) -> None:
    tx = _first_transactions(fraud_files[1], 1)[0]
    decision, call = stub.Evaluate.with_call(tx, timeout=5)
    assert decision.transaction_id == tx.id
    assert 0.0 <= decision.score <= 1.0
    assert decision.model == "fraud"
    assert decision.version
    assert decision.scorer == served[0].target
    assert decision.action != extractor_pb2.ACTION_UNSPECIFIED
    timings = decision.timings
    assert 0 < timings.velocity_ms <= timings.features_ms < timings.total_ms
    trailing = dict(call.trailing_metadata())
    assert float(trailing["rtscore-total-ms"]) == pytest.approx(timings.total_ms, abs=1e-3)

    batch = _first_transactions(fraud_files[1], 4)[1:]
    decisions = stub.EvaluateBatch(extractor_pb2.EvaluateBatchRequest(transactions=batch), timeout=5)
    assert [d.transaction_id for d in decisions.decisions] == [t.id for t in batch]


def test_rtscore_evaluate_prints_one_json_decision(
    served: tuple[Served, Served], fraud_files: tuple[Path, Path], tmp_path: Path
) -> None:
    line = fraud_files[1].read_text().splitlines()[10]
    (tmp_path / "tx.json").write_text(line)
    done = rtscore("evaluate", "--target", served[1].target, "--transaction", str(tmp_path / "tx.json"))
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["transaction_id"] == json.loads(line)["transaction"]["id"]
    assert {"score", "action", "model", "version"} <= shown.keys()

    (tmp_path / "bad.json").write_text(json.dumps({**json.loads(line)["transaction"], "currency": "ZZZ"}))
    failed = rtscore("evaluate", "--target", served[1].target, "--transaction", str(tmp_path / "bad.json"))
    assert failed.returncode != 0
    assert failed.stderr.strip().splitlines() == [
        "rtscore evaluate: INVALID_ARGUMENT: transaction.currency: 'ZZZ' is not in the spec's rate table"
    ]


_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300)
_transactions = st.builds(
    extractor_pb2.Transaction,
    id=st.one_of(st.just("fuzz"), _text),
    amount_minor=st.integers(min_value=-(2**63), max_value=2**63 - 1),
    currency=st.sampled_from(["USD", "JPY", "KWD", "ZZZ", "", "usd"]),
    card_token=st.one_of(st.just("card-1"), _text),
    email=_text,
    device_id=_text,
    ip=st.one_of(st.just("10.0.0.1"), st.just("::1"), _text),
    merchant_category=st.one_of(st.just("5411"), _text),
    country=st.one_of(st.just("US"), st.just(""), _text),
    channel=st.integers(min_value=0, max_value=9),
    attributes=st.dictionaries(_text, _text, max_size=40),
    event_time=st.one_of(st.none(), st.builds(Timestamp, seconds=st.integers(0, 4_000_000_000))),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tx=_transactions)
def test_bad_input_is_invalid_argument_naming_the_field(
    stub: extractor_pb2_grpc.ExtractorStub, tx: extractor_pb2.Transaction
) -> None:
    future = stub.Evaluate.future(tx, timeout=5)
    if future.exception() is None:
        assert future.result().transaction_id == tx.id
        return
    assert future.code() == grpc.StatusCode.INVALID_ARGUMENT, future.details()
    assert future.details().startswith("transaction."), future.details()


def test_the_extractor_still_serves_after_fuzzing(
    stub: extractor_pb2_grpc.ExtractorStub, fraud_files: tuple[Path, Path]
) -> None:
    tx = _first_transactions(fraud_files[1], 20)[-1]
    assert stub.Evaluate(tx, timeout=5).transaction_id == tx.id


def test_a_spec_that_does_not_fit_the_model_stops_serve_once(
    served: tuple[Served, Served], tmp_path: Path
) -> None:
    spec = Path("extractor/specs/default.toml").read_text().replace('name = "risky_country"', 'name = "odd"')
    (tmp_path / "spec.toml").write_text(spec)
    done = rtscore(
        "extractor", "serve", "--port", "0", "--spec", str(tmp_path / "spec.toml"),
        "--scorers", served[0].target, "--model", "fraud",
    )  # fmt: skip
    assert done.returncode == 1
    assert "missing: the model reads 'risky_country'" in done.stderr
    assert "unused: the spec produces 'odd'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_served_model_that_stops_fitting_the_spec_is_failed_precondition_until_it_fits_again(
    fraud_files: tuple[Path, Path], started: list[Served], tmp_path: Path
) -> None:
    bundle, traffic = fraud_files
    one = scorer(bundle, tmp_path / "cache")
    started.append(one)
    extractor = Served("extractor", "serve", "--scorers", one.target, "--model", "fraud", "--wait-ready", "9")
    started.append(extractor)
    tx = _first_transactions(traffic, 1)[0]
    other = ROOT.parent / "shared" / "fixtures" / "mleap" / "airbnb.model.lr.zip"
    with grpc.insecure_channel(one.target) as to_scorer, grpc.insecure_channel(extractor.target) as channel:
        load = scorer_pb2_grpc.ScorerStub(to_scorer).LoadModel
        stub = extractor_pb2_grpc.ExtractorStub(channel)
        health = health_pb2_grpc.HealthStub(channel)

        def status() -> int:
            return health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status

        assert stub.Evaluate(tx, timeout=5).model == "fraud"
        # another model takes the name, as a promotion or a load does: it reads none of the spec's columns
        load(scorer_pb2.LoadModelRequest(name="fraud", path=str(other)), timeout=30)
        refusals: list[grpc.RpcError] = []

        def refused_naming_the_columns() -> bool:
            with pytest.raises(grpc.RpcError) as caught:
                stub.Evaluate(tx, timeout=5)
            refusals.append(caught.value)
            return "missing: the model reads" in (caught.value.details() or "")

        wait_until(refused_naming_the_columns, 10.0, "a refusal naming the misfit")
        assert {r.code() for r in refusals} == {grpc.StatusCode.FAILED_PRECONDITION}
        assert "unused: the spec produces 'amount_log'" in (refusals[-1].details() or "")
        wait_until(lambda: status() == health_pb2.HealthCheckResponse.NOT_SERVING, 10.0, "NOT_SERVING")

        # the fraud bundle back (a rollback): calls are scored again and health recovers by itself
        load(scorer_pb2.LoadModelRequest(name="fraud", path=str(bundle)), timeout=30)
        wait_until(lambda: status() == health_pb2.HealthCheckResponse.SERVING, 10.0, "SERVING again")
        assert stub.Evaluate(tx, timeout=5).transaction_id == tx.id


def test_a_stalled_scorer_costs_no_call_with_a_hedge_or_a_short_attempt_deadline(
    fraud_files: tuple[Path, Path], started: list[Served], tmp_path: Path
) -> None:
    """Two scorers, one SIGSTOPped: concurrent calls picked for it wait out the attempt's deadline (1 s,
    past the caller's 0.5 s) unless the extractor runs with --hedge, which answers them all from the
    other scorer after 20 ms, or with the default 50 ms attempt deadline, after which they go to it."""
    bundle, traffic = fraud_files
    scorers = [scorer(bundle, tmp_path / "cache") for _ in range(2)]
    started.extend(scorers)
    endpoints = ",".join(s.target for s in scorers)
    txs = _first_transactions(traffic, 250)
    failed: dict[str, list[str]] = {}
    hedges: dict[str, float] = {}
    retries: dict[str, float] = {}
    runs = {
        "no hedge": ("--score-timeout-ms", "1000"),
        "hedge": ("--score-timeout-ms", "1000", "--hedge-delay-ms", "20"),  # a delay implies --hedge
        "50 ms attempts": (),
    }
    for run, flags in runs.items():
        metrics_port = free_port()
        extractor = Served(
            "extractor", "serve", "--scorers", endpoints, "--model", "fraud", "--wait-ready", "20",
            "--metrics-port", str(metrics_port), *flags,
        )  # fmt: skip
        started.append(extractor)
        with grpc.insecure_channel(extractor.target) as channel:
            stub = extractor_pb2_grpc.ExtractorStub(channel)
            for tx in txs[:200]:  # both scorers seen answering; the hedge budget (5% of calls) filled
                stub.Evaluate(tx, timeout=5)
            scorers[1].proc.send_signal(signal.SIGSTOP)
            try:
                calls = [stub.Evaluate.future(tx, timeout=0.5) for tx in txs[200:208]]
                outcomes = []
                for call in calls:
                    try:
                        outcomes.append(call.result().scorer)
                    except grpc.RpcError as err:
                        outcomes.append(err.code().name)
            finally:
                scorers[1].proc.send_signal(signal.SIGCONT)
        failed[run] = [o for o in outcomes if o != scorers[0].target]
        hedges[run] = metric(metrics_port, "rtscore_extractor_pool_hedges")
        retries[run] = metric(metrics_port, "rtscore_extractor_pool_retries")
        assert extractor.stop() == 0
    assert failed["no hedge"], "no call was picked for the stalled scorer: the test proves nothing"
    assert failed["hedge"] == []
    assert failed["50 ms attempts"] == []
    assert (hedges["no hedge"], hedges["50 ms attempts"]) == (0, 0)
    assert hedges["hedge"] >= 1  # and counted where an operator looks
    assert retries["50 ms attempts"] >= 1


def test_no_ready_scorer_is_unavailable_within_the_deadline(
    served: tuple[Served, Served], fraud_files: tuple[Path, Path]
) -> None:
    """Runs last in the module: it takes the module's only scorer away."""
    one, extractor = served
    tx = _first_transactions(fraud_files[1], 1)[0]
    with grpc.insecure_channel(extractor.target) as channel:
        stub = extractor_pb2_grpc.ExtractorStub(channel)
        assert stub.Evaluate(tx, timeout=5).transaction_id == tx.id
        one.kill()
        began = time.monotonic()
        with pytest.raises(grpc.RpcError) as caught:
            stub.Evaluate(tx, timeout=2.0)  # scoring waits out 0.9 of it: 2 s leaves a VM stall 0.2 s
        assert time.monotonic() - began < 2.0
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert caught.value.details()
