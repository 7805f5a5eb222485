"""The committed generated protobuf modules match what scripts/gen_protos.py writes today."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _generated(folder: Path) -> set[Path]:
    return {p.relative_to(folder) for p in folder.rglob("*") if p.suffix in {".py", ".pyi"}}


def test_generated_protos_are_up_to_date(tmp_path: Path) -> None:
    out = tmp_path / "protos"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_protos.py"), str(out)], check=True)
    committed = _generated(ROOT / "protos")
    fresh = _generated(out)
    assert fresh, "the generator wrote nothing"
    assert committed == fresh, "generated file set differs: run scripts/gen_protos.py"
    stale = [str(p) for p in sorted(fresh) if not filecmp.cmp(out / p, ROOT / "protos" / p, shallow=False)]
    assert not stale, f"stale generated modules (run scripts/gen_protos.py): {stale}"
