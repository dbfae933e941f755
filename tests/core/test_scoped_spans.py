"""Spans from ``tracer.span`` are their own scope: how they behave with every way Python code
enters and leaves a context manager, and what ``start_span`` keeps of the span's old manners."""

from __future__ import annotations

import contextlib
import copy
import pickle
import sys
import threading
import time
import unittest
from collections import deque
from types import FrameType
from typing import Any, List, Optional, Sequence

import pytest

import tracing_api as tracing
from tracing_api import _tracer
from tracing_api._processors import BatchProcessor
from tracing_api.export import ExportResult
from tracing_api.testing import CapturedSpans, capture

tracer = tracing.get_tracer(__name__)


def test_unconfigured_scope_works_in_an_exit_stack() -> None:
    with contextlib.ExitStack() as stack:
        span = stack.enter_context(tracer.span("stacked"))
        span.set_attribute("k", "v")
    assert span is tracing.INVALID_SPAN


@pytest.mark.skipif(sys.version_info < (3, 11), reason="TestCase.enterContext is new in 3.11")
def test_unconfigured_scope_works_with_enter_context_of_a_test_case() -> None:
    entered: List[Any] = []

    class Case(unittest.TestCase):
        def test_it(self) -> None:
            entered.append(self.enterContext(tracer.span("entered")))

    result = unittest.TestResult()
    Case("test_it").run(result)
    assert result.wasSuccessful() and entered == [tracing.INVALID_SPAN]


def _fail_inside_an_exit_stack() -> None:
    with contextlib.ExitStack() as stack:
        stack.enter_context(tracer.span("failing"))
        raise KeyError("boom")


def test_unconfigured_scope_lets_an_exception_through_an_exit_stack() -> None:
    with pytest.raises(KeyError):
        _fail_inside_an_exit_stack()


def test_configured_scope_works_in_an_exit_stack(trace_capture: CapturedSpans) -> None:
    with contextlib.ExitStack() as stack:
        span = stack.enter_context(tracer.span("stacked"))
        assert tracing.current_span() is span
    assert trace_capture.names() == ["stacked"]


def test_unconfigured_span_names_with_a_hostile_hash_do_not_raise() -> None:
    class Hostile(str):
        def __hash__(self) -> int:
            raise RuntimeError("no hash")

        def __eq__(self, other: object) -> bool:
            raise RuntimeError("no eq")

    tracer.span("hostile")  # a cached name the hostile one could collide with
    with tracer.span(Hostile("hostile")) as span:
        span.set_attribute("k", "v")
    assert span is tracing.INVALID_SPAN


def test_use_span_of_a_started_span_records_the_exception(trace_capture: CapturedSpans) -> None:
    span = tracer.start_span("manual")
    with pytest.raises(ValueError), tracing.use_span(span, end_on_exit=True):
        raise ValueError("boom")
    data = trace_capture.spans[0]
    assert data.status.code is tracing.StatusCode.ERROR
    assert [event.name for event in data.events] == ["exception"]


def test_with_on_a_started_span_ends_it_without_making_it_current(
    trace_capture: CapturedSpans,
) -> None:
    outer = tracer.start_span("manual")
    with outer as entered:
        assert entered is outer
        assert tracing.current_span() is not outer
        with tracer.span("inside"):
            pass
    assert sorted(trace_capture.names()) == ["inside", "manual"]
    inside = next(s for s in trace_capture.spans if s.name == "inside")
    assert inside.parent is None  # not a child of the started span: it was never current


def test_leaving_a_started_span_that_was_never_entered_ends_it(
    trace_capture: CapturedSpans,
) -> None:
    with contextlib.ExitStack() as stack:
        stack.push(tracer.start_span("pushed"))
    assert trace_capture.names() == ["pushed"]


