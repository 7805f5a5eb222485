"""How `rtscore extractor serve --registry` reaches the registry and the scorers: the token from
--token-file or RTSCORE_TOKEN, and TLS to either side from PEM files."""

from __future__ import annotations

from pathlib import Path

import pytest

from extractor.server import ExtractorServer
from extractor.settings import ExtractorSettings
from rtscore.errors import InvalidArgument
from scorer.client.pool import ScorerPool
from scorer.client.sources import RegistryEndpoints


def _pool(**files: Path) -> tuple[ScorerPool, RegistryEndpoints]:
    settings = ExtractorSettings.model_validate({"registry": "127.0.0.1:50061", "pool": "fraud", **files})
    pool = ExtractorServer(settings)._pool()
    assert isinstance(pool.source, RegistryEndpoints)
    return pool, pool.source


def test_the_token_file_is_sent_and_wins_over_rtscore_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RTSCORE_TOKEN", "from-the-environment")
    (tmp_path / "extractor.token").write_text("  from-the-file\n")
    _, source = _pool(registry_token_file=tmp_path / "extractor.token")
    assert source.metadata == (("authorization", "Bearer from-the-file"),)
    assert source.description == "registry 127.0.0.1:50061 production/fraud"
    _, source = _pool()
    assert source.metadata == (("authorization", "Bearer from-the-environment"),)
    monkeypatch.delenv("RTSCORE_TOKEN")
    assert _pool()[1].metadata == ()


def test_an_unreadable_or_empty_token_file_is_refused_before_serving(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="cannot read the token file"):
        _pool(registry_token_file=tmp_path / "missing.token")
    (tmp_path / "empty.token").write_text("\n")
    with pytest.raises(InvalidArgument, match="is empty"):
        _pool(registry_token_file=tmp_path / "empty.token")


def test_pem_files_turn_on_tls_to_the_registry_and_to_the_scorers_separately(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    pool, source = _pool()
    assert (source.credentials, pool.credentials) == (None, None)
    pool, source = _pool(registry_ca=ca)
    assert (source.credentials is None, pool.credentials is None) == (False, True)
    pool, source = _pool(scorer_ca=ca)
    assert (source.credentials is None, pool.credentials is None) == (True, False)
    with pytest.raises(InvalidArgument, match="needs its key"):
        _pool(scorer_cert=ca)
    with pytest.raises(InvalidArgument, match="cannot read the CA"):
        _pool(registry_ca=tmp_path / "missing.pem")
