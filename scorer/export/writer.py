"""Write an op graph as a Bundle.ML zip file or directory, in MLeap's json or protobuf format."""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import shutil
import uuid
import zipfile
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rtscore.errors import InvalidArgument
from scorer.export.graph import OpModel, OpNode
from scorer.export.values import model_json, node_json

FORMATS = ("protobuf", "json")
# The Bundle.ML version rtscore writes: the MLeap runtime it is checked against reads this layout.
BUNDLE_VERSION = "0.20.0"


def _pretty(obj: Any) -> bytes:
    return json.dumps(obj, indent=2).encode("utf-8")


# A file's path and the call that makes its bytes; calls may run on worker threads.
LazyFile = tuple[str, Callable[[], bytes]]


def _ready(data: bytes) -> Callable[[], bytes]:
    return lambda: data


def _encoded(message: Any, fmt: str, as_json: Callable[[Any], dict[str, Any]]) -> Callable[[], bytes]:
    return _ready(message.SerializeToString() if fmt == "protobuf" else _pretty(as_json(message)))


def _model_files(model: OpModel, prefix: str, fmt: str) -> Iterator[LazyFile]:
    ext = "pb" if fmt == "protobuf" else "json"
    yield f"{prefix}model.{ext}", _encoded(model.to_pb(), fmt, model_json)
    for stem, produce in model.files.items():
        yield f"{prefix}{stem}.{ext}", functools.partial(produce, fmt)
    for name, sub in model.submodels.items():
        yield from _model_files(sub, f"{prefix}{name}/", fmt)


def _node_files(node: OpNode, prefix: str, fmt: str) -> Iterator[LazyFile]:
    yield from _model_files(node.model, prefix, fmt)
    ext = "pb" if fmt == "protobuf" else "json"
    yield f"{prefix}node.{ext}", _encoded(node.to_pb(), fmt, node_json)
    for child in node.children:
        yield from _node_files(child, f"{prefix}{child.name}.node/", fmt)


def bundle_files(root: OpNode, name: str, fmt: str) -> Iterator[LazyFile]:
    """Every file of the bundle as (relative path, call making its bytes), `bundle.json` first."""
    if fmt not in FORMATS:
        raise InvalidArgument(f"unknown bundle format {fmt!r}; expected one of {', '.join(FORMATS)}")
    info = {
        "uid": str(uuid.uuid4()),
        "name": name,
        "format": fmt,
        "version": BUNDLE_VERSION,
        "timestamp": dt.datetime.now().isoformat(timespec="milliseconds"),
    }
    yield "bundle.json", _ready(_pretty(info))
    yield from _node_files(root, "root/", fmt)


def _prefetched(files: Iterator[LazyFile], workers: int = 2, window: int = 8) -> Iterator[tuple[str, bytes]]:
    """Make file bytes on worker threads a few files ahead of the writer, in order.

    The tree encoder releases the GIL and so does zlib, so encoding overlaps compression; the
    window bounds how many encoded trees wait in memory.
    """
    pending: deque[tuple[str, Future[bytes]]] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bundle-file") as pool:
        for path, make in files:
            pending.append((path, pool.submit(make)))
            if len(pending) >= window:
                done_path, future = pending.popleft()
                yield done_path, future.result()
        while pending:
            done_path, future = pending.popleft()
            yield done_path, future.result()


def _parents(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) + "/" for i in range(len(parts))]


def write_bundle(root: OpNode, out: Path, *, name: str, fmt: str) -> Path:
    """Write the bundle to `out`: a zip file when the name ends in `.zip`, else a directory."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    files = _prefetched(bundle_files(root, name, fmt))
    try:
        if out.suffix == ".zip":
            _write_zip(files, tmp)
        else:
            _write_dir(files, tmp)
        # Replace in one step so a reader never sees half a bundle.
        if out.is_dir():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp)
        elif tmp.exists():
            tmp.unlink()
    return out


def _write_zip(files: Iterator[tuple[str, bytes]], target: Path) -> None:
    seen: set[str] = set()
    # Level 1 deflate: tree files shrink well and a 24M-node forest still zips in seconds.
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for path, data in files:
            for parent in _parents(path):
                if parent not in seen:
                    seen.add(parent)
                    zf.writestr(zipfile.ZipInfo(parent), b"")
            zf.writestr(path, data)


def _write_dir(files: Iterator[tuple[str, bytes]], target: Path) -> None:
    for path, data in files:
        dest = target / path
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
