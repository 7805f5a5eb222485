"""A candidate with a feature spec of its own: derived features recomputed, velocity by the sample's key."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pytest

from extractor.features import FeatureExtractor
from extractor.spec import DEFAULT_SPEC, SpecError, parse_spec
from protos.rtscore.v1 import extractor_pb2, frame_pb2
from scorer.bundle import load_bundle
from scorer.frame import DataType, Field, LeapFrame
from shadow.models import ModelSet, ShadowModel
from shadow.recompute import OwnFeatures
from shadow.records import Delivery, parse
from shadow.scoring import score_records

LIVE = DEFAULT_SPEC.read_text()


def candidate_spec(velocity: str) -> str:
    """The live spec's derived features with other velocity groups."""
    head = LIVE[: LIVE.index("[[velocity]]")]
    return re.sub(r'name = "fraud-default"', 'name = "candidate"', head) + velocity


CARD_AND_EMAIL = """
[[velocity]]
entity = "card_token"
prefix = "cardx"
windows = ["1h"]

[[velocity]]
entity = "email"
prefix = "email"
windows = ["1h"]
sum = false
distinct = "card_token"
"""
DEVICE = """
[[velocity]]
entity = "device_id"
prefix = "devicex"
windows = ["1h"]
"""


def transactions(count: int) -> list[extractor_pb2.Transaction]:
    now = int(time.time()) - 600
    out = []
    for i in range(count):
        tx = extractor_pb2.Transaction(
            id=f"t{i}", amount_minor=1000 + 250 * i, currency="EUR" if i % 2 else "USD",
            card_token=f"card{i % 2}", email=f"e{i % 3}@x", device_id=f"d{i}", merchant_id="m1",
            merchant_category="5967", country="US", channel=extractor_pb2.CHANNEL_ECOMMERCE,
        )  # fmt: skip
        tx.event_time.FromSeconds(now + 10 * i)
        out.append(tx)
    return out


def shadow_records(txs: list[extractor_pb2.Transaction], names: list[str], rows: np.ndarray) -> list[bytes]:
    loaded = parse_spec(LIVE, "live")
    out = []
    for tx, row in zip(txs, rows, strict=True):
        features = frame_pb2.Frame(rows=1, dense=frame_pb2.DenseDoubles(names=names, values=row.tobytes()))
        record = extractor_pb2.ShadowRecord(
            transaction=tx, features=features, sample_key="card_token", spec_sha256=loaded.sha256,
            decision=extractor_pb2.Decision(transaction_id=tx.id, score=0.4, model="fraud", version="1"),
        )  # fmt: skip
        out.append(record.SerializeToString())
    return out


def forest_for(names: list[str], out: Path) -> Path:
    from sklearn.ensemble import RandomForestClassifier

    from scorer.export import export_sklearn

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, len(names))) * 3 + 2
    y = (x[:, 0] + x[:, -1] > 4).astype(int)
    forest = RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0).fit(x, y)
    return export_sklearn(forest, out, features=names)


def test_a_candidate_with_its_own_spec_scores_features_recomputed_from_the_transaction(
    tmp_path: Path,
) -> None:
    live = FeatureExtractor(parse_spec(LIVE, "live"))
    txs = transactions(6)
    carried = np.array(
        [live.prepare(tx).derived + [float(k) for k in range(len(live.plan.names))] for tx in txs]
    )
    raw = shadow_records(txs, live.names, carried)
    records = [parse(Delivery("t", 0, i, None, value, 0)) for i, value in enumerate(raw)]

    own = OwnFeatures(parse_spec(candidate_spec(CARD_AND_EMAIL), "candidate"))
    names = own.derived_names + own.velocity_names
    bundle = load_bundle(forest_for(names, tmp_path / "own.zip"))
    with_spec = ShadowModel("cand", 2, bundle.sha256, bundle, own)
    lacking = OwnFeatures(parse_spec(candidate_spec(DEVICE), "device"))
    device_bundle = load_bundle(
        forest_for(lacking.derived_names + lacking.velocity_names, tmp_path / "d.zip")
    )
    device = ShadowModel("device", 3, device_bundle.sha256, device_bundle, lacking)
    scored = score_records(records, ModelSet(1, (with_spec, device)), threshold=0.5)

    assert scored.per_model == {"cand@2": 6}
    # device velocity counts by device; the sample is keyed by card and the record does not carry it
    assert len(scored.letters) == 6
    assert all("devicex_count_1h" in str(letter.error) for letter in scored.letters)

    # the same features computed again, column by column
    recomputed, kept, refused = OwnFeatures(own.loaded).frame(records, _carried_frame(live.names, carried))
    assert (kept, refused) == (list(range(6)), [])
    assert own.velocity_names == ["cardx_count_1h", "cardx_sum_1h", "email_count_1h", "email_distinct_1h"]
    for j, name in enumerate(own.derived_names):  # derived: as the extractor computes them
        np.testing.assert_allclose(recomputed.column(name), [live.prepare(tx).derived[j] for tx in txs])
    # card velocity from the worker's own store: the sample is keyed by card, so it sees each card's history
    amounts = recomputed.column("amount_base")
    np.testing.assert_allclose(recomputed.column("cardx_count_1h"), [0, 0, 1, 1, 2, 2])
    earlier = [sum(amounts[k] for k in range(i % 2, i, 2)) for i in range(6)]
    np.testing.assert_allclose(recomputed.column("cardx_sum_1h"), earlier)
    # email velocity: what the record carries under the same name
    for name in ("email_count_1h", "email_distinct_1h"):
        np.testing.assert_allclose(recomputed.column(name), carried[:, live.names.index(name)])
    np.testing.assert_allclose(scored.rows.score, bundle.transform(recomputed).column("probability")[:, -1])


def _carried_frame(names: list[str], rows: np.ndarray) -> LeapFrame:
    return LeapFrame(
        [Field(n, DataType.scalar("double")) for n in names],
        [np.ascontiguousarray(rows[:, j]) for j in range(len(names))],
    )


def test_a_spec_tag_that_is_not_a_spec_is_refused_naming_the_tag() -> None:
    with pytest.raises(SpecError, match="feature_spec"):
        OwnFeatures.from_tags({"feature_spec": "name = 3"})
    assert OwnFeatures.from_tags({"team": "risk"}) is None
