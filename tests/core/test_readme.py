"""The README's example runs as written."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_readme_has_the_two_commands_first() -> None:
    first_block = re.search(r"```sh\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands == ["make demo", "make test"]


def test_readme_example_prints_its_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    import tracing_api as tracing

    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    (block,) = python_blocks()
    exec(compile(block, str(README), "exec"), {"__name__": "readme"})
    tracing.shutdown()
    out = stream.getvalue()
    assert "(greeter)" in out
    assert re.search(r"└─ handle \[server\]  [\d.]+ ms\n   └─ db.query  [\d.]+ ms", out), out
