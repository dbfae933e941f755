"""Spans shared between threads: written concurrently, ended twice or elsewhere, never a raise.

The first ``end`` wins: one record reaches the exporter, with the state the span had then, and
every later write is ignored.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, List

import tracing_api as tracing
from tracing_api.testing import capture

tracer = tracing.get_tracer(__name__)


def run_together(count: int, work: Callable[[int], None]) -> None:
    """Run ``work(i)`` on ``count`` threads released at once; re-raise the first failure."""
    start = threading.Barrier(count)
    errors: List[BaseException] = []

    def body(i: int) -> None:
        try:
            start.wait(10)
            work(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
        assert not thread.is_alive()
    if errors:
        raise errors[0]


def test_attributes_set_from_eight_threads_are_kept_or_counted_within_the_limit() -> None:
    with capture(limits=tracing.Limits(attributes=64)) as spans:
        span = tracer.start_span("shared")

        def work(t: int) -> None:
            for i in range(5000):
                span.set_attribute(f"k{t}.{i}", i)

        run_together(8, work)
        span.end()
    (data,) = spans
    assert len(data.attributes) == 64
    assert len(data.attributes) + data.dropped_attributes == 8 * 5000


def test_events_and_links_added_from_eight_threads_are_kept_or_counted() -> None:
    other = tracing.SpanContext(0x1, 0x2, 1)
    with capture(limits=tracing.Limits(events=32, links=32)) as spans:
        span = tracer.start_span("shared")

        def work(t: int) -> None:
            for i in range(500):
                span.add_event("e", {"t": t, "i": i})
                span.add_link(other, {"t": t})

        run_together(8, work)
        span.end()
    (data,) = spans
    assert len(data.events) == 32 and len(data.links) == 32
    assert len(data.events) + data.dropped_events == 8 * 500
    assert len(data.links) + data.dropped_links == 8 * 500


def test_a_span_ended_by_eight_threads_at_once_is_exported_once() -> None:
    with capture() as spans:
        ended: List[Any] = []
        for round_ in range(50):
            span: Any = tracer.start_span(f"race-{round_}")

            def end(t: int, span: Any = span) -> None:
                span.end(end_time=span.start_time + t + 1)

            run_together(8, end)
            ended.append(span)
    assert len(spans) == 50
    for span, data in zip(ended, spans):
        assert data.name == span.name
        assert data.end_time == span.end_time  # the record is the first end's, not a later one


def test_writes_racing_the_end_from_another_thread_never_raise_and_are_ignored_after() -> None:
    with capture() as spans:
        span: Any = tracer.start_span("racing")
        stop = threading.Event()

        def writer(t: int) -> None:
            i = 0
            while not stop.is_set() and i < 200_000:
                span.set_attribute(f"w{t}", i)
                span.add_event("tick")
                span.set_status(tracing.StatusCode.ERROR, "x")
                span.update_name("renamed")
                i += 1

        def ender(t: int) -> None:
            span.end()
            stop.set()

        run_together(4, lambda t: ender(t) if t == 0 else writer(t))
        record = spans[0]
        span.set_attribute("late", 1)
        span.add_event("late")
        span.end()
    assert len(spans) == 1
    assert "late" not in record.attributes and "late" not in span.attributes
    assert all(e.name != "late" for e in record.events)


def test_span_ended_on_another_thread_than_it_started_is_exported_with_its_parent() -> None:
    with capture() as spans:
        with tracer.span("request") as parent:
            child = tracer.start_span("work")
        thread = threading.Thread(target=child.end)
        thread.start()
        thread.join(10)
    spans.assert_tree("""
        request
          work
    """)
    assert spans.find("work").parent == parent.context
