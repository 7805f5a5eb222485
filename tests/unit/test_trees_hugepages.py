"""Mapping cached `.npy` arrays: the same values as numpy reads, never a half-read array."""

from __future__ import annotations

import mmap
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from scorer.trees.hugepages import HUGE_PAGE, drop_cached, huge_mapped_bytes, map_npy


@pytest.mark.parametrize(
    "array",
    [
        np.arange(12, dtype=np.int32).reshape(3, 4),
        np.linspace(-1.0, 1.0, 7),
        np.zeros((0, 4), dtype=np.int64),
        np.arange(HUGE_PAGE // 4 + 3, dtype=np.int32).reshape(-1, 1),  # large enough to be advised
    ],
    ids=["int32-2d", "float64-1d", "empty", "huge"],
)
def test_mapped_array_equals_what_numpy_saved(tmp_path: Path, array: np.ndarray) -> None:
    path = tmp_path / "a.npy"
    np.save(path, array)
    mapped = map_npy(path)
    assert mapped.dtype == array.dtype
    assert mapped.shape == array.shape
    assert not mapped.flags.writeable
    np.testing.assert_array_equal(mapped, array)


def test_version_2_header_is_read(tmp_path: Path) -> None:
    path = tmp_path / "a.npy"
    array = np.arange(10, dtype=np.float64)
    with open(path, "wb") as f:
        np.lib.format.write_array(f, array, version=(2, 0))
    np.testing.assert_array_equal(map_npy(path), array)


def test_truncated_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.npy"
    np.save(path, np.arange(100, dtype=np.int64))
    path.write_bytes(path.read_bytes()[:-8])
    with pytest.raises(ValueError, match="size does not match"):
        map_npy(path)


def test_fortran_ordered_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.npy"
    np.save(path, np.asfortranarray(np.arange(12.0).reshape(3, 4)))
    with pytest.raises(ValueError, match="C-ordered"):
        map_npy(path)


def test_dropping_from_the_page_cache_keeps_the_contents(tmp_path: Path) -> None:
    path = tmp_path / "a.npy"
    array = np.arange(HUGE_PAGE // 8 + 5, dtype=np.int64)
    np.save(path, array)
    drop_cached(path)
    np.testing.assert_array_equal(map_npy(path), array)


def _huge_bytes_of_plain_mapping(path: Path, small_pages_first: bool) -> int | None:
    """How much of a fresh read-only mapping of `path`, advised into huge pages, is in 2 MiB pages."""
    drop_cached(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        if small_pages_first:  # one byte of every 4 KiB page without readahead: small pages in the cache
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
            for offset in range(0, os.path.getsize(path), 4096):
                os.pread(fd, 1, offset)
        region = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    finally:
        os.close(fd)
    region.madvise(mmap.MADV_HUGEPAGE)
    region.madvise(getattr(mmap, "MADV_POPULATE_READ", 22))
    view = np.frombuffer(region, dtype=np.uint8)
    covered = huge_mapped_bytes(view.ctypes.data)
    del view
    region.close()
    return covered


@pytest.mark.skipif(sys.platform != "linux", reason="huge pages of files are a Linux matter")
def test_a_file_cached_in_small_pages_is_read_again_into_huge_pages(tmp_path: Path) -> None:
    array = np.arange(16 * HUGE_PAGE // 8, dtype=np.int64)
    path = tmp_path / "forest.npy"
    np.save(path, array)
    whole = (16 - 2) * HUGE_PAGE  # the first and last 2 MiB may be unaligned
    if (_huge_bytes_of_plain_mapping(path, small_pages_first=False) or 0) < 0.9 * whole:
        pytest.skip("this system maps no file in huge pages")
    if (_huge_bytes_of_plain_mapping(path, small_pages_first=True) or 0) >= 0.9 * whole:
        pytest.skip("this system reads files back in huge pages whatever the page cache held")
    mapped = map_npy(path)  # the page cache holds the file in small pages, as the last call left it
    got = huge_mapped_bytes(mapped.ctypes.data) or 0
    if got < 0.9 * whole and (_huge_bytes_of_plain_mapping(path, small_pages_first=False) or 0) < 0.9 * whole:
        pytest.skip("the system ran out of free huge pages during the test (memory fragmented)")
    assert got >= 0.9 * whole
    np.testing.assert_array_equal(mapped, array)
