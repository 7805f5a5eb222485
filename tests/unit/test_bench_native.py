"""How the native load client is fed: the request file's framing and the command line of one process."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

# protobuf's own varint reader (ghz and Go's protodelim read the same framing); its stubs omit it
from google.protobuf.internal.decoder import _DecodeVarint  # type: ignore[attr-defined]

from benchmarks.loadgen import LoadSpec
from benchmarks.native import command, write_requests


def test_request_file_is_length_delimited_for_every_size(tmp_path: Path) -> None:
    messages = [b"", b"x", b"a" * 127, b"b" * 128, b"c" * 300, bytes(range(256)) * 300]
    path = tmp_path / "requests.bin"
    write_requests(messages, path)
    data, position, read = path.read_bytes(), 0, []
    while position < len(data):
        size, position = _DecodeVarint(data, position)
        read.append(data[position : position + size])
        position += size
    assert read == messages


def test_command_carries_the_spec() -> None:
    spec = LoadSpec("127.0.0.1:5", rate=250.5, duration=3.0, warmup=0.5, channels=3, seed=7, timeout=0.25)
    args = command(Path("/bin/loadgen"), spec, Path("r.bin"), Path("o.json"), Path("t.bin"))

    def value(option: str) -> str:
        return args[args.index(option) + 1]

    assert value("--method") == "/rtscore.v1.Scorer/Score"
    assert (value("--rate"), value("--duration"), value("--warmup")) == ("250.5", "3.0", "0.5")
    assert (value("--channels"), value("--seed"), value("--timeout")) == ("3", "7", "0.25")
    assert (value("--requests"), value("--out"), value("--timeline")) == ("r.bin", "o.json", "t.bin")
    assert "--count" not in args
    assert "--ca" not in args
    closed = replace(spec, mode="closed", duration=None, count=40, ca=Path("ca.pem"), method="/x.Y/Z")
    args = command(Path("/bin/loadgen"), closed, Path("r.bin"), Path("o.json"), Path("t.bin"))
    assert (value("--mode"), value("--count"), value("--ca"), value("--method")) == (
        "closed", "40", "ca.pem", "/x.Y/Z"
    )  # fmt: skip
    assert "--duration" not in args
