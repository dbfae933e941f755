"""tracing_api.testing: isolation, restoring the previous configuration, tree assertions."""

from __future__ import annotations

import threading
from typing import Dict, List, Optional, Sequence

import pytest

import tracing_api as tracing
from tracing_api import _config, _tracer
from tracing_api.export import SpanData
from tracing_api.testing import CapturedSpans, capture

tracer = tracing.get_tracer(__name__)


def test_capture_restores_the_previous_pipeline() -> None:
    tracing.configure(exporter="memory", processor="simple")
    before = _tracer.active()
    with capture() as spans, tracer.span("inside"):
        pass
    assert _tracer.active() is before
    assert spans.names() == ["inside"]
    assert before is not None and before.processors[0].exporter.spans == []  # type: ignore[attr-defined]


def test_nested_captures_are_isolated() -> None:
    with capture() as outer:
        with tracer.span("a"):
            pass
        with capture() as inner, tracer.span("b"):
            pass
        with tracer.span("c"):
            pass
    assert outer.names() == ["a", "c"]
    assert inner.names() == ["b"]


def test_assert_tree_reports_the_difference() -> None:
    with capture() as spans, tracer.span("root"), tracer.span("child"):
        pass
    spans.assert_tree("root\n  child")
    with pytest.raises(AssertionError, match="trace tree differs"):
        spans.assert_tree("root\n  other")


def test_assert_span_checks_kind_attributes_status_and_parent(trace_capture: CapturedSpans) -> None:
    with tracer.span("root"), tracer.span("q", kind=tracing.SpanKind.CLIENT, attributes={"a": 1}):
        pass
    trace_capture.assert_span("q", kind=tracing.SpanKind.CLIENT, attributes={"a": 1},
                              status=tracing.StatusCode.UNSET, parent="root")
    with pytest.raises(AssertionError, match="attribute 'a' is 1, expected 2"):
        trace_capture.assert_span("q", attributes={"a": 2})


def test_capture_can_set_propagators() -> None:
    with capture(propagators="tracecontext"), tracer.span("s"):
        carrier: dict[str, str] = {}
        tracing.inject(carrier)
    assert list(carrier) == ["traceparent"]


class _Exporter:
    """An exporter object that remembers what it got and whether it was shut down."""

    def __init__(self) -> None:
        self.names: List[str] = []
        self.shut = False

    def export(self, spans: Sequence[SpanData]) -> tracing.ExportResult:
        self.names.extend(s.name for s in spans)
        return tracing.ExportResult.SUCCESS

    def force_flush(self, timeout: Optional[float] = None) -> bool:
        return True

    def shutdown(self, timeout: Optional[float] = None) -> None:
        self.shut = True


def test_capture_restores_propagators_the_code_under_test_configured() -> None:
    tracing.configure(exporter="memory", processor="simple", propagators="tracecontext")
    before = _config.propagator()
    with capture():
        tracing.configure(exporter="memory", processor="simple", propagators="baggage")
    assert _config.propagator() is before


def test_capture_restores_the_unset_propagator_the_code_under_test_configured() -> None:
    with capture():
        tracing.configure(exporter="memory", processor="simple", propagators="baggage")
    carrier: Dict[str, str] = {}
    with capture(), tracer.span("s"):  # a sampled span to inject, with the propagators as set
        tracing.inject(carrier)
    assert "traceparent" in carrier


def test_capture_restores_the_shutdown_timeout_the_code_under_test_configured() -> None:
    tracing.configure(exporter="memory", processor="simple", shutdown_timeout=3.0)
    with capture():
        tracing.configure(exporter="memory", processor="simple", shutdown_timeout=0.25)
    assert _config.saved_settings()[1] == 3.0


def test_capture_restores_propagators_it_set_itself() -> None:
    before = _config.propagator()
    with capture(propagators="b3"):
        assert _config.propagator() is not before
    assert _config.propagator() is before


def test_capture_shuts_down_the_pipeline_configured_inside() -> None:
    inner = _Exporter()
    with capture():
        tracing.configure(exporter=inner, schedule_delay=0.5)
        configured = _tracer.active()
    assert inner.shut
    assert configured is not None and configured is not _tracer.active()


def test_capture_stops_the_batch_worker_of_the_pipeline_configured_inside() -> None:
    before = set(threading.enumerate())
    with capture():
        tracing.configure(exporter="memory", schedule_delay=0.5)
        with tracer.span("starts-the-worker"):
            pass
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert leaked == []


def test_capture_leaves_the_previous_pipeline_working_when_code_under_test_reuses_its_exporter(
) -> None:
    app = _Exporter()
    tracing.configure(exporter=app, processor="simple")
    before = _tracer.active()
    with capture():
        tracing.configure(exporter=app, processor="simple")
    with tracer.span("after"):
        pass
    assert _tracer.active() is before
    assert not app.shut
    assert app.names == ["after"]


def test_capture_restores_the_previous_pipeline_after_code_under_test_disables_tracing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tracing.configure(exporter="memory", processor="simple")
    before = _tracer.active()
    with capture():
        monkeypatch.setenv("TRACING_DISABLED", "true")
        tracing.configure()
        assert _tracer.active() is None
    assert _tracer.active() is before


