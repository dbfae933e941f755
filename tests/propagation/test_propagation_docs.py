"""The custom propagator example in docs/propagation.md works, registered by entry point too."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest

import tracing_api as tracing
from tracing_api.context import EMPTY_CONTEXT
from tracing_api.propagation import DICT, Propagator

DOC = Path(__file__).resolve().parents[2] / "docs" / "propagation.md"


def _example_source() -> str:
    blocks: List[str] = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    return next(block for block in blocks if "class RequestIdPropagator" in block)


def _example() -> Any:
    namespace: Dict[str, Any] = {}
    exec(compile(_example_source(), str(DOC), "exec"), namespace)
    return namespace["RequestIdPropagator"]


def test_docs_example_round_trips_its_header() -> None:
    propagator = _example()()
    assert isinstance(propagator, Propagator)
    carrier: Dict[str, Any] = {}
    propagator.inject(EMPTY_CONTEXT.with_baggage({"request.id": "r-1"}), carrier, DICT)
    assert carrier == {"x-request-id": "r-1"}
    assert propagator.extract({"X-Request-Id": "r-1"}, EMPTY_CONTEXT, DICT).baggage == {
        "request.id": "r-1"}


def test_docs_example_registers_through_entry_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "my_package"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "request_id.py").write_text(_example_source())
    info = tmp_path / "my_package-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-package\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[tracing_api.propagators]\nrequest_id = my_package.request_id:RequestIdPropagator\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_package", raising=False)
    monkeypatch.setenv("TRACING_PROPAGATORS", "tracecontext,request_id")
    tracing.configure(exporter="memory")
    assert tracing.extract({"x-request-id": "r-2"}).baggage == {"request.id": "r-2"}
