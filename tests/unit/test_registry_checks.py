"""The registry's pure checks: roles, evaluation verdicts, upload spooling, names and references."""

from __future__ import annotations

import hashlib
from pathlib import Path

import grpc
import pytest

from protos.rtscore.v1 import registry_pb2 as pb
from registry.access import PERMISSIONS, Caller, authorize
from registry.catalog import check_canary, check_name
from registry.cli import message_json
from registry.client import parse_ref
from registry.errors import PermissionDeniedError
from registry.evaluations import EvaluationReport, verdict
from registry.settings import EvaluationThresholds
from registry.store import Spool
from rtscore.errors import InvalidArgument

LIMITS = EvaluationThresholds(min_sample_size=1000, min_agreement=0.99, max_score_distance=0.1)


def report(
    sample_size: int = 5000, agreement: float = 0.995, score_distance: float = 0.02
) -> EvaluationReport:
    return EvaluationReport("fraud", 2, "production", sample_size, agreement, score_distance)


def test_every_registry_method_has_a_permission_entry() -> None:
    methods = set(pb.DESCRIPTOR.services_by_name["Registry"].methods_by_name)
    assert methods == set(PERMISSIONS)


@pytest.mark.parametrize(
    ("role", "method", "allowed"),
    [
        ("author", "RegisterVersion", True),
        ("author", "Promote", False),
        ("approver", "Promote", True),
        ("service", "RecordEvaluation", True),
        ("service", "Deploy", False),
        ("approver", "Heartbeat", False),
        ("admin", "Heartbeat", True),
    ],
)
def test_roles_decide_which_calls_are_allowed(role: str, method: str, allowed: bool) -> None:
    caller = Caller("someone", role)
    if allowed:
        authorize(caller, method)
    else:
        with pytest.raises(PermissionDeniedError) as refused:
            authorize(caller, method)
        assert refused.value.code == grpc.StatusCode.PERMISSION_DENIED
        assert f"someone has role {role}" in str(refused.value)


def test_an_evaluation_passes_only_within_every_threshold() -> None:
    assert verdict(report(), LIMITS) == (True, "passed")
    passed, why = verdict(report(sample_size=10, agreement=0.9, score_distance=0.5), LIMITS)
    assert not passed
    assert why == "sample size 10 < 1000; agreement 0.9000 < 0.99; score distance 0.5000 > 0.1"


@pytest.mark.parametrize("bad", [{"agreement": 1.5}, {"agreement": float("nan")}, {"score_distance": -0.1}])
def test_impossible_evaluation_figures_are_invalid(bad: dict[str, float]) -> None:
    with pytest.raises(InvalidArgument):
        report(**bad).check()


def test_spool_returns_the_sha256_of_what_arrived(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=100)
    spool.write(b"hello ")
    spool.write(b"world")
    digest = hashlib.sha256(b"hello world").hexdigest()
    assert spool.finish(digest, 11) == digest
    assert spool.path.read_bytes() == b"hello world"
    spool.discard()
    assert not spool.path.exists()


def test_spool_refuses_a_short_upload_a_wrong_sha256_and_an_oversized_one(tmp_path: Path) -> None:
    short = Spool(tmp_path, max_bytes=100)
    short.write(b"abc")
    with pytest.raises(InvalidArgument, match="received 3 bytes, the header announced 10"):
        short.finish("", 10)
    wrong = Spool(tmp_path, max_bytes=100)
    wrong.write(b"abc")
    with pytest.raises(InvalidArgument, match="sha256 mismatch"):
        wrong.finish("f" * 64, 3)
    big = Spool(tmp_path, max_bytes=4)
    with pytest.raises(InvalidArgument, match="larger than the registry's limit of 4 bytes"):
        big.write(b"12345")
    for spool in (short, wrong, big):
        spool.discard()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["fraud", "fraud-v2", "a.b_c"])
def test_model_names_that_fit_addresses_are_accepted(name: str) -> None:
    check_name(name)


@pytest.mark.parametrize("name", ["", "-lead", "with space", "at@sign", "x" * 129])
def test_model_names_that_break_addresses_are_refused(name: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid model name"):
        check_name(name)


def test_a_canary_must_be_a_leap_frame_over_the_bundle_inputs() -> None:
    inputs = [{"name": "a", "type": "double"}]
    check_canary({"schema": {"fields": [{"name": "a", "type": "double"}]}, "rows": [[1.0]]}, inputs)
    with pytest.raises(InvalidArgument, match="not a MLeap JSON LeapFrame"):
        check_canary([1, 2], inputs)
    with pytest.raises(InvalidArgument, match=r"\['b'\]"):
        check_canary({"schema": {"fields": [{"name": "b", "type": "double"}]}, "rows": []}, inputs)


def test_version_references_are_name_at_number() -> None:
    assert parse_ref("fraud@3") == ("fraud", 3)
    assert parse_ref("team@fraud@12") == ("team@fraud", 12)
    for bad in ("fraud", "fraud@", "@3", "fraud@v3"):
        with pytest.raises(InvalidArgument, match="expected NAME@VERSION"):
            parse_ref(bad)


def test_cli_json_keeps_int64_numbers_and_maps() -> None:
    version = pb.Version(name="fraud", version=7, size=1 << 40, metrics={"auc": 0.9}, tags={"t": "x"})
    as_json = message_json(version)
    assert (as_json["version"], as_json["size"]) == (7, 1 << 40)
    assert (as_json["metrics"], as_json["tags"]) == ({"auc": 0.9}, {"t": "x"})
    state = message_json(pb.DesiredState(revision=3, deployments=[pb.Deployment(name="a", version=1)]))
    assert state["deployments"][0]["version"] == 1