def test_capture_keeps_spans_ended_after_code_under_test_configures() -> None:
    with capture() as spans:
        with tracer.span("before"):
            pass
        tracing.configure(exporter=_Exporter(), processor="simple")
        with tracer.span("after"):
            pass
    assert spans.names() == ["before", "after"]


def test_exporter_configured_inside_capture_still_gets_its_spans() -> None:
    app = _Exporter()
    with capture():
        tracing.configure(exporter=app, processor="simple")
        with tracer.span("handled"):
            pass
    assert app.names == ["handled"]


def test_capture_keeps_spans_after_code_under_test_configures_a_batch_pipeline() -> None:
    with capture() as spans:
        tracing.configure(exporter=_Exporter(), schedule_delay=0.5)
        with tracer.span("batched-app"):
            pass
    assert spans.names() == ["batched-app"]


def test_capture_keeps_spans_across_a_shutdown_and_configure_inside_the_block() -> None:
    with capture() as spans:
        tracing.configure(exporter=_Exporter(), processor="simple")
        tracing.shutdown()
        tracing.configure(exporter=_Exporter(), processor="simple")
        with tracer.span("after-restart"):
            pass
    assert spans.names() == ["after-restart"]


def test_configure_inside_nested_captures_sends_to_the_innermost_only() -> None:
    with capture() as outer:
        with capture() as inner:
            tracing.configure(exporter=_Exporter(), processor="simple")
            with tracer.span("inner-app"):
                pass
        with tracer.span("outer"):
            pass
    assert inner.names() == ["inner-app"]
    assert outer.names() == ["outer"]


def test_configure_after_the_capture_no_longer_sends_to_it() -> None:
    with capture() as spans:
        pass
    tracing.configure(exporter="memory", processor="simple")
    with tracer.span("later"):
        pass
    assert spans.names() == []


def test_stats_inside_capture_count_only_the_applications_exporters() -> None:
    with capture():
        tracing.configure(exporter=_Exporter(), processor="simple")
        with tracer.span("counted-once"):
            pass
        counts = tracing.stats()
    assert counts["ended"] == 1 and counts["exported"] == 1


def test_assert_span_matches_a_list_attribute_against_the_stored_tuple(
    trace_capture: CapturedSpans,
) -> None:
    with tracer.span("tagged", attributes={"tags": ["a", "b"]}):
        pass
    trace_capture.assert_span("tagged", attributes={"tags": ["a", "b"]})
    trace_capture.assert_span("tagged", attributes={"tags": ("a", "b")})


def test_assert_span_reports_a_differing_list_attribute_with_both_values(
    trace_capture: CapturedSpans,
) -> None:
    with tracer.span("tagged", attributes={"tags": ["a", "b"]}):
        pass
    with pytest.raises(AssertionError, match=r"is \('a', 'b'\), expected \['a'\]"):
        trace_capture.assert_span("tagged", attributes={"tags": ["a"]})


def test_assert_span_does_not_take_an_int_for_a_bool(trace_capture: CapturedSpans) -> None:
    with tracer.span("cache.get", attributes={"cache.hit": 0}):
        pass
    with pytest.raises(AssertionError, match=r"attribute 'cache\.hit' is 0, expected False"):
        trace_capture.assert_span("cache.get", attributes={"cache.hit": False})


def test_assert_span_does_not_take_a_float_for_an_int(trace_capture: CapturedSpans) -> None:
    with tracer.span("get", attributes={"http.response.status_code": 200.0}):
        pass
    with pytest.raises(AssertionError, match=r"is 200\.0, expected 200\b"):
        trace_capture.assert_span("get", attributes={"http.response.status_code": 200})


def test_assert_span_compares_the_items_of_a_sequence_by_type(
    trace_capture: CapturedSpans,
) -> None:
    with tracer.span("flagged", attributes={"flags": [1, 0]}):
        pass
    with pytest.raises(AssertionError, match=r"is \(1, 0\), expected \[True, False\]"):
        trace_capture.assert_span("flagged", attributes={"flags": [True, False]})


def test_assert_span_matches_an_int_enum_against_the_plain_int_kept(
    trace_capture: CapturedSpans,
) -> None:
    from http import HTTPStatus

    with tracer.span("get", attributes={"http.response.status_code": HTTPStatus.OK}):
        pass
    trace_capture.assert_span("get", attributes={"http.response.status_code": HTTPStatus.OK})


def test_outline_draws_a_trace_deeper_than_the_recursion_limit(
    trace_capture: CapturedSpans,
) -> None:
    import contextlib
    import sys

    depth = sys.getrecursionlimit() + 200
    with contextlib.ExitStack() as stack:
        for level in range(depth):
            stack.enter_context(tracer.span(f"s{level}"))
    lines = trace_capture.outline().splitlines()
    assert len(lines) == depth
    assert lines[-1] == "  " * (depth - 1) + f"s{depth - 1}"