def test_start_span_gives_the_no_op_span_when_the_pipeline_goes_away_during_the_call() -> None:
    got: List[Any] = []

    def uninstall_on_entry(frame: FrameType, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code is _tracer.Tracer.span.__code__:
            sys.setprofile(None)
            _tracer.install(None)  # what another thread's configure() or capture() exit does

    with capture():
        sys.setprofile(uninstall_on_entry)
        try:
            got.append(tracer.start_span("raced"))
        finally:
            sys.setprofile(None)
    assert got == [tracing.INVALID_SPAN]
    got[0].set_attribute("k", "v")
    got[0].end()


def test_a_sampled_out_span_can_be_copied_and_pickled() -> None:
    tracing.configure(exporter="memory", processor="simple", sampler="always_off")
    with tracer.span("unsampled") as span:
        for twin in (copy.copy(span), copy.deepcopy(span), pickle.loads(pickle.dumps(span))):
            assert isinstance(twin, tracing.NonRecordingSpan)
            assert twin.context == span.context


class _SlowFinalExport:
    def __init__(self, processor: List[BatchProcessor]) -> None:
        self.processor = processor

    def export(self, batch: Sequence[Any]) -> ExportResult:
        if self.processor and self.processor[0]._closed:
            time.sleep(0.2)  # the last flush to a backend takes a moment
        return ExportResult.SUCCESS

    def force_flush(self, timeout: Optional[float] = None) -> bool:
        return True

    def shutdown(self) -> None:
        pass


def test_spans_ended_after_shutdown_are_dropped_even_if_a_producer_raced_it() -> None:
    holder: List[BatchProcessor] = []
    processor = BatchProcessor(_SlowFinalExport(holder), schedule_delay=30.0)
    holder.append(processor)
    shutter: List[threading.Thread] = []

    class SwitchAfterAppend(deque):  # type: ignore[type-arg]
        def append(self, item: Any) -> None:
            super().append(item)
            if not shutter and len(self) > 512:  # the producer has passed the closed check
                shutter.append(threading.Thread(target=processor.shutdown, args=(5.0,)))
                shutter[0].start()
                deadline = time.monotonic() + 5.0
                while not (processor._closed and not processor._wake_pending):
                    assert time.monotonic() < deadline
                    time.sleep(0.001)

    processor._queue = SwitchAfterAppend()
    for _ in range(513):
        processor.on_end("span")  # type: ignore[arg-type]
    shutter[0].join(5.0)
    before = processor.stats()
    for _ in range(1000):
        processor.on_end("late")  # type: ignore[arg-type]
    after = processor.stats()
    assert after["dropped"] - before["dropped"] == 1000
    assert after["queued"] == before["queued"]


before_a = tracing.NonRecordingSpan(tracing.SpanContext(1, 1, 1))
before_b = tracing.NonRecordingSpan(tracing.SpanContext(2, 2, 1))


def _overlap(scope: Any, enter: Any) -> dict[str, Any]:
    """Two asyncio tasks enter ``enter(scope)`` so that the entries overlap without nesting:
    A enters, B enters, A leaves, B leaves. Each task has its own current span before
    (``before_a``, ``before_b``: what "after" must show again)."""
    import asyncio

    seen: dict[str, Any] = {}

    async def main() -> None:
        a_in, a_out = asyncio.Event(), asyncio.Event()

        async def task_a() -> None:
            with tracing.use_span(before_a):
                with enter(scope) as span:
                    seen["a"] = span
                    a_in.set()
                    await asyncio.sleep(0.01)
                seen["a after"] = tracing.current_span()
            a_out.set()

        async def task_b() -> None:
            await a_in.wait()
            with tracing.use_span(before_b):
                with enter(scope) as span:
                    seen["b"] = span
                    await a_out.wait()
                    seen["b inside, after a left"] = tracing.current_span()
                seen["b after"] = tracing.current_span()

        await asyncio.wait_for(asyncio.gather(task_a(), task_b()), 10)

    asyncio.run(main())
    return seen


def test_overlapping_entries_of_one_scope_each_leave_their_own_context(
    trace_capture: CapturedSpans,
) -> None:
    seen = _overlap(tracer.span("poll"), lambda scope: scope)
    assert seen["a after"] is before_a and seen["b after"] is before_b
    assert seen["b inside, after a left"] is seen["b"]  # A leaving did not end B's entry
    assert seen["a"] is not seen["b"]
    assert sorted(s.context.span_id for s in trace_capture.spans) == sorted(
        (seen["a"].context.span_id, seen["b"].context.span_id))


def test_overlapping_entries_of_one_use_span_each_leave_their_own_context(
    trace_capture: CapturedSpans,
) -> None:
    span = tracer.start_span("shared")
    seen = _overlap(tracing.use_span(span), lambda scope: scope)
    assert seen["a after"] is before_a and seen["b after"] is before_b
    assert seen["b inside, after a left"] is span


def test_overlapping_entries_of_one_use_context_each_leave_their_own_context() -> None:
    remote = tracing.context.EMPTY_CONTEXT.with_remote_parent(1, 2, 1).with_baggage({"k": "v"})
    seen = _overlap(tracing.context.use_context(remote), lambda scope: scope)
    assert seen["a after"] is before_a and seen["b after"] is before_b
    assert seen["b inside, after a left"] is remote.span


def test_a_use_span_entered_twice_in_one_context_restores_the_span_before_it() -> None:
    tracing.configure(exporter="memory", processor="simple")
    outer = tracer.start_span("outer")
    span = tracer.start_span("z")
    scope = tracing.use_span(span)
    with tracing.use_span(outer):
        with scope:
            with scope:
                assert tracing.current_span() is span
            assert tracing.current_span() is span
        assert tracing.current_span() is outer
    assert tracing.current_span() is tracing.INVALID_SPAN
    with scope:  # and it can be entered again afterwards
        assert tracing.current_span() is span
    assert tracing.current_span() is tracing.INVALID_SPAN


def test_threads_sharing_one_scope_never_see_an_error_or_a_leftover_span() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from tracing_api._local import MemoryExporter

    exporter = MemoryExporter(max_spans=10**6)
    tracing.configure(exporter=exporter, processor="simple")
    scope = tracer.span("handler")  # made once, as at import time, shared by a thread pool
    problems: List[str] = []

    def handle(i: int) -> None:
        try:
            with scope, tracer.span("db"):
                time.sleep(0.0001 * (i % 3))  # a little I/O: entries overlap
        except Exception as exc:  # what the test looks for
            problems.append(repr(exc))
        if tracing.current_span() is not tracing.INVALID_SPAN:
            problems.append(f"request {i}: a span stayed current after its block")

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as CPython can
    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(handle, range(20_000)))
    finally:
        sys.setswitchinterval(interval)
    assert problems[:3] == []
    assert [s.name for s in exporter.spans].count("handler") == 20_000
