"""The on-disk forest cache: round trips, hits without recompiling, and rebuilds of bad entries."""

from __future__ import annotations

import json
import mmap
from pathlib import Path

import numpy as np
import pytest

from scorer.trees import ForestCache, Tree, compile_forest, default_cache
from tests.unit.test_trees_kernel import random_rows, random_tree


def mapped_from(array: np.ndarray) -> object:
    """What an array's memory comes from, at the end of its chain of views."""
    owner: object = array
    while isinstance(owner, np.ndarray):
        owner = owner.base
    return owner.obj if isinstance(owner, memoryview) else owner


class CountingTrees:
    """The trees callable, counting how often the cache asks for the trees."""

    def __init__(self, trees: list[Tree]) -> None:
        self.trees = trees
        self.calls = 0

    def __call__(self) -> list[Tree]:
        self.calls += 1
        return self.trees


@pytest.fixture
def trees() -> CountingTrees:
    """A small random forest with categorical splits."""
    rng = np.random.default_rng(21)
    return CountingTrees([random_tree(rng, n_features=4, k=2, max_depth=7) for _ in range(12)])


def test_hit_memory_maps_the_entry_without_calling_trees(tmp_path: Path, trees: CountingTrees) -> None:
    cache = ForestCache(tmp_path)
    weights = np.linspace(0.5, 1.5, len(trees.trees))
    rows = random_rows(np.random.default_rng(0), 200, 4)
    expected = compile_forest(trees.trees, weights).sum_leaves(rows)
    first = cache.get_or_compile("model/v1:forest", trees, weights)
    second = cache.get_or_compile("model/v1:forest", trees, weights)
    assert trees.calls == 1
    assert isinstance(mapped_from(second.arrays.nodes), mmap.mmap)
    assert not second.arrays.nodes.flags.writeable
    np.testing.assert_array_equal(first.sum_leaves(rows), expected)
    np.testing.assert_array_equal(second.sum_leaves(rows), expected)


def test_truncated_entry_is_rebuilt(tmp_path: Path, trees: CountingTrees) -> None:
    cache = ForestCache(tmp_path)
    rows = random_rows(np.random.default_rng(1), 100, 4)
    expected = cache.get_or_compile("k", trees, None).sum_leaves(rows)
    nodes = cache.entry_path("k") / "nodes.npy"
    nodes.write_bytes(nodes.read_bytes()[:-16])
    rebuilt = cache.get_or_compile("k", trees, None)
    assert trees.calls == 2
    np.testing.assert_array_equal(rebuilt.sum_leaves(rows), expected)
    cache.get_or_compile("k", trees, None)
    assert trees.calls == 2


@pytest.mark.parametrize("damage", ["garbled manifest", "missing array", "wrong shape", "overwritten node"])
def test_damaged_entry_is_not_trusted(tmp_path: Path, trees: CountingTrees, damage: str) -> None:
    cache = ForestCache(tmp_path)
    cache.get_or_compile("k", trees, None)
    folder = cache.entry_path("k")
    if damage == "garbled manifest":
        (folder / "manifest.json").write_text("{not json")
    elif damage == "missing array":
        (folder / "values.npy").unlink()
    elif damage == "overwritten node":  # sizes and manifest intact: only the node check sees it
        nodes = np.load(folder / "nodes.npy", mmap_mode="r+")
        nodes[0, 1] = np.iinfo(np.int32).max
        nodes.flush()
        del nodes
    else:
        manifest = json.loads((folder / "manifest.json").read_text())
        manifest["arrays"]["roots"]["shape"] = [1]
        (folder / "manifest.json").write_text(json.dumps(manifest))
    rows = random_rows(np.random.default_rng(3), 50, 4)
    rebuilt = cache.get_or_compile("k", trees, None)
    assert trees.calls == 2
    expected = compile_forest(trees.trees, None).sum_leaves(rows)
    np.testing.assert_array_equal(rebuilt.sum_leaves(rows), expected)


def test_other_weights_do_not_reuse_an_entry(tmp_path: Path, trees: CountingTrees) -> None:
    cache = ForestCache(tmp_path)
    rows = random_rows(np.random.default_rng(2), 50, 4)
    ones = cache.get_or_compile("k", trees, None).sum_leaves(rows)
    doubled = cache.get_or_compile("k", trees, np.full(len(trees.trees), 2.0)).sum_leaves(rows)
    assert trees.calls == 2
    np.testing.assert_array_equal(doubled, 2.0 * ones)


def test_no_staging_folders_are_left_behind(tmp_path: Path, trees: CountingTrees) -> None:
    cache = ForestCache(tmp_path)
    cache.get_or_compile("a", trees, None)
    (cache.entry_path("a") / "manifest.json").write_text("{}")
    cache.get_or_compile("a", trees, None)
    assert [p.name for p in tmp_path.iterdir()] == [cache.entry_path("a").name]


def test_default_cache_follows_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RTSCORE_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache().directory == tmp_path / "c"
    monkeypatch.delenv("RTSCORE_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache().directory == tmp_path / ".cache" / "rtscore"


def test_huge_page_forests_are_private_aligned_copies_that_score_alike(
    tmp_path: Path, trees: CountingTrees
) -> None:
    rows = random_rows(np.random.default_rng(3), 200, 4)
    shared = ForestCache(tmp_path).get_or_compile("k", trees, None)
    private = ForestCache(tmp_path, huge_pages=True).get_or_compile("k", trees, None)
    assert trees.calls == 1
    assert private.arrays.nodes.ctypes.data != shared.arrays.nodes.ctypes.data
    assert private.arrays.nodes.ctypes.data % (2 << 20) == 0
    assert not private.arrays.nodes.flags.writeable
    np.testing.assert_array_equal(private.sum_leaves(rows), shared.sum_leaves(rows))


def test_huge_pages_are_chosen_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RTSCORE_HUGE_PAGES", "1")
    assert default_cache().huge_pages
    monkeypatch.setenv("RTSCORE_HUGE_PAGES", "0")
    assert not default_cache().huge_pages


def test_an_entry_another_process_wrote_meanwhile_is_kept_not_replaced(
    tmp_path: Path, trees: CountingTrees
) -> None:
    # Two scorers started together on a new bundle both miss and compile; the second to store must keep
    # the first one's entry (the first may be mapping it already), not move it aside and write its own.
    first, second = ForestCache(tmp_path), ForestCache(tmp_path)
    missed = second._load("k", "none")  # the second process looked before the first one stored
    assert missed is None
    forest = first.get_or_compile("k", trees, None)
    folder = first.entry_path("k")
    inode = folder.stat().st_ino
    rows = random_rows(np.random.default_rng(4), 50, 4)
    from scorer.trees.forest import pack_forest

    second._store("k", "none", pack_forest(trees.trees, None))
    assert folder.stat().st_ino == inode
    np.testing.assert_array_equal(
        second.get_or_compile("k", trees, None).sum_leaves(rows), forest.sum_leaves(rows)
    )
    assert trees.calls == 1
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]
