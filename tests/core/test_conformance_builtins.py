"""The built-in exporters (console, jsonl, memory) pass the exporter conformance kit."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, List

import pytest

import tracing_api as tracing
from tracing_api import _plugins
from tracing_api.export import ExportResult, PartialSuccess, SpanData
from tracing_api.testing import check_exporter, representative_spans


def _by_name(name: str, **options: Any) -> Any:
    """The exporter factory the entry point ``name`` names, as configure() finds it."""
    factory = _plugins.load(_plugins.EXPORTERS, name)
    return lambda: factory(**options)


def test_memory_exporter_passes_the_kit() -> None:
    made: List[Any] = []

    def make() -> Any:
        made.append(_by_name("memory")())
        return made[-1]

    check_exporter(make, received=lambda: [s.context.span_id for m in made for s in m.spans])


def test_console_exporter_passes_the_kit() -> None:
    stream = io.StringIO()
    check_exporter(_by_name("console", stream=stream))
    assert "GET /users/{id} [server]" in stream.getvalue()


def test_jsonl_exporter_passes_the_kit(tmp_path: Path) -> None:
    path = tmp_path / "spans.jsonl"

    def written() -> List[str]:
        return [json.loads(line)["span_id"] for line in path.read_text("utf-8").splitlines()]

    check_exporter(_by_name("jsonl", path=str(path)), received=written)


def test_kit_reports_an_exporter_that_raises() -> None:
    class Raising:
        def export(self, spans: Any) -> ExportResult:
            raise RuntimeError("boom")

        def force_flush(self, timeout: float = 30.0) -> bool:
            return True

        def shutdown(self) -> None:
            pass

    with pytest.raises(AssertionError, match="raised RuntimeError: boom"):
        check_exporter(Raising)


def test_kit_reports_an_exporter_that_still_succeeds_after_shutdown() -> None:
    class Immortal:
        def export(self, spans: Any) -> ExportResult:
            return ExportResult.SUCCESS

        def force_flush(self, timeout: float = 30.0) -> bool:
            return True

        def shutdown(self) -> None:
            pass

    with pytest.raises(AssertionError, match=r"export\(\) after shutdown\(\) returned"):
        check_exporter(Immortal)


def test_kit_reports_an_export_that_hangs() -> None:
    import threading

    release = threading.Event()

    class Hanging:
        def export(self, spans: Any) -> ExportResult:
            release.wait(5.0)
            return ExportResult.SUCCESS

        def force_flush(self, timeout: float = 30.0) -> bool:
            return True

        def shutdown(self) -> None:
            release.set()

    with pytest.raises(AssertionError, match=r"did not return within 0\.2 s"):
        check_exporter(Hanging, timeout=0.2, threads=1)
    release.set()


def test_kit_reports_spans_the_backend_never_received() -> None:
    class Liar:
        closed = False

        def export(self, spans: Any) -> ExportResult:
            return ExportResult.FAILURE if self.closed else ExportResult.SUCCESS

        def force_flush(self, timeout: float = 30.0) -> bool:
            return True

        def shutdown(self) -> None:
            self.closed = True

    with pytest.raises(AssertionError, match="never reached the backend"):
        check_exporter(Liar, received=lambda: [])


def test_representative_spans_cover_every_kind_and_status() -> None:
    spans: List[SpanData] = representative_spans()
    assert {s.kind for s in spans} == set(tracing.SpanKind)
    assert {s.status.code for s in spans} == set(tracing.StatusCode)
    assert any(s.parent is not None and s.parent.is_remote for s in spans)
    assert any(s.context.trace_id >> 64 == 0 for s in spans)
    assert any(s.context.debug for s in spans)
    assert any(s.links and s.events and s.dropped_attributes for s in spans) or (
        any(s.links for s in spans) and any(s.dropped_links for s in spans))


class _Partial:
    """Reports ``reply`` for every export while open."""

    reply: Any = None
    closed = False

    def export(self, spans: Any) -> Any:
        return ExportResult.FAILURE if self.closed else self.reply

    def force_flush(self, timeout: float = 30.0) -> bool:
        return True

    def shutdown(self) -> None:
        self.closed = True


def test_kit_accepts_a_partial_success_that_counts_the_spans_given() -> None:
    class Half(_Partial):
        def export(self, spans: Any) -> Any:
            return ExportResult.FAILURE if self.closed else PartialSuccess(len(spans) // 2)

    check_exporter(Half, expect_success=False, threads=1)


@pytest.mark.parametrize("count", [-1, 10_000, "3"])
def test_kit_reports_a_partial_success_that_is_not_a_count_of_the_batch(count: object) -> None:
    class Odd(_Partial):
        reply = PartialSuccess(count)  # type: ignore[arg-type]

    with pytest.raises(AssertionError, match="not a count of the"):
        check_exporter(Odd, expect_success=False, threads=1)


def test_kit_reports_a_partial_success_where_every_span_should_have_gone() -> None:
    class Some(_Partial):
        reply = PartialSuccess(1)

    with pytest.raises(AssertionError, match=r"returned PartialSuccess\(exported=1\), expected"):
        check_exporter(Some, threads=1)
