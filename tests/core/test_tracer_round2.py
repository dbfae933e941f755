"""Spans under stress and misuse: recursion-limit errors, spans held across a generator's yield,
process pools, wrong values where a span or its parent belongs, attribute mappings that are not
mappings, generator-based coroutines."""

from __future__ import annotations

import asyncio
import os
import sys
import types
from concurrent.futures import ProcessPoolExecutor
from types import FrameType
from typing import Any, AsyncIterator, Callable, Generator, Iterator, List, Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tracing_api as tracing
from tracing_api import SpanContext, StatusCode, context
from tracing_api.testing import CapturedSpans

FUZZ = int(os.environ.get("TRACING_FUZZ_EXAMPLES", "200"))
tracer = tracing.get_tracer(__name__)
REMOTE = SpanContext(0x1234, 0x5678, 1, is_remote=True)


# A RecursionError leaving traced blocks ---------------------------------------------------------


def _frames() -> int:
    depth = 0
    frame: Optional[FrameType] = sys._getframe()
    while frame is not None:
        depth, frame = depth + 1, frame.f_back
    return depth


def _recursion_error_of(recurse: Callable[[], Any]) -> BaseException:
    """What ``recurse()`` raises with the recursion limit 200 frames above here (fewer spans,
    each with a shorter stack trace to format, than at the default limit)."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(_frames() + 200)
    try:
        recurse()
    except RecursionError as exc:
        return exc
    finally:
        sys.setrecursionlimit(limit)
    raise AssertionError("no RecursionError")


def _with_block() -> Callable[[], None]:
    def recurse() -> None:
        with tracer.span("r"):
            recurse()

    return recurse


def _decorated_function() -> Callable[[], None]:
    @tracer.span("r")
    def recurse() -> None:
        recurse()

    return recurse


def _use_span() -> Callable[[], None]:
    def recurse() -> None:
        with context.use_span(tracer.start_span("r"), end_on_exit=True):
            recurse()

    return recurse


def _started_span() -> Callable[[], None]:
    def recurse() -> None:
        with tracer.start_span("r"):
            recurse()

    return recurse


def _decorated_generator() -> Callable[[], None]:
    @tracer.span("r")
    def gen() -> Iterator[None]:
        yield from gen()

    return lambda: next(gen())


RECURSING = [_with_block, _decorated_function, _use_span, _started_span, _decorated_generator]


@pytest.mark.parametrize("make", RECURSING, ids=lambda make: make.__name__.strip("_"))
def test_a_recursion_error_leaving_traced_blocks_reaches_the_application_unchanged(
    trace_capture: CapturedSpans, make: Callable[[], Callable[[], None]]
) -> None:
    error = _recursion_error_of(make())
    # Raised while no other exception was being handled: the application's own, not one
    # raised by the tracing code while it recorded or ended a span on the way out.
    assert error.__context__ is None
    assert tracing.current_span() is tracing.INVALID_SPAN


@pytest.mark.parametrize("make", RECURSING, ids=lambda make: make.__name__.strip("_"))
def test_spans_left_by_a_recursion_error_end_where_their_stack_trace_cannot_be_formatted(
    trace_capture: CapturedSpans, make: Callable[[], Callable[[], None]]
) -> None:
    _recursion_error_of(make())
    spans = list(trace_capture)
    with_trace = [s for s in spans if any("exception.stacktrace" in e.attributes for e in s.events)]
    # Formatting a stack trace takes more frames than ending a span: the deepest spans ended
    # are those whose trace could not be formatted.
    assert len(with_trace) < len(spans)
    assert all(s.status.code is StatusCode.ERROR for s in spans)


class _NotesRaise(Exception):
    """An exception the standard library's traceback module cannot format (on Python 3.11)."""

    @property
    def __notes__(self) -> List[str]:
        raise RuntimeError("no notes")


