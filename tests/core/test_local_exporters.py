"""The built-in exporters: console tree, JSON lines, memory."""

from __future__ import annotations

import contextlib
import io
import json
from typing import Any

import tracing_api as tracing
from tracing_api._local import ConsoleExporter, JsonLinesExporter, MemoryExporter
from tracing_api.export import ExportResult
from tracing_api.testing import capture

tracer = tracing.get_tracer(__name__)


def test_console_prints_each_trace_as_a_tree_when_its_root_ends() -> None:
    out = io.StringIO()
    tracing.configure(exporter=ConsoleExporter(stream=out), processor="simple", service_name="svc")
    with tracer.span("request", kind=tracing.SpanKind.SERVER):
        with tracer.span("db", kind=tracing.SpanKind.CLIENT):
            pass
        assert out.getvalue() == ""  # the trace is not finished yet
        with tracer.span("render"):
            pass
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("trace ") and lines[0].endswith("(svc)")
    assert lines[1].startswith("└─ request [server]  ")
    assert lines[2].startswith("   ├─ db [client]  ")
    assert lines[3].startswith("   └─ render  ")
    assert all(line.endswith(" ms") for line in lines[1:])


def test_console_shows_errors_and_prints_unfinished_traces_at_shutdown() -> None:
    out = io.StringIO()
    exporter = ConsoleExporter(stream=out)
    tracing.configure(exporter=exporter, processor="simple")
    root = tracer.start_span("root")
    with tracing.use_span(root):
        try:
            with tracer.span("child"):
                raise ValueError("bad")
        except ValueError:
            pass
    assert out.getvalue() == ""
    tracing.shutdown()
    assert "child  " in out.getvalue()
    assert "ERROR: ValueError: bad" in out.getvalue()


def test_console_pending_spans_are_bounded() -> None:
    out = io.StringIO()
    exporter = ConsoleExporter(stream=out, max_pending=10)
    tracing.configure(exporter=exporter, processor="simple")
    root = tracer.start_span("root")
    for _ in range(25):
        tracer.start_span("child", parent=root).end()
    assert exporter._count <= 10
    assert out.getvalue().count("child") >= 15


def test_jsonl_writes_one_object_per_span(tmp_path: Any) -> None:
    path = tmp_path / "spans.jsonl"
    tracing.configure(exporter=JsonLinesExporter(str(path)), processor="simple")
    with tracer.span("a", attributes={"k": [1, 2]}) as a:
        a.add_event("e", {"x": "y"})
        with tracer.span("b"):
            pass
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["name"] for r in rows] == ["b", "a"]
    assert rows[0]["parent_span_id"] == rows[1]["span_id"]
    assert rows[1]["attributes"] == {"k": [1, 2]}
    assert rows[1]["events"][0]["attributes"] == {"x": "y"}
    assert len(rows[1]["trace_id"]) == 32 and len(rows[1]["span_id"]) == 16


