"""Misuse and odd input at the API's edges: nothing raises into the application, nothing is lost
without being counted.
"""

from __future__ import annotations

import contextvars
import threading
import time
from typing import Any, List, Sequence

import tracing_api as tracing
from tracing_api import context
from tracing_api.export import ExportResult, SpanData
from tracing_api.testing import CapturedSpans

tracer = tracing.get_tracer(__name__)


class Collect:
    def __init__(self) -> None:
        self.spans: List[SpanData] = []

    def export(self, spans: Sequence[SpanData]) -> ExportResult:
        self.spans.extend(spans)
        return ExportResult.SUCCESS

    def force_flush(self, timeout: float = 30.0) -> bool:
        return True

    def shutdown(self) -> None:
        self.closed = True


class Interrupting(Collect):
    """Raises what ``except Exception`` does not catch (as gevent.Timeout does), once."""

    def __init__(self) -> None:
        super().__init__()
        self.raised = False

    def export(self, spans: Sequence[SpanData]) -> ExportResult:
        if not self.raised:
            self.raised = True
            raise KeyboardInterrupt
        return super().export(spans)


def test_scope_entered_twice_makes_two_spans_and_restores_the_context(
    trace_capture: CapturedSpans,
) -> None:
    scope = tracer.span("reused")
    with scope as outer:
        with scope as inner:
            assert tracing.current_span() is inner
        assert tracing.current_span() is outer
    assert tracing.current_span() is tracing.INVALID_SPAN
    assert trace_capture.names() == ["reused", "reused"]
    assert trace_capture[0].parent == outer.context


def test_detach_from_another_context_keeps_that_contexts_baggage() -> None:
    token = context.attach(tracing.Context().with_baggage({"tenant": "a"}))

    def elsewhere() -> dict[str, str]:
        with context.use_baggage({"tenant": "b"}):
            context.detach(token)
            return dict(context.baggage())

    assert contextvars.copy_context().run(elsewhere) == {"tenant": "b"}
    context.detach(token)
    assert dict(context.baggage()) == {}


def test_trace_state_constructor_leaves_invalid_entries_out() -> None:
    state = tracing.TraceState([("Bad Key", "a"), ("b", "c"), ("ok", "bad,value"), ("b", "d")])
    assert dict(state) == {"b": "c"}
    assert state.header() == "b=c"


def test_odd_arguments_to_the_span_api_never_raise(trace_capture: CapturedSpans) -> None:
    ctx = tracing.SpanContext(1, 2)
    with tracer.span("odd", kind="client", links=[ctx, "not a link"]) as span:  # type: ignore[arg-type, list-item]
        span.add_event("e", timestamp="now")  # type: ignore[arg-type]
        span.record_exception("boom")  # type: ignore[arg-type]
        span.record_exception(ValueError("x"), attributes=5)  # type: ignore[arg-type]
    data = trace_capture.find("odd")
    assert data.kind is tracing.SpanKind.INTERNAL
    assert [link.context for link in data.links] == [ctx]
    assert data.dropped_links == 1
    assert [e.name for e in data.events] == ["e", "exception"]


def test_export_worker_survives_an_exception_outside_exception() -> None:
    exporter = Interrupting()
    tracing.configure(exporter=exporter, schedule_delay=0.01)
    with tracer.span("first"):
        pass
    deadline = time.monotonic() + 10
    while not exporter.raised and time.monotonic() < deadline:
        time.sleep(0.01)
    with tracer.span("second"):
        pass
    assert tracing.force_flush(timeout=10)
    assert [s.name for s in exporter.spans] == ["second"]
    assert tracing.stats() == {"ended": 2, "exported": 1, "dropped": 1, "failed": 1, "queued": 0}


def test_infinite_timeouts_are_honoured_as_long_waits_not_errors() -> None:
    tracing.configure(exporter=Collect())
    with tracer.span("s"):
        pass
    assert tracing.force_flush(timeout=float("inf"))
    assert tracing.shutdown(timeout=float("inf"))


def test_an_exporter_object_passed_again_to_configure_stays_open() -> None:
    exporter = Collect()
    tracing.configure(exporter=exporter, processor="simple")
    tracing.configure(exporter=exporter, processor="simple", sampler="always_on")
    with tracer.span("after"):
        pass
    assert [s.name for s in exporter.spans] == ["after"]
    assert not hasattr(exporter, "closed")


def test_a_raising_processor_of_the_application_never_reaches_span_end() -> None:
    class Broken:
        def on_end(self, span: SpanData) -> None:
            raise RuntimeError("processor bug")

        def force_flush(self, timeout: float = 30.0) -> bool:
            raise RuntimeError("flush bug")

        def shutdown(self, timeout: float = 30.0) -> bool:
            return True

        def stats(self) -> dict[str, int]:
            raise RuntimeError("stats bug")

    tracing.configure(processor=Broken())
    with tracer.span("s"):
        pass
    assert tracing.force_flush(timeout=1) is False
    assert tracing.stats()["ended"] == 0


def test_a_dead_worker_is_restarted_when_spans_pile_up() -> None:
    exporter = Collect()
    tracing.configure(exporter=exporter, max_export_batch_size=2, schedule_delay=60)
    processor: Any = tracing._tracer.active().processors[0]  # type: ignore[union-attr]
    # The worker leaves its loop at its next wake-up, as if it died: without the last steps of
    # a shutdown (answering flushes, shutting the exporter down), which a death never takes.
    processor._finish = lambda: None
    processor._stopping = True
    processor._wake.set()
    processor._worker.join(10)
    assert not processor._worker.is_alive()
    processor._stopping = False
    for _ in range(5):
        with tracer.span("s"):
            pass
    assert isinstance(processor._worker, threading.Thread) and processor._worker.is_alive()
    assert tracing.force_flush(timeout=10)
    assert len(exporter.spans) == 5


def test_a_failing_processor_whose_warning_cannot_be_logged_raises_nothing_into_span_end(
        monkeypatch: Any) -> None:
    """Near the recursion limit the warning about a failing processor raises in turn (logging
    needs stack too): span end still raises nothing into the application."""
    from tracing_api import _log

    class Failing:
        def __init__(self) -> None:
            self.calls = 0

        def on_end(self, span: SpanData) -> None:
            self.calls += 1
            raise ValueError("broken processor")

        def force_flush(self, timeout: float = 30.0) -> bool:
            return True

        def shutdown(self, timeout: float = 30.0) -> bool:
            return True

        def stats(self) -> Any:
            return {"ended": self.calls, "exported": 0, "dropped": self.calls, "failed": 0,
                    "queued": 0}

    def no_stack_left(*args: Any, **kwargs: Any) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    failing = Failing()
    tracing.configure(processor=failing)
    monkeypatch.setattr(_log, "warn", no_stack_left)
    with tracer.span("s"):
        pass
    tracer.start_span("t").end()
    assert failing.calls == 2
