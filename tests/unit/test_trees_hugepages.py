"""Mapping cached `.npy` arrays: the same values as numpy reads, never a half-read array."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scorer.trees.hugepages import HUGE_PAGE, drop_cached, map_npy


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
