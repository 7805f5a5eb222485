"""The model table's addresses: names, `name@version`, role aliases, switched whole."""

from __future__ import annotations

import pytest

from scorer.service.errors import ModelNotFound
from scorer.service.model import HostedModel
from scorer.service.table import ModelTable
from tests.unit.test_scorer_core import SumModel


def version(v: str, name: str = "fraud") -> HostedModel:
    return HostedModel(name, v, f"/{name}-{v}", SumModel(float(v)))


def test_routing_switches_every_address_at_once_and_retires_what_it_drops() -> None:
    table = ModelTable()
    v1, v2, v3 = version("1"), version("2"), version("3")
    table.route([v1, v2], {"fraud": v1}, {"fraud:champion": v1, "fraud:shadow": v2})
    assert {ref: h.version for ref, h in table.routes().items()} == {
        "fraud@1": "1", "fraud@2": "2", "fraud": "1", "fraud:champion": "1", "fraud:shadow": "2",
    }  # fmt: skip
    dropped = table.route([v2, v3], {"fraud": v2}, {"fraud:champion": v2, "fraud:shadow": v3})
    assert dropped == [v1]
    assert v1.retired
    assert not v2.retired
    assert table.roles_of(v2) == ["champion"]
    with pytest.raises(ModelNotFound, match="hosted at versions 2, 3, not '1'"):
        table.resolve("fraud@1")
    with pytest.raises(ModelNotFound, match="role aliases: fraud:champion, fraud:shadow"):
        table.resolve("fraud:canary")


def test_a_route_to_a_version_not_hosted_is_refused_and_changes_nothing() -> None:
    table = ModelTable()
    v1, v2 = version("1"), version("2")
    table.route([v1], {"fraud": v1}, {"fraud:champion": v1})
    with pytest.raises(ValueError, match="fraud@2 is routed to but not among the hosted versions"):
        table.route([v1], {"fraud": v1}, {"fraud:champion": v2})
    assert table.resolve("fraud:champion") is v1


def test_standalone_install_replaces_every_version_of_the_name_and_remove_takes_them_all() -> None:
    table = ModelTable()
    v1, v2, other = version("1"), version("2"), version("1", name="other")
    table.route([v1, v2, other], {"fraud": v1, "other": other}, {"fraud:champion": v1})
    v9 = version("9")
    assert table.install(v9) is v1
    assert [h.ref for h in table.models()] == ["fraud@9", "other@1"]
    assert table.aliases() == {}
    assert table.remove("fraud") is v9
    assert [h.ref for h in table.models()] == ["other@1"]
    with pytest.raises(ModelNotFound, match="not hosted here"):
        table.resolve("fraud")
