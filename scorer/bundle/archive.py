"""A bundle's files, read from a zip or a directory without trusting names or sizes."""

from __future__ import annotations

import hashlib
import posixpath
import zipfile
from dataclasses import dataclass
from pathlib import Path

from scorer.bundle.errors import BundleError

_CHUNK = 1 << 20


@dataclass(frozen=True)
class ArchiveLimits:
    """Bounds that keep a hostile bundle from exhausting memory or disk."""

    max_total_bytes: int = 8 << 30
    """Uncompressed size of all entries together."""
    max_entry_bytes: int = 4 << 30
    """Uncompressed size of one entry."""
    max_ratio: float = 200.0
    """Uncompressed/compressed size of one entry, checked for entries above `ratio_floor`."""
    ratio_floor: int = 1 << 20
    """Entries smaller than this are never rejected for their ratio (tiny files compress oddly)."""
    max_entries: int = 200_000
    """Number of entries."""


def _clean(name: str, label: str) -> str:
    """A normalised relative path, or a BundleError for names that could escape the bundle."""
    if "\\" in name or "\x00" in name:
        raise BundleError(f"{label}: unsafe entry name {name!r} (backslash or NUL)")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise BundleError(f"{label}: unsafe entry name {name!r} (absolute path)")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise BundleError(f"{label}: unsafe entry name {name!r} (path traversal)")
    return "/".join(parts)


class BundleArchive:
    """Read-only access to the files of a bundle, whether zipped or a directory."""

    def __init__(self, path: str | Path, limits: ArchiveLimits | None = None):
        self.path = Path(path)
        self.limits = limits or ArchiveLimits()
        self.label = str(path)
        self._zip: zipfile.ZipFile | None = None
        self._entries: dict[str, zipfile.ZipInfo] = {}
        self._prefix = ""
        if self.path.is_dir():
            self._root = self.path.resolve()
            self.sha256 = self._directory_digest()
        elif self.path.is_file():
            self._open_zip()
        else:
            raise BundleError(f"{self.label}: no such bundle (neither a zip file nor a directory)")

    def _open_zip(self) -> None:
        digest = hashlib.sha256()
        with self.path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(_CHUNK), b""):
                digest.update(chunk)
        self.sha256 = digest.hexdigest()
        try:
            self._zip = zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, OSError) as err:
            raise BundleError(f"{self.label}: not a zip file or a directory ({err})") from None
        infos = self._zip.infolist()
        if len(infos) > self.limits.max_entries:
            raise BundleError(f"{self.label}: {len(infos)} entries, more than {self.limits.max_entries}")
        total = 0
        for info in infos:
            name = _clean(info.filename, self.label)
            if info.is_dir():
                continue
            self._check_sizes(info)
            total += info.file_size
            if total > self.limits.max_total_bytes:
                raise BundleError(
                    f"{self.label}: uncompressed size exceeds {self.limits.max_total_bytes} bytes (zip bomb?)"
                )
            self._entries[name] = info
        if "bundle.json" not in self._entries:
            # some tools zip the bundle folder itself: accept one top-level directory holding bundle.json
            tops = {n.split("/", 1)[0] for n in self._entries}
            if len(tops) == 1 and f"{next(iter(tops))}/bundle.json" in self._entries:
                self._prefix = next(iter(tops)) + "/"

    def _check_sizes(self, info: zipfile.ZipInfo) -> None:
        where = f"{self.label}: {info.filename}"
        if info.file_size > self.limits.max_entry_bytes:
            raise BundleError(f"{where}: {info.file_size} bytes uncompressed, more than allowed (zip bomb?)")
        if info.file_size > self.limits.ratio_floor:
            ratio = info.file_size / max(info.compress_size, 1)
            if ratio > self.limits.max_ratio:
                raise BundleError(
                    f"{where}: compression ratio {ratio:.0f} exceeds {self.limits.max_ratio:.0f} (zip bomb?)"
                )

    def _directory_digest(self) -> str:
        # path and content of every file, in sorted path order, so a rename changes the digest too
        digest = hashlib.sha256()
        for file in sorted(p for p in self._root.rglob("*") if p.is_file()):
            rel = file.relative_to(self._root).as_posix()
            if not file.resolve().is_relative_to(self._root):
                raise BundleError(f"{self.label}: {rel} links outside the bundle directory")
            digest.update(rel.encode() + b"\x00")
            with file.open("rb") as fh:
                for chunk in iter(lambda fh=fh: fh.read(_CHUNK), b""):  # type: ignore[misc]
                    digest.update(chunk)
        return digest.hexdigest()

    def exists(self, rel: str) -> bool:
        """Whether the bundle has a file at relative path `rel`."""
        rel = _clean(rel, self.label)
        if self._zip is not None:
            return self._prefix + rel in self._entries
        return (self._root / rel).is_file()

    def read(self, rel: str) -> bytes:
        """The bytes of the file at relative path `rel`; a BundleError when missing or oversized."""
        rel = _clean(rel, self.label)
        if self._zip is not None:
            return self._read_zip(rel)
        file = (self._root / rel).resolve()
        if not file.is_relative_to(self._root):
            raise BundleError(f"{self.label}: {rel} points outside the bundle directory")
        if not file.is_file():
            raise BundleError(f"{self.label}: missing file {rel}")
        if file.stat().st_size > self.limits.max_entry_bytes:
            raise BundleError(f"{self.label}: {rel} is larger than {self.limits.max_entry_bytes} bytes")
        return file.read_bytes()

    def _read_zip(self, rel: str) -> bytes:
        assert self._zip is not None
        info = self._entries.get(self._prefix + rel)
        if info is None:
            raise BundleError(f"{self.label}: missing file {rel}")
        parts: list[bytes] = []
        size = 0
        try:
            with self._zip.open(info) as fh:
                # the central directory can lie about sizes: count what actually inflates
                while chunk := fh.read(_CHUNK):
                    size += len(chunk)
                    if size > info.file_size or size > self.limits.max_entry_bytes:
                        raise BundleError(
                            f"{self.label}: {rel} inflates past its declared size "
                            f"{info.file_size} (zip bomb?)"
                        )
                    parts.append(chunk)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
            raise BundleError(f"{self.label}: {rel} is corrupt ({err})") from None
        return b"".join(parts)

    def close(self) -> None:
        """Release the open zip file, if any."""
        if self._zip is not None:
            self._zip.close()
            self._zip = None

    @staticmethod
    def join(*parts: str) -> str:
        """Join relative bundle paths."""
        return posixpath.join(*[p for p in parts if p])