def test_an_exception_whose_stack_trace_cannot_be_formatted_is_still_recorded(
    trace_capture: CapturedSpans,
) -> None:
    try:
        with tracer.span("x"):
            raise _NotesRaise("why")
    except BaseException as exc:  # only its type: not even pytest can format this exception
        raised = type(exc)
    assert raised is _NotesRaise
    data = trace_capture.find("x")
    assert data.status.code is StatusCode.ERROR
    assert [e.name for e in data.events] == ["exception"]
    assert data.events[0].attributes["exception.message"] == "why"


# Spans a decorated generator holds across a yield -----------------------------------------------


def test_a_span_a_decorated_generator_holds_across_a_yield_is_current_again_on_resume(
    trace_capture: CapturedSpans,
) -> None:
    @tracer.span("gen")
    def gen() -> Iterator[int]:
        with tracer.span("child"):
            yield 1
            with tracer.span("grandchild"):
                pass
            yield 2

    assert list(gen()) == [1, 2]
    trace_capture.assert_tree("""
        gen
          child
            grandchild
    """)


def test_a_span_a_decorated_async_generator_holds_across_a_yield_is_current_again_on_resume(
    trace_capture: CapturedSpans,
) -> None:
    @tracer.span("agen")
    async def agen() -> AsyncIterator[int]:
        with tracer.span("child"):
            yield 1
            with tracer.span("grandchild"):
                pass
            yield 2

    async def consume() -> List[int]:
        return [item async for item in agen()]

    assert asyncio.run(consume()) == [1, 2]
    trace_capture.assert_tree("""
        agen
          child
            grandchild
    """)


def test_a_span_a_decorated_generator_holds_across_a_yield_is_not_current_in_its_consumer(
    trace_capture: CapturedSpans,
) -> None:
    @tracer.span("gen")
    def gen() -> Iterator[int]:
        with tracer.span("child"):
            yield 1
            yield 2

    seen = []
    with tracer.span("consumer") as consumer:
        for _ in gen():
            seen.append(tracing.current_span())
    assert seen == [consumer, consumer]


# Process pools ----------------------------------------------------------------------------------


def test_wrap_executor_passes_a_process_pools_tasks_through(trace_capture: CapturedSpans) -> None:
    # Built-in functions: any start method can send them to the worker process.
    with context.wrap_executor(ProcessPoolExecutor(1)) as pool, tracer.span("submitter"):
        assert pool.submit(pow, 2, 10).result(timeout=60) == 1024
        assert list(pool.map(abs, [-1, -2], timeout=60)) == [1, 2]


# Something else where a span belongs ------------------------------------------------------------


def test_a_context_holding_a_span_context_in_the_spans_place_parents_new_spans(
    trace_capture: CapturedSpans,
) -> None:
    with tracer.span("child", parent=context.Context(REMOTE)):  # type: ignore[arg-type]
        pass
    child = trace_capture.find("child")
    assert child.context.trace_id == REMOTE.trace_id and child.parent == REMOTE


def test_a_context_holding_none_in_the_spans_place_starts_a_new_trace(
    trace_capture: CapturedSpans,
) -> None:
    span = tracer.start_span("root", parent=context.Context(None))  # type: ignore[arg-type]
    span.end()
    assert trace_capture.find("root").parent is None and span.context.is_valid


def test_use_span_of_a_span_context_makes_it_the_parent_of_spans_started_inside(
    trace_capture: CapturedSpans,
) -> None:
    with context.use_span(REMOTE), tracer.span("child"):  # type: ignore[arg-type]
        pass
    assert trace_capture.find("child").parent == REMOTE


def test_a_context_with_a_span_context_in_the_spans_place_can_be_made_current(
    trace_capture: CapturedSpans,
) -> None:
    with context.use_context(context.Context(REMOTE)), tracer.span("child"):  # type: ignore[arg-type]
        pass
    assert trace_capture.find("child").parent == REMOTE
    assert tracing.current_span() is tracing.INVALID_SPAN


