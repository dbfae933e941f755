"""The typed usage snippets also run."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from typing import Any


def load() -> Any:
    path = Path(__file__).resolve().parents[1] / "typing" / "usage.py"
    spec = importlib.util.spec_from_file_location("usage_snippets", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_library_snippets_run_and_trace() -> None:
    usage = load()
    usage.test_my_code()
    assert asyncio.run(usage.fetch()) == "ok"


def test_exporter_snippet_receives_spans(capsys: Any) -> None:
    usage = load()
    usage.use_my_exporter()
    usage.handle(1)
    assert "db.query" in capsys.readouterr().out
