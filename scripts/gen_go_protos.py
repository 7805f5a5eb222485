"""Regenerate the committed Go stubs of the load generator from protos/rtscore/v1.

Usage: python scripts/gen_go_protos.py [OUT_DIR]   (default: benchmarks/goloadgen/rtscorepb, in place)

protoc is grpc_tools' (the same one scripts/gen_protos.py runs); the plugins protoc-gen-go and
protoc-gen-go-grpc are the pinned versions `./dev` installs next to this Python. The .proto files carry no
`go_package` option, so the Go import path of each is given on the command line (`M` options).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
MODULE = "rtscore/benchmarks/goloadgen"
PACKAGE = "rtscorepb"
DEFAULT_OUT = ROOT / "benchmarks" / "goloadgen" / PACKAGE
# The services the load generator drives, and what their messages import.
PROTOS = ("rtscore/v1/frame.proto", "rtscore/v1/scorer.proto", "rtscore/v1/extractor.proto")
PLUGINS = ("protoc-gen-go", "protoc-gen-go-grpc")


def plugin(name: str) -> Path | None:
    """The plugin installed beside this interpreter (the venv's bin), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return beside
    found = shutil.which(name)
    return Path(found) if found else None


def generate(out_dir: Path) -> None:
    """Run protoc with the Go plugins into out_dir (replaced whole)."""
    paths = {name: plugin(name) for name in PLUGINS}
    missing = [name for name, path in paths.items() if path is None]
    if missing:
        raise SystemExit(f"{', '.join(missing)} not found: ./dev installs them (it needs Go)")
    mappings = ",".join(f"M{p}={MODULE}/{PACKAGE};{PACKAGE}" for p in PROTOS)
    with tempfile.TemporaryDirectory() as tmp:
        grpc_include = Path(protoc.__file__).parent / "_proto"
        args = [
            "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            f"-I{grpc_include}",
            *(f"--plugin={name}={path}" for name, path in paths.items()),
            f"--go_out={tmp}",
            f"--go_opt=module={MODULE},{mappings}",
            f"--go-grpc_out={tmp}",
            f"--go-grpc_opt=module={MODULE},{mappings}",
            *PROTOS,
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
        shutil.rmtree(out_dir, ignore_errors=True)
        shutil.copytree(Path(tmp) / PACKAGE, out_dir)


def main() -> None:
    """Entry point."""
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT)


if __name__ == "__main__":
    main()
