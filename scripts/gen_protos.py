"""Regenerate the committed Python modules and stubs from protos/**/*.proto.

Usage: python scripts/gen_protos.py [OUT_DIR]   (default: protos/, in place)

protoc writes `from rtscore.v1 import frame_pb2`; the modules live in the `protos` package, so every
generated import is rewritten to `from protos.rtscore.v1 import frame_pb2`.
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
PACKAGES = ("rtscore", "ml")
IMPORT = re.compile(rf"^(from|import) ({'|'.join(PACKAGES)})([.\w]*)", re.MULTILINE)


def proto_files() -> list[Path]:
    """The .proto sources, in a stable order."""
    return sorted(p.relative_to(PROTO_ROOT) for p in PROTO_ROOT.rglob("*.proto"))


def generate(out_dir: Path) -> None:
    """Run protoc into out_dir and rewrite imports to the `protos` package."""
    with tempfile.TemporaryDirectory() as tmp:
        grpc_include = Path(protoc.__file__).parent / "_proto"
        args = [
            "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            f"-I{grpc_include}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
            *(str(p) for p in proto_files()),
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
        for path in sorted(Path(tmp).rglob("*.py*")):
            rel = path.relative_to(tmp)
            source = PROTO_ROOT / rel.parent / (rel.name.split("_pb2")[0] + ".proto")
            if rel.name.endswith("_grpc.py") and "\nservice " not in source.read_text():
                continue  # no service in this file: no grpc module
            target = out_dir / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(IMPORT.sub(r"\1 protos.\2\3", path.read_text()))
            for package in [target.parent, *target.parent.parents]:
                (package / "__init__.py").touch()
                if package == out_dir:
                    break


def main() -> None:
    """Entry point."""
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else PROTO_ROOT
    if out != PROTO_ROOT:
        shutil.rmtree(out, ignore_errors=True)
    generate(out)


if __name__ == "__main__":
    main()
