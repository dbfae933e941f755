"""The traced helloworld, run as users run it: one trace per call, client -> greeter -> backend."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

ROOT = Path(__file__).resolve().parents[3]


def run_demo(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the demo from the repository root, bounded in time."""
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=60,
        check=False,
    )


def traces(path: Path) -> Dict[str, List[Dict[str, Any]]]:
    """The spans of a jsonl file grouped by trace id."""
    grouped: Dict[str, List[Dict[str, Any]]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        span = json.loads(line)
        grouped.setdefault(span["trace_id"], []).append(span)
    return grouped


def chain(spans: List[Dict[str, Any]]) -> List[str]:
    """The trace as ``KIND name`` from its root down, following the only child at each level."""
    by_parent: Dict[Any, List[Dict[str, Any]]] = {}
    for span in spans:
        by_parent.setdefault(span["parent_span_id"], []).append(span)
    assert len(by_parent.get(None, [])) == 1, spans
    path = []
    current = by_parent[None][0]
    while True:
        path.append(f"{current['kind']} {current['name']}")
        children = by_parent.get(current["span_id"], [])
        assert len(children) <= 1, children
        if not children:
            return path
        current = children[0]


EXPECTED = [
    "CLIENT helloworld.Greeter/SayHello",
    "SERVER helloworld.Greeter/SayHello",
    "CLIENT GET",
    "SERVER GET /greeting",
    "INTERNAL compose greeting",
]


def test_demo_makes_one_three_hop_trace_per_call(tmp_path: Path) -> None:
    output = tmp_path / "spans.jsonl"
    done = run_demo("-m", "examples.helloworld", "--exporter", "jsonl", "--output", str(output))
    assert done.returncode == 0, done.stderr
    found = traces(output)
    assert len(found) == 3
    for spans in found.values():
        assert chain(spans) == EXPECTED


def test_demo_runs_as_a_file_too(tmp_path: Path) -> None:
    output = tmp_path / "spans.jsonl"
    done = run_demo("examples/helloworld/run.py", "--exporter", "jsonl", "--output", str(output),
                    "--name", "Barbara")
    assert done.returncode == 0, done.stderr
    assert "greeter answered: Hello, Barbara!" in done.stdout
    [spans] = traces(output).values()
    assert chain(spans) == EXPECTED


def test_demo_draws_its_traces_on_the_console_by_default() -> None:
    done = run_demo("-m", "examples.helloworld", "--name", "Ada")
    assert done.returncode == 0, done.stderr
    for line in ("helloworld.Greeter/SayHello [client]", "helloworld.Greeter/SayHello [server]",
                 "GET [client]", "GET /greeting [server]", "compose greeting"):
        assert line in done.stderr
    assert "5 spans exported above" in done.stdout


def test_demo_refuses_output_without_the_jsonl_exporter() -> None:
    done = run_demo("-m", "examples.helloworld", "--output", "x.jsonl")
    assert done.returncode == 2
    assert "--output goes with --exporter jsonl" in done.stderr


def test_demo_fails_when_the_backend_refuses_every_span() -> None:
    from tracing_api.testing import RecordingServer, Reply

    with RecordingServer(default=Reply(400)) as zipkin:
        done = run_demo("-m", "examples.helloworld", "--exporter", "zipkin",
                        "--endpoint", zipkin.url + "/api/v2/spans")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "0 spans exported to zipkin; 15 dropped" in done.stdout
    assert "(the exporter did not confirm delivery)" in done.stdout
