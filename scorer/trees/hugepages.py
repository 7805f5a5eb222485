"""Keeping a packed forest in 2 MiB pages, so that walking it does not miss the TLB at every node.

A packed forest is hundreds of MB walked at random: with 4 KiB pages nearly every node visit also
misses the TLB. Two ways to huge pages:

- **Shared (the default)**: a cached `.npy` file memory-mapped as usual, with the kernel asked for huge
  pages on that mapping and the file read in at once. Where the filesystem's page cache holds large
  folios (measured on Linux 6.18 with ext4), the file then sits in the page cache in 2 MiB folios,
  mapped by every process with 2 MiB entries: one shared copy, huge pages included. On the
  seed-scale forest (24M nodes, 366 MB, 2-core VM), kernel alone, single row avg ~0.13 → ~0.08 ms and
  batch-of-64 ~10k → ~15k rows/s. A file already cached in small folios (just written, say) stays
  in small pages, hence `drop_cached` after a cache entry is written. Elsewhere the advice is ignored.
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

    Raises ValueError for a file that is not a C-ordered `.npy` array, OSError when it cannot be read.
    """
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
            return empty
        region = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    if count * dtype.itemsize >= HUGE_PAGE and sys.platform == "linux":
        # advice only: kernels or filesystems without it leave the mapping in ordinary pages
        for advice in (mmap.MADV_HUGEPAGE, _MADV_POPULATE_READ):
            with contextlib.suppress(OSError):
                region.madvise(advice)
    return np.frombuffer(region, dtype=dtype, count=count, offset=offset).reshape(shape)


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
