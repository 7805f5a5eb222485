"""The follower's bundle cache (verification, atomic files, one download across processes) and backoff."""

from __future__ import annotations

import asyncio
import hashlib
import random
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from protos.rtscore.v1 import registry_pb2 as pb
from registry.follow import Backoff, BundleCache, BundleRefused


class FakeRegistry:
    """Serves DownloadBundle from bytes in memory and counts the downloads."""

    def __init__(self, data: bytes, chunk: int = 7, pause: float = 0.0) -> None:
        self.data = data
        self.chunk = chunk
        self.pause = pause
        self.downloads = 0
        self._count = threading.Lock()

    def DownloadBundle(self, request: pb.VersionRef, **kwargs: Any) -> AsyncIterator[pb.BundleChunk]:  # noqa: N802
        with self._count:
            self.downloads += 1

        async def chunks() -> AsyncIterator[pb.BundleChunk]:
            for i in range(0, len(self.data), self.chunk):
                await asyncio.sleep(self.pause)
                yield pb.BundleChunk(data=self.data[i : i + self.chunk])
            yield pb.BundleChunk(sha256=hashlib.sha256(self.data).hexdigest())

        return chunks()


async def test_a_fetched_bundle_is_verified_and_named_by_its_sha256(tmp_path: Path) -> None:
    data = b"a bundle's bytes" * 10
    sha = hashlib.sha256(data).hexdigest()
    registry = FakeRegistry(data)
    cache = BundleCache(tmp_path)
    path = await cache.fetch(registry, (), "fraud", 1, sha)
    assert path == tmp_path / sha[:2] / f"{sha}.zip"
    assert path.read_bytes() == data
    assert await cache.fetch(registry, (), "fraud", 1, sha) == path
    assert registry.downloads == 1  # the second fetch is a cache hit


async def test_bytes_that_do_not_match_the_expected_sha256_are_refused_and_leave_nothing(
    tmp_path: Path,
) -> None:
    registry = FakeRegistry(b"tampered bytes")  # the sender's own checksum matches them; ours does not
    expected = hashlib.sha256(b"the registered bytes").hexdigest()
    cache = BundleCache(tmp_path)
    with pytest.raises(BundleRefused, match="does not match its sha256"):
        await cache.fetch(registry, (), "fraud", 2, expected)
    assert not cache.has(expected)
    left = [p.name for p in await asyncio.to_thread(lambda: list(tmp_path.rglob("*.*")))]
    assert [n for n in left if not n.endswith(".lock")] == []


def test_processes_sharing_a_cache_download_a_bundle_once(tmp_path: Path) -> None:
    # Each thread runs its own loop and cache object, as separate worker processes do: only the file
    # lock orders them.
    data = bytes(range(256)) * 40
    sha = hashlib.sha256(data).hexdigest()
    registry = FakeRegistry(data, chunk=512, pause=0.005)
    paths: list[Path] = []

    def worker() -> None:
        paths.append(asyncio.run(BundleCache(tmp_path).fetch(registry, (), "fraud", 1, sha)))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert registry.downloads == 1
    assert len(set(paths)) == 1
    assert paths[0].read_bytes() == data


def test_backoff_doubles_its_jittered_window_up_to_the_cap_and_resets() -> None:
    backoff = Backoff(initial=0.1, cap=1.0, rng=random.Random(3))
    windows = [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    delays = [backoff.next_delay() for _ in windows]
    assert all(0 <= d <= w for d, w in zip(delays, windows, strict=True))
    assert len(set(delays)) == len(delays)  # jittered, not a fixed schedule
    backoff.reset()
    assert backoff.next_delay() <= 0.1
