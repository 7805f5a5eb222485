"""Keeping a packed forest in 2 MiB pages, so that walking it does not miss the TLB at every node.

A packed forest is hundreds of MB walked at random: with 4 KiB pages nearly every node visit also
misses the TLB. Two ways to huge pages:

- **Shared (the default)**: a cached `.npy` file memory-mapped as usual, with the kernel asked for huge
  pages on that mapping and the file read in at once. Where the filesystem's page cache holds large
  folios (measured on Linux 6.18 with ext4), the file then sits in the page cache in 2 MiB folios,
  mapped by every process with 2 MiB entries: one shared copy, huge pages included. On the
  seed-scale forest (24M nodes, 366 MB, 2-core VM), kernel alone, single row avg ~0.13 → ~0.08 ms and
  batch-of-64 ~10k → ~15k rows/s. A file already cached in small folios (just written, or partly
  reclaimed and read back piecemeal) stays in small pages, hence `drop_cached` after a cache entry is
  written, and `map_npy` reading a partly small-paged file again. Elsewhere the advice is ignored.
- **Private (`RTSCORE_HUGE_PAGES=1`)**: an anonymous copy in transparent huge pages, for systems whose
  page cache cannot hold large folios; it costs one copy per process.
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import os
import sys
from pathlib import Path

import numpy as np

HUGE_PAGE = 2 << 20
# Linux 5.14+: fault a whole range in at once. Python names it only from 3.13 on.
_MADV_POPULATE_READ = getattr(mmap, "MADV_POPULATE_READ", 22)


def map_npy(path: Path) -> np.ndarray:
    """A read-only array memory-mapped from a `.npy` file, arrays of 2 MiB and more advised into huge
    pages and read in now (so the first rows scored do not fault the forest in page by page).

    When the page cache holds such a file partly in small pages (reclaimed, then read back piecemeal),
    it is dropped from the cache and read again, once, unless other processes keep it mapped.

    Raises ValueError for a file that is not a C-ordered `.npy` array, OSError when it cannot be read.
    """
    array, region = _map(path)
    if region is not None and sys.platform == "linux":
        _advise(region)
        if _needs_rereading(array, region):
            del array
            region.close()
            drop_cached(path)
            array, region = _map(path)
            if region is not None:
                _advise(region)
    return array


def _map(path: Path) -> tuple[np.ndarray, mmap.mmap | None]:
    """The array and its mapping (None for small or empty arrays, which need no advice)."""
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f"{path}: .npy format version {version} is not supported")
        if fortran_order or dtype.hasobject:
            raise ValueError(f"{path}: not a C-ordered array of plain values")
        offset = f.tell()
        count = int(np.prod(shape, dtype=np.int64))
        if offset + count * dtype.itemsize != os.fstat(f.fileno()).st_size:
            raise ValueError(f"{path}: size does not match the array header")
        if count == 0:
            empty = np.empty(shape, dtype=dtype)
            empty.flags.writeable = False
            return empty, None
        region = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    array = np.frombuffer(region, dtype=dtype, count=count, offset=offset).reshape(shape)
    return array, region if count * dtype.itemsize >= HUGE_PAGE else None


def _advise(region: mmap.mmap) -> None:
    # advice only: kernels or filesystems without it leave the mapping in ordinary pages
    for advice in (mmap.MADV_HUGEPAGE, _MADV_POPULATE_READ):
        with contextlib.suppress(OSError):
            region.madvise(advice)


def _needs_rereading(array: np.ndarray, region: mmap.mmap) -> bool:
    """Whether the system maps files in huge pages but maps less than 90% of this one so.

    Partly small pages cost the kernel up to 1.35x per row on the seed forest (measured after the page
    cache had been partly reclaimed: 60% of it in 2 MiB pages)."""
    mapped = huge_mapped_bytes(array.ctypes.data)
    if mapped is None:
        return False
    if mapped == 0 and not _file_huge_pages_in_use():
        return False  # the filesystem maps nothing in huge pages: nothing to repair
    # the first and last 2 MiB of a mapping may be unaligned: a full mapping covers the pages between
    return mapped < 0.9 * max(len(region) // HUGE_PAGE - 2, 1) * HUGE_PAGE


def huge_mapped_bytes(address: int) -> int | None:
    """Bytes of this process's file mapping around `address` mapped in 2 MiB pages; None if unknown."""
    try:
        with open("/proc/self/smaps") as smaps:
            inside = False
            for line in smaps:
                if "-" in line and line[0] in "0123456789abcdef" and " " in line:
                    start, _, end = line.split(" ", 1)[0].partition("-")
                    inside = int(start, 16) <= address < int(end, 16)
                elif inside and line.startswith("FilePmdMapped:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def _file_huge_pages_in_use() -> bool:
    try:
        with open("/proc/meminfo") as meminfo:
            return any(line.startswith("FileHugePages:") and int(line.split()[1]) > 0 for line in meminfo)
    except (OSError, ValueError):
        return False


def drop_cached(path: Path) -> None:
    """Write `path` to disk and drop it from the page cache, so the next mapping reads it back whole
    (in large folios where the filesystem allows) rather than from the small pages its writing left."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def huge_page_copy(array: np.ndarray) -> np.ndarray:
    """`array` copied into anonymous memory aligned to 2 MiB and advised to use huge pages.

    Where the kernel grants none (THP off), the copy still works, in ordinary pages.
    """
    size = max(array.nbytes, 1)
    buffer = mmap.mmap(-1, size + HUGE_PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    offset = -ctypes.addressof(ctypes.c_char.from_buffer(buffer)) % HUGE_PAGE
    if hasattr(mmap, "MADV_HUGEPAGE"):
        buffer.madvise(mmap.MADV_HUGEPAGE, offset, size)
    copy = np.frombuffer(buffer, dtype=array.dtype, count=array.size, offset=offset).reshape(array.shape)
    copy[...] = array
    copy.flags.writeable = False
    return copy
