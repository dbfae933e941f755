"""Regenerate the checked-in gRPC code from ``helloworld.proto`` (needs ``grpcio-tools``).

    python examples/helloworld/generate.py

The code is generated from the repository root, so the generated modules import each other as
``examples.helloworld.helloworld_pb2``.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main() -> int:
    """Run ``protoc`` with the Python, type-stub and gRPC plugins; its exit status."""
    from grpc_tools import protoc  # type: ignore[import-untyped]

    root = Path(__file__).resolve().parents[2]
    return int(protoc.main([
        "grpc_tools.protoc",
        f"--proto_path={root}",
        f"--python_out={root}",
        f"--pyi_out={root}",
        f"--grpc_python_out={root}",
        str(Path("examples", "helloworld", "helloworld.proto")),
    ]))


if __name__ == "__main__":
    sys.exit(main())
