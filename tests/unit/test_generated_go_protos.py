"""The committed Go stubs of the load generator match what scripts/gen_go_protos.py writes today."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import gen_go_protos  # noqa: E402

missing = [name for name in gen_go_protos.PLUGINS if gen_go_protos.plugin(name) is None]


@pytest.mark.skipif(bool(missing), reason=f"{', '.join(missing)} not installed (./dev installs them with Go)")
def test_generated_go_stubs_are_up_to_date(tmp_path: Path) -> None:
    out = tmp_path / gen_go_protos.PACKAGE
    subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_go_protos.py"), str(out)], check=True)
    committed = gen_go_protos.DEFAULT_OUT
    fresh = {p.name for p in out.glob("*.go")}
    assert fresh, "the generator wrote nothing"
    assert {p.name for p in committed.glob("*.go")} == fresh, "stub set differs: run scripts/gen_go_protos.py"
    stale = sorted(name for name in fresh if not filecmp.cmp(out / name, committed / name, shallow=False))
    assert not stale, f"stale Go stubs (run scripts/gen_go_protos.py): {stale}"
