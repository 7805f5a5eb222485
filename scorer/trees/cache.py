"""An on-disk cache of compiled forests, memory-mapped read-only so processes share one copy."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from scorer.trees.errors import TreeFormatError
from scorer.trees.forest import CompiledForest, ForestArrays, pack_forest
from scorer.trees.hugepages import HUGE_PAGE, drop_cached, huge_page_copy, map_npy
from scorer.trees.tree import Tree

# Bumped whenever the packed layout changes, so old entries are rebuilt rather than misread.
LAYOUT_VERSION = 1
_MANIFEST = "manifest.json"


def default_cache() -> ForestCache:
    """The cache under `RTSCORE_CACHE_DIR`, else `~/.cache/rtscore`; `RTSCORE_HUGE_PAGES=1` opts in to
    private huge-page copies (see scorer.trees.hugepages; shared huge pages are tried in any case)."""
    configured = os.environ.get("RTSCORE_CACHE_DIR")
    huge_pages = os.environ.get("RTSCORE_HUGE_PAGES", "").lower() in {"1", "true", "yes"}
    return ForestCache(Path(configured) if configured else Path.home() / ".cache" / "rtscore", huge_pages)


class ForestCache:
    """Compiled forests stored under a directory, one folder per key.

    Hits are memory-mapped, so processes share one copy in the page cache, in 2 MiB pages where the
    system allows; with `huge_pages`, each process instead scores from a private copy in huge pages (for
    systems that cannot map files in huge pages; one copy per process).
    """

    def __init__(self, directory: Path | str, huge_pages: bool = False) -> None:
        self.directory = Path(directory)
        self.huge_pages = huge_pages

    def entry_path(self, key: str) -> Path:
        """The folder that holds `key`'s arrays (a readable prefix plus a digest of the key)."""
        readable = re.sub(r"[^A-Za-z0-9._-]", "_", key)[:80]
        return self.directory / f"{readable}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"

    def get_or_compile(
        self, key: str, trees: Callable[[], Sequence[Tree]], weights: np.ndarray | None
    ) -> CompiledForest:
        """The forest for `key`: memory-mapped from a valid entry, else compiled from `trees()` and stored
        (as is an entry whose content was damaged on disk: every node is checked as it is loaded)."""
        digest = _weights_digest(weights)
        forest = self._valid(key, digest)
        if forest is not None:
            return forest
        self._store(key, digest, pack_forest(trees(), weights))
        arrays = self._load(key, digest)
        if arrays is None:  # pragma: no cover - only if the directory is removed under us
            raise OSError(f"forest cache entry {self.entry_path(key)} vanished right after it was written")
        return self._forest(arrays)

    def _valid(self, key: str, digest: str) -> CompiledForest | None:
        """The forest of a complete entry whose every node checks out, else None."""
        arrays = self._load(key, digest)
        if arrays is not None:
            with contextlib.suppress(TreeFormatError):
                return self._forest(arrays)
        return None

    def _sound(self, key: str, digest: str) -> bool:
        """Whether the entry is complete and every node checks out (no private huge-page copy made)."""
        arrays = self._load(key, digest)
        if arrays is None:
            return False
        try:
            CompiledForest(arrays)
        except TreeFormatError:
            return False
        return True

    def _forest(self, arrays: ForestArrays) -> CompiledForest:
        if self.huge_pages:
            arrays = replace(arrays, nodes=huge_page_copy(arrays.nodes))
        return CompiledForest(arrays)

    def _load(self, key: str, digest: str) -> ForestArrays | None:
        """The memory-mapped arrays of a complete, consistent entry, or None (missing, partial or corrupt)."""
        folder = self.entry_path(key)
        try:
            manifest = json.loads((folder / _MANIFEST).read_text())
            if (
                manifest.get("layout") != LAYOUT_VERSION
                or manifest.get("key") != key
                or manifest.get("weights") != digest
            ):
                return None
            loaded: dict[str, np.ndarray] = {}
            for name, spec in manifest["arrays"].items():
                path = folder / f"{name}.npy"
                if path.stat().st_size != spec["bytes"]:
                    return None
                array = map_npy(path)
                if str(array.dtype) != spec["dtype"] or list(array.shape) != spec["shape"]:
                    return None
                loaded[name] = array
            return ForestArrays(**loaded)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def _store(self, key: str, digest: str, arrays: ForestArrays) -> None:
        """Write the entry into a temporary folder and rename it into place, replacing a bad entry."""
        self.directory.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.directory))
        try:
            specs = {}
            for name, array in arrays.named().items():
                path = staging / f"{name}.npy"
                np.save(path, np.ascontiguousarray(array), allow_pickle=False)
                if array.nbytes >= HUGE_PAGE:
                    drop_cached(path)
                specs[name] = {
                    "dtype": str(array.dtype),
                    "shape": list(array.shape),
                    "bytes": path.stat().st_size,
                }
            manifest = {"layout": LAYOUT_VERSION, "key": key, "weights": digest, "arrays": specs}
            (staging / _MANIFEST).write_text(json.dumps(manifest, indent=1))
            folder = self.entry_path(key)
            if folder.exists():
                if self._sound(key, digest):
                    # Another process compiled the same forest meanwhile (scorers started together on a
                    # new bundle): its entry stays, since processes may already map it, and ours goes.
                    return
                # a stale or corrupt entry: move it aside first so readers never see a half-replaced folder
                discarded = Path(tempfile.mkdtemp(prefix=".discarded-", dir=self.directory))
                with contextlib.suppress(FileNotFoundError):  # another process moved it first
                    os.replace(folder, discarded / "entry")
                shutil.rmtree(discarded, ignore_errors=True)
            try:
                os.replace(staging, folder)
            except OSError:
                # another process renamed its copy into place first; theirs is as good as ours
                if self._load(key, digest) is None:
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _weights_digest(weights: np.ndarray | None) -> str:
    """A digest of the tree weights, so an entry compiled with other weights is not reused."""
    if weights is None:
        return "none"
    return hashlib.sha256(np.ascontiguousarray(weights, dtype=np.float64).tobytes()).hexdigest()