def test_a_non_recording_span_of_something_else_than_a_span_context_carries_the_invalid_one(
    trace_capture: CapturedSpans,
) -> None:
    span = tracing.NonRecordingSpan(None)  # type: ignore[arg-type]
    assert span.context == tracing.INVALID_SPAN_CONTEXT
    with context.use_span(span), tracer.span("root"):
        pass
    assert trace_capture.find("root").parent is None


class _HostileParent:
    @property
    def context(self) -> SpanContext:
        raise RuntimeError("no context")


ids = st.one_of(st.integers(), st.integers(0, (1 << 64) - 1), st.integers(0, (1 << 128) - 1))
span_contexts = st.builds(
    SpanContext, ids, ids, st.one_of(st.integers(0, 255), st.integers(), st.none(), st.text(max_size=2)),
    is_remote=st.booleans(),
)
parents = st.one_of(
    span_contexts, st.builds(context.Context, st.one_of(span_contexts, st.none(), st.integers())),
    st.none(), st.integers(), st.text(max_size=3), st.builds(_HostileParent),
)


@settings(max_examples=FUZZ, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parent=parents)
def test_any_parent_gives_a_span_with_a_valid_context(trace_capture: CapturedSpans, parent: Any) -> None:
    with tracer.span("child", parent=parent) as span, tracer.span("grandchild") as grandchild:
        pass
    assert span.context.is_valid and grandchild.context.is_valid
    with context.use_span(parent), tracer.span("under") as under:
        pass
    assert under.context.is_valid


# Parents with ids no span can carry -------------------------------------------------------------


@pytest.mark.parametrize("parent", [
    SpanContext(-5, 1, 1), SpanContext(1 << 130, 1, 1), SpanContext(7, 1 << 70, 1),
    SpanContext(7, -1, 1), SpanContext(7, 1, "01"),  # type: ignore[arg-type]
], ids=["negative trace id", "wide trace id", "wide span id", "negative span id", "text flags"])
def test_a_parent_whose_ids_no_span_can_carry_starts_a_new_trace(
    trace_capture: CapturedSpans, parent: SpanContext
) -> None:
    with tracer.span("child", parent=parent) as span:
        pass
    assert span.context.is_valid and span.context.trace_id != parent.trace_id
    assert trace_capture.find("child").parent is None


@settings(max_examples=FUZZ, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parent=span_contexts)
def test_a_parent_with_ids_in_range_is_continued(trace_capture: CapturedSpans, parent: SpanContext) -> None:
    continued = (type(parent.trace_flags) is int and 0 < parent.trace_id < 1 << 128
                 and 0 <= parent.span_id < 1 << 64)
    with tracer.span("child", parent=parent) as span:
        pass
    assert (span.context.trace_id == parent.trace_id) is continued


# Attribute mappings whose items are not pairs ---------------------------------------------------


class NotPairs:
    def items(self) -> List[str]:
        return ["abc", ("kept", 1)]  # type: ignore[list-item]


def test_span_attributes_that_are_not_pairs_are_dropped_and_counted(trace_capture: CapturedSpans) -> None:
    with tracer.span("x", attributes=NotPairs()):  # type: ignore[arg-type]
        pass
    data = trace_capture.find("x")
    assert dict(data.attributes) == {"kept": 1} and data.dropped_attributes == 1


def test_set_attributes_of_items_that_are_not_pairs_drops_and_counts_them(
    trace_capture: CapturedSpans,
) -> None:
    with tracer.span("x") as span:
        span.set_attributes(NotPairs())  # type: ignore[arg-type]
    data = trace_capture.find("x")
    assert dict(data.attributes) == {"kept": 1} and data.dropped_attributes == 1


