"""tracing_api.testing: isolation, restoring the previous configuration, tree assertions."""

from __future__ import annotations

import pytest

import tracing_api as tracing
from tracing_api import _tracer
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