def _strict(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def test_jsonl_writes_strict_json_for_nan_and_infinities(tmp_path: Any) -> None:
    path = tmp_path / "spans.jsonl"
    tracing.configure(exporter=JsonLinesExporter(str(path)), processor="simple")
    with tracer.span("ratio", attributes={"nan": float("nan")}) as span:
        span.set_attribute("limits", [1.5, float("inf"), float("-inf")])
        span.add_event("e", {"x": float("nan")})
    row = json.loads(path.read_text(encoding="utf-8"), parse_constant=_strict)
    assert row["attributes"] == {"nan": "NaN", "limits": [1.5, "Infinity", "-Infinity"]}
    assert row["events"][0]["attributes"] == {"x": "NaN"}


def test_jsonl_writes_a_lone_surrogate_as_a_json_escape_and_keeps_the_batch(tmp_path: Any) -> None:
    path = tmp_path / "spans.jsonl"
    exporter = JsonLinesExporter(str(path))
    tracing.configure(exporter=exporter, processor="simple")
    with tracer.span("bad", attributes={"user.input": "abc\ud800", "city": "Zürich"}):
        pass
    with tracer.span("good"):
        pass
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [r["name"] for r in rows] == ["bad", "good"]
    assert rows[0]["attributes"] == {"user.input": "abc\ud800", "city": "Zürich"}
    assert tracing.stats()["failed"] == 0


def test_jsonl_to_a_stream_that_is_not_utf8_writes_ascii_escapes() -> None:
    stream = io.TextIOWrapper(io.BytesIO(), encoding="ascii")  # standard output, ASCII locale
    exporter = JsonLinesExporter("-")
    with contextlib.redirect_stdout(stream):
        assert exporter.export([_one_span("Zürich")]) is ExportResult.SUCCESS
    stream.seek(0)
    assert json.loads(stream.read())["name"] == "Zürich"


def test_jsonl_to_stdout_writes_to_the_standard_output_of_each_export() -> None:
    exporter = JsonLinesExporter("-")
    first, second = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(first):
        assert exporter.export([_one_span("one")]) is ExportResult.SUCCESS
    first.close()  # as a test runner closes the output it captured
    with contextlib.redirect_stdout(second):
        assert exporter.export([_one_span("two")]) is ExportResult.SUCCESS
    assert json.loads(second.getvalue())["name"] == "two"


def test_jsonl_to_a_closed_stdout_reports_failure() -> None:
    exporter = JsonLinesExporter("-")
    closed = io.StringIO()
    closed.close()
    with contextlib.redirect_stdout(closed):
        assert exporter.export([_one_span("lost")]) is ExportResult.FAILURE


def _one_span(name: str) -> Any:
    with capture() as captured, tracer.span(name):
        pass
    return captured.spans[0]


def test_jsonl_reports_failure_for_an_unwritable_path(tmp_path: Any) -> None:
    exporter = JsonLinesExporter(str(tmp_path / "missing-dir" / "x.jsonl"))
    tracing.configure(exporter=exporter, processor="simple")
    with tracer.span("a"):
        pass
    assert tracing.stats()["failed"] == 1


def test_memory_keeps_at_most_max_spans_and_fails_after_shutdown() -> None:
    exporter = MemoryExporter(max_spans=3)
    tracing.configure(exporter=exporter, processor="simple")
    for i in range(5):
        with tracer.span(f"s{i}"):
            pass
    assert [s.name for s in exporter.spans] == ["s2", "s3", "s4"]
    exporter.shutdown()
    assert exporter.export([]) is ExportResult.FAILURE


def test_console_prints_a_trace_deeper_than_the_recursion_limit() -> None:
    import sys as _sys

    out = io.StringIO()
    tracing.configure(exporter=ConsoleExporter(stream=out), processor="simple")
    depth = _sys.getrecursionlimit() + 200
    spans = [tracer.start_span("root", parent=None)]
    for i in range(depth):
        spans.append(tracer.start_span(f"level-{i}", parent=spans[-1]))
    for span in reversed(spans):
        span.end()
    lines = out.getvalue().splitlines()
    assert len(lines) == depth + 2  # the trace header, the root, every level
    assert lines[-1].lstrip(" └├│─").startswith(f"level-{depth - 1}")
    assert tracing.stats()["failed"] == 0


def test_console_prints_every_trace_when_one_name_cannot_be_encoded(tmp_path: Any) -> None:
    path = tmp_path / "out.txt"
    with open(path, "w", encoding="utf-8") as stream:  # strict: no surrogates
        tracing.configure(exporter=ConsoleExporter(stream=stream))
        for name in ("GET /caf\udce9", "GET /ok0", "GET /ok1"):
            with tracer.span(name):
                pass
        assert tracing.force_flush(10.0)
    text = path.read_text(encoding="utf-8")
    assert "GET /caf\\udce9" in text and "GET /ok0" in text and "GET /ok1" in text
    assert tracing.stats()["failed"] == 0