def test_event_attributes_that_are_not_pairs_are_dropped_and_counted(
    trace_capture: CapturedSpans,
) -> None:
    with tracer.span("x") as span:
        span.add_event("e", NotPairs())  # type: ignore[arg-type]
    event = trace_capture.find("x").events[0]
    assert dict(event.attributes) == {"kept": 1} and event.dropped_attributes == 1


# Generator-based coroutines ---------------------------------------------------------------------


def test_a_decorated_generator_based_coroutine_stays_awaitable_and_spans_the_await(
    trace_capture: CapturedSpans,
) -> None:
    @types.coroutine
    def legacy() -> Generator[None, None, int]:
        seen.append(tracing.current_span().name)
        yield  # gives the loop control once, as an awaited future would
        return 3

    seen: List[str] = []
    traced = tracer.span("legacy")(legacy)

    async def main() -> Any:
        return await traced()

    assert asyncio.run(main()) == 3
    assert seen == ["legacy"] and trace_capture.names() == ["legacy"]


def test_a_decorated_generator_based_coroutine_can_still_be_driven_with_yield_from(
    trace_capture: CapturedSpans,
) -> None:
    @types.coroutine
    def legacy() -> Generator[str, None, int]:
        yield "tick"
        return 3

    traced = tracer.span("legacy")(legacy)

    def trampoline() -> Generator[str, None, None]:
        result = yield from traced()
        assert result == 3

    assert list(trampoline()) == ["tick"]
    assert trace_capture.names() == ["legacy"]


class _LazyKey:
    """An attribute name whose class lookup raises (a lazy proxy not ready yet)."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        raise RuntimeError("not ready")

    def __hash__(self) -> int:
        return 1


def test_attributes_whose_cleaning_raises_on_every_pass_are_given_up_not_retried_forever(
    trace_capture: CapturedSpans,
) -> None:
    import threading

    finished = threading.Event()

    def start() -> None:
        with tracer.span("x", attributes={_LazyKey(): "v", "ok": 1}):  # type: ignore[dict-item]
            pass
        finished.set()

    threading.Thread(target=start, daemon=True).start()
    assert finished.wait(10.0), "span start did not return"
    data = trace_capture.find("x")
    assert dict(data.attributes) == {} and data.dropped_attributes == 2


def test_a_context_made_with_something_else_than_a_span_context_holds_an_invalid_one(
    trace_capture: CapturedSpans,
) -> None:
    incoming = tracing.Context().with_span_context(None)  # type: ignore[arg-type]
    assert incoming.span.context == SpanContext(0, 0)
    with tracer.span("handler", parent=incoming) as span:
        pass
    assert span.context.is_valid and trace_capture.find("handler").parent is None


def test_a_parent_whose_trace_state_is_not_a_trace_state_starts_a_new_trace(
    trace_capture: CapturedSpans,
) -> None:
    parent = SpanContext(0x1234, 0x5678, 1, "vendor=abc")  # type: ignore[arg-type]
    with tracer.span("child", parent=parent) as span:
        headers: dict = {}
        tracing.inject(headers)
    assert span.context.trace_id != 0x1234
    assert headers["traceparent"].startswith(f"00-{span.context.trace_id:032x}-")


@pytest.mark.parametrize("bad", [
    SpanContext(-5, 1, 1), SpanContext(1 << 128, 1, 1), SpanContext(1, 1 << 64, 1),
    SpanContext(0x1234, 0x5678, 1, "vendor=abc"),  # type: ignore[arg-type]
])
def test_a_context_made_with_a_span_context_no_span_can_carry_holds_an_invalid_one(
    trace_capture: CapturedSpans, bad: SpanContext,
) -> None:
    incoming = tracing.Context().with_span_context(bad)
    assert incoming.span.context == SpanContext(0, 0)
    with tracer.span("handler", parent=incoming) as span:
        headers: dict = {}
        tracing.inject(headers)
    assert span.context.is_valid and trace_capture.find("handler").parent is None
    assert headers["traceparent"].startswith(f"00-{span.context.trace_id:032x}-")
