"""A loaded bundle: `load_bundle`, `Bundle.transform`, and the description `inspect_bundle` prints."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from scorer.bundle.archive import ArchiveLimits, BundleArchive
from scorer.bundle.errors import FrameError
from scorer.bundle.op import Op
from scorer.bundle.reader import BundleReader, read_info
from scorer.frame import Field, LeapFrame

if TYPE_CHECKING:
    from scorer.trees import ForestCache

_DEFAULT: Any = object()


class Bundle:
    """An MLeap bundle ready to transform frames."""

    def __init__(self, info: dict[str, Any], sha256: str, root: Op, source: str):
        self.info = info
        self.name: str = info["name"]
        self.format: str = info["format"]
        self.mleap_version: str = info["version"]
        self.sha256 = sha256
        self.root_op = root
        self.source = source
        self.input_schema: list[Field] = list(root.input_fields)
        self.output_schema: list[Field] = list(root.output_fields)
        self._input_names = frozenset(f.name for f in self.input_schema)

    def transform(self, frame: LeapFrame) -> LeapFrame:
        """Input columns kept, every op's outputs appended in pipeline order."""
        if not frame.has_all(self._input_names):
            missing = next(f.name for f in self.input_schema if not frame.has(f.name))
            raise FrameError(f"frame is missing column {missing!r} required by bundle {self.name}")
        return self.root_op.transform(frame)

    def describe(self) -> dict[str, Any]:
        """The JSON `rtscore bundle inspect` prints."""
        return {
            "name": self.name,
            "format": self.format,
            "mleap_version": self.mleap_version,
            "sha256": self.sha256,
            "root": self.root_op.describe(),
            "input_schema": [f.to_mleap_json() for f in self.input_schema],
            "output_schema": [f.to_mleap_json() for f in self.output_schema],
        }


def load_bundle(
    path: str | Path, cache: ForestCache | None = _DEFAULT, limits: ArchiveLimits | None = None
) -> Bundle:
    """Read a bundle (zip or directory, json or protobuf); every problem is a BundleError."""
    if cache is _DEFAULT:
        from scorer.trees import default_cache

        cache = default_cache()
    archive = BundleArchive(path, limits)
    try:
        info = read_info(archive)
        root = BundleReader(archive, info["format"], cache).load_node("root")
        return Bundle(info, archive.sha256, root, str(path))
    finally:
        archive.close()


def inspect_bundle(path: str | Path) -> dict[str, Any]:
    """Name, format, MLeap version, sha256, op tree and schemas of a bundle."""
    return load_bundle(path).describe()
