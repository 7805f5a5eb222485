"""Where tests find the repository and the shared MLeap fixture bundles."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# MLeap bundles exported by other people's tools, kept beside the repository (or where RTSCORE_FIXTURES says)
FIXTURES = Path(os.environ.get("RTSCORE_FIXTURES", ROOT.parent / "shared" / "fixtures" / "mleap"))
