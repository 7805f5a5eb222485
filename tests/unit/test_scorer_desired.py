"""Reconciling role deployments: aliases switch at once, a refused version leaves the old one serving."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from scorer.service.desired import reconcile
from scorer.service.errors import ModelNotFound
from scorer.service.model import ModelSpec
from tests.unit.test_scorer_core import Loader, SumModel, canary_for, frame_of, make_core, pool  # noqa: F401


def role(version: int, *roles: str, path: str = "") -> ModelSpec:
    return ModelSpec("fraud", path or f"/v{version}", str(version), canary=canary_for(version), roles=roles)


async def test_role_aliases_follow_promotions_and_a_refused_champion_leaves_the_old_one(
    pool: ThreadPoolExecutor,  # noqa: F811
) -> None:
    loader = Loader()
    loader.models.update({f"/v{v}": SumModel(float(v)) for v in (1, 2)})
    loader.models["/v3"] = SumModel(0.5)  # fails canary_for(3)
    core = make_core(pool, loader)
    first = await reconcile(core, [role(1, "champion"), role(2, "shadow")])
    assert first.loaded == ["fraud@1", "fraud@2"]
    table = core.table
    assert [table.resolve(ref).version for ref in ("fraud:champion", "fraud:shadow", "fraud", "fraud@2")] == [
        "1", "2", "1", "2",
    ]  # fmt: skip
    out, hosted = await core.score("fraud:champion", frame_of(a=[1.0], b=[1.0]))
    assert (hosted.version, float(out.column("sum")[0])) == ("1", 3.0)

    promoted = await reconcile(core, [role(2, "champion")])
    assert (promoted.loaded, promoted.replaced) == ([], ["fraud@1"])  # v2 was hosted: nothing reloads
    assert table.resolve("fraud:champion").version == "2"
    with pytest.raises(ModelNotFound, match="role aliases: fraud:champion"):
        table.resolve("fraud:shadow")

    refused = await reconcile(core, [role(3, "champion")])
    assert "canary" in refused.failed["fraud@3"]
    assert table.resolve("fraud:champion").version == "2"
    assert [h.ref for h in table.models()] == ["fraud@2"]
