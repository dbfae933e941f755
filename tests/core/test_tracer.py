"""Tracer and span behaviour: scopes, decorators, manual spans, status, events, links."""

from __future__ import annotations

import asyncio
import threading
from typing import AsyncIterator, Iterator, List

import pytest

import tracing_api as tracing
from tracing_api.export import SpanData
from tracing_api.testing import CapturedSpans, capture

tracer = tracing.get_tracer(__name__, "1.2.3")


def test_span_before_configure_is_the_shared_noop_span() -> None:
    with tracer.span("x", kind=tracing.SpanKind.CLIENT, attributes={"a": 1}) as span:
        span.set_attribute("b", 2)
        span.add_event("e", {"k": "v"})
        span.set_status(tracing.StatusCode.ERROR, "why")
        span.record_exception(ValueError("boom"))
    assert span is tracing.INVALID_SPAN
    assert tracing.current_span() is tracing.INVALID_SPAN


def test_noop_scope_without_arguments_is_reused_per_name() -> None:
    assert tracer.span("same") is tracer.span("same")


def test_noop_scope_lets_an_exception_through() -> None:
    with pytest.raises(KeyError, match="boom"), tracer.span("failing"):
        raise KeyError("boom")
    assert tracing.current_span() is tracing.INVALID_SPAN


def test_noop_scope_accepts_names_that_are_not_strings_or_not_hashable() -> None:
    for name in (["a", "list"], 42, None):
        with tracer.span(name) as span:  # type: ignore[arg-type]
            span.set_attribute("k", "v")
        assert span is tracing.INVALID_SPAN


def test_decorator_made_unconfigured_with_an_unhashable_name_records_once_configured() -> None:
    @tracer.span(["not", "hashable"])  # type: ignore[arg-type]
    def handle() -> int:
        return 1

    with capture() as spans:
        assert handle() == 1
    assert spans.names() == ["['not', 'hashable']"]


def test_start_span_before_configure_returns_invalid_span() -> None:
    span = tracer.start_span("manual")
    span.end()
    assert span is tracing.INVALID_SPAN
    assert not span.context.is_valid


def test_noop_decorator_still_calls_the_function() -> None:
    @tracer.span("handle")
    def handle(x: int) -> int:
        return x + 1

    assert handle(1) == 2


def test_tracer_taken_before_configure_records_after_configure() -> None:
    @tracer.span("decorated.early")
    def handle() -> None:
        pass

    with capture() as spans:
        handle()
        with tracer.span("early"):
            pass
    assert spans.names() == ["decorated.early", "early"]


def test_span_records_name_kind_attributes_scope_and_times(trace_capture: CapturedSpans) -> None:
    with tracer.span("db.query", kind=tracing.SpanKind.CLIENT,
                     attributes={"db.system": "postgresql"}) as span:
        span.set_attribute("db.rows", 3)
        span.add_event("retry", {"attempt": 2})
    data = trace_capture.find("db.query")
    assert data.kind is tracing.SpanKind.CLIENT
    assert dict(data.attributes) == {"db.system": "postgresql", "db.rows": 3}
    assert data.events[0].name == "retry"
    assert dict(data.events[0].attributes) == {"attempt": 2}
    assert data.scope == tracing.export.InstrumentationScope(__name__, "1.2.3")
    assert 0 < data.start_time <= data.events[0].timestamp <= data.end_time
    assert data.resource["service.name"] == "test"
    assert data.status.code is tracing.StatusCode.UNSET


def test_span_is_current_inside_its_block_and_restored_after(trace_capture: CapturedSpans) -> None:
    with tracer.span("outer") as outer:
        assert tracing.current_span() is outer
        with tracer.span("inner") as inner:
            assert tracing.current_span() is inner
        assert tracing.current_span() is outer
    assert tracing.current_span() is tracing.INVALID_SPAN


def test_child_span_shares_trace_and_points_at_parent(trace_capture: CapturedSpans) -> None:
    with tracer.span("parent") as parent, tracer.span("child") as child:
        pass
    assert child.context.trace_id == parent.context.trace_id
    assert trace_capture.find("child").parent == parent.context
    assert trace_capture.find("parent").parent is None
    trace_capture.assert_tree("""
        parent
          child
    """)


def test_exception_leaving_a_span_is_recorded_and_reraised(trace_capture: CapturedSpans) -> None:
    with pytest.raises(KeyError), tracer.span("failing"):
        raise KeyError("missing")
    data = trace_capture.find("failing")
    assert data.status.code is tracing.StatusCode.ERROR
    assert data.status.description == "KeyError: 'missing'"
    event = data.events[0]
    assert event.name == "exception"
    assert event.attributes["exception.type"] == "KeyError"
    assert "raise KeyError" in str(event.attributes["exception.stacktrace"])


def test_record_exception_false_leaves_status_unset(trace_capture: CapturedSpans) -> None:
    with pytest.raises(ValueError), tracer.span("quiet", record_exception=False):
        raise ValueError("x")
    assert trace_capture.find("quiet").status.code is tracing.StatusCode.UNSET


def test_start_span_is_not_current_until_used(trace_capture: CapturedSpans) -> None:
    span = tracer.start_span("manual")
    assert tracing.current_span() is not span
    with tracing.use_span(span, end_on_exit=True) as current:
        assert current is span
        assert tracing.current_span() is span
    assert trace_capture.names() == ["manual"]


def test_use_span_without_end_on_exit_leaves_span_open(trace_capture: CapturedSpans) -> None:
    span = tracer.start_span("open")
    with tracing.use_span(span):
        pass
    assert trace_capture.names() == []
    span.end()
    assert trace_capture.names() == ["open"]


def test_explicit_parent_none_starts_a_new_trace(trace_capture: CapturedSpans) -> None:
    with tracer.span("a") as a:
        b = tracer.start_span("b", parent=None)
        b.end()
    assert b.context.trace_id != a.context.trace_id
    assert trace_capture.find("b").parent is None


def test_parent_may_be_a_span_a_span_context_or_a_context(trace_capture: CapturedSpans) -> None:
    root = tracer.start_span("root", parent=None)
    for parent in (root, root.context, tracing.Context(span=root)):
        child = tracer.start_span("child", parent=parent)
        assert child.context.trace_id == root.context.trace_id
        child.end()
    root.end()
    assert all(s.parent == root.context for s in trace_capture.spans if s.name == "child")


def test_end_twice_keeps_the_first_end(trace_capture: CapturedSpans) -> None:
    span = tracer.start_span("twice")
    span.end(end_time=span.start_time + 10)  # type: ignore[union-attr]
    span.end(end_time=span.start_time + 99)  # type: ignore[union-attr]
    assert len(trace_capture) == 1
    assert trace_capture[0].end_time == trace_capture[0].start_time + 10


def test_writes_after_end_are_ignored(trace_capture: CapturedSpans) -> None:
    span = tracer.start_span("done")
    span.end()
    span.set_attribute("late", 1)
    span.add_event("late")
    span.set_status(tracing.StatusCode.ERROR)
    span.update_name("renamed")
    data = trace_capture.find("done")
    assert not data.attributes
    assert not data.events
    assert data.status.code is tracing.StatusCode.UNSET


def test_ok_status_is_final_and_description_only_kept_for_error(trace_capture: CapturedSpans) -> None:
    with tracer.span("ok") as span:
        span.set_status(tracing.StatusCode.OK, "ignored")
        span.set_status(tracing.StatusCode.ERROR, "too late")
    with tracer.span("error") as span:
        span.set_status(tracing.Status(tracing.StatusCode.ERROR, "why"))
    assert trace_capture.find("ok").status == tracing.Status(tracing.StatusCode.OK, None)
    assert trace_capture.find("error").status == tracing.Status(tracing.StatusCode.ERROR, "why")


def test_links_and_update_name(trace_capture: CapturedSpans) -> None:
    other = tracing.SpanContext(trace_id=5, span_id=6, trace_flags=1, is_remote=True)
    with tracer.span("x", links=[tracing.Link(other, {"why": "batch"})]) as span:
        span.add_link(tracing.SpanContext(7, 8), {"n": 1})
        span.update_name("y")
    data = trace_capture.find("y")
    assert [link.context for link in data.links] == [other, tracing.SpanContext(7, 8)]
    assert dict(data.links[0].attributes) == {"why": "batch"}


def test_decorated_function_gets_a_span_per_call(trace_capture: CapturedSpans) -> None:
    @tracer.span("handle", kind=tracing.SpanKind.SERVER)
    def handle(x: int) -> int:
        with tracer.span("inner"):
            return x * 2

    assert handle(2) == 4
    assert handle(3) == 6
    assert trace_capture.names() == ["inner", "handle", "inner", "handle"]
    assert handle.__name__ == "handle"
    assert trace_capture.spans[1].kind is tracing.SpanKind.SERVER


def test_decorated_coroutine_function(trace_capture: CapturedSpans) -> None:
    @tracer.span("fetch")
    async def fetch() -> str:
        await asyncio.sleep(0)
        assert tracing.current_span().name == "fetch"
        return "ok"

    assert asyncio.run(fetch()) == "ok"
    assert trace_capture.names() == ["fetch"]


def test_decorated_generator_span_is_current_only_inside_the_generator(
    trace_capture: CapturedSpans,
) -> None:
    seen: List[str] = []

    @tracer.span("produce")
    def produce() -> Iterator[int]:
        for i in range(3):
            seen.append(tracing.current_span().name)
            yield i

    with tracer.span("consume"):
        for _ in produce():
            assert tracing.current_span().name == "consume"
    assert seen == ["produce"] * 3
    trace_capture.assert_tree("""
        consume
          produce
    """)


def test_decorated_generator_closed_early_ends_its_span(trace_capture: CapturedSpans) -> None:
    @tracer.span("endless")
    def endless() -> Iterator[int]:
        i = 0
        while True:
            yield i
            i += 1

    gen = endless()
    assert next(gen) == 0
    gen.close()
    data = trace_capture.find("endless")
    assert data.status.code is tracing.StatusCode.UNSET


def test_generator_never_started_makes_no_span(trace_capture: CapturedSpans) -> None:
    @tracer.span("never")
    def never() -> Iterator[int]:
        yield 1

    never()
    assert trace_capture.names() == []


def test_generator_error_is_recorded(trace_capture: CapturedSpans) -> None:
    @tracer.span("broken")
    def broken() -> Iterator[int]:
        yield 1
        raise RuntimeError("bad")

    with pytest.raises(RuntimeError):
        list(broken())
    assert trace_capture.find("broken").status.code is tracing.StatusCode.ERROR


def test_generator_send_and_return_value_pass_through(trace_capture: CapturedSpans) -> None:
    @tracer.span("echo")
    def echo() -> Iterator[object]:
        received = yield "ready"
        yield received
        return "done"

    gen = echo()
    assert next(gen) == "ready"
    assert gen.send("hello") == "hello"
    with pytest.raises(StopIteration) as stop:
        next(gen)
    assert stop.value.value == "done"


def test_decorated_async_generator(trace_capture: CapturedSpans) -> None:
    @tracer.span("stream")
    async def stream() -> AsyncIterator[str]:
        for i in range(2):
            assert tracing.current_span().name == "stream"
            yield str(i)

    async def main() -> List[str]:
        with tracer.span("reader"):
            items = [item async for item in stream()]
            assert tracing.current_span().name == "reader"
            return items

    assert asyncio.run(main()) == ["0", "1"]
    trace_capture.assert_tree("""
        reader
          stream
    """)


def test_async_generator_closed_early_ends_its_span(trace_capture: CapturedSpans) -> None:
    @tracer.span("ticks")
    async def ticks() -> AsyncIterator[int]:
        i = 0
        while True:
            yield i
            i += 1

    async def main() -> None:
        agen = ticks()
        await agen.__anext__()
        await agen.aclose()

    asyncio.run(main())
    assert trace_capture.names() == ["ticks"]


def test_span_shared_between_threads_takes_concurrent_writes(trace_capture: CapturedSpans) -> None:
    span = tracer.start_span("shared")
    start, written = threading.Barrier(8), threading.Barrier(8)
    errors: List[BaseException] = []

    def work(n: int) -> None:
        try:
            start.wait(timeout=10)
            for i in range(200):
                span.set_attribute(f"t{n}.{i % 20}", i)
                span.add_event("e")
            written.wait(timeout=10)
            span.end()  # every thread ends it; the first end wins
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    spans: List[SpanData] = trace_capture.spans
    assert len(spans) == 1
    data = spans[0]
    assert len(data.attributes) == 128  # 160 distinct keys offered, the limit kept
    assert data.dropped_attributes > 0
    assert len(data.events) == 128
    assert data.dropped_events == 8 * 200 - 128


def test_sampled_out_span_has_a_valid_context_and_records_nothing() -> None:
    with capture(sampler=tracing.sampling.always_off()) as spans:
        with tracer.span("dropped") as span:
            span.set_attribute("a", 1)
            child = tracer.start_span("child")
        assert isinstance(span, tracing.NonRecordingSpan)
        assert span.context.is_valid
        assert not span.context.sampled
        assert child.context.trace_id == span.context.trace_id
    assert spans.names() == []


def test_new_trace_sets_the_w3c_random_flag(trace_capture: CapturedSpans) -> None:
    with tracer.span("root") as span:
        assert span.context.random
        assert span.context.sampled
        assert span.context.trace_flags == 0x03


def test_unconfigured_decorated_generators_keep_an_extracted_context() -> None:
    """A service that does not trace still forwards its caller's context from generators."""
    incoming = tracing.extract({"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})

    @tracer.span("items")
    def items() -> Iterator[str]:
        carrier: dict[str, str] = {}
        tracing.inject(carrier)
        yield carrier.get("traceparent", "")

    @tracer.span("aitems")
    async def aitems() -> AsyncIterator[str]:
        carrier: dict[str, str] = {}
        tracing.inject(carrier)
        yield carrier.get("traceparent", "")

    async def collect() -> List[str]:
        return [item async for item in aitems()]

    with tracing.use_context(incoming):
        assert list(items()) == ["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"]
        assert asyncio.run(collect()) == ["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"]


def test_unhashable_span_name_never_raises_before_configure() -> None:
    with tracer.span(["db", "query"]) as span:  # type: ignore[arg-type]
        assert span is tracing.INVALID_SPAN


@pytest.mark.parametrize("sampler", ["always_on", "always_off"])
def test_a_root_span_carries_the_empty_trace_state(sampler: str) -> None:
    tracing.configure(exporter="memory", processor="simple", sampler=sampler)
    with tracer.span("root") as span:
        state = span.context.trace_state
    assert isinstance(state, tracing.TraceState)
    assert len(state) == 0 and state.header() == ""


def test_a_scope_left_and_entered_again_starts_a_new_span(trace_capture: CapturedSpans) -> None:
    scope = tracer.span("again")
    with scope as first:
        pass
    with scope as second:
        assert tracing.current_span() is second
    assert first is not second
    assert first.context.span_id != second.context.span_id
    assert trace_capture.names() == ["again", "again"]
    assert tracing.current_span() is tracing.INVALID_SPAN


def test_a_sampled_out_scope_is_current_inside_its_block() -> None:
    tracing.configure(exporter="memory", processor="simple", sampler="always_off")
    with tracer.span("unsampled") as span:
        assert tracing.current_span() is span
        assert span.context.is_valid and not span.context.sampled
        with tracer.span("child") as child:
            assert child.context.trace_id == span.context.trace_id
    assert tracing.current_span() is tracing.INVALID_SPAN


def test_start_span_with_an_explicit_start_time_keeps_it(trace_capture: CapturedSpans) -> None:
    span = tracer.start_span("timed", start_time=1_000)
    span.end(2_000)
    data = trace_capture.spans[0]
    assert (data.start_time, data.end_time) == (1_000, 2_000)


def test_a_float_start_and_end_time_are_recorded_as_whole_nanoseconds(
    trace_capture: CapturedSpans,
) -> None:
    with tracer.span("backfilled", start_time=1_700_000_000_123_456_789.0):
        pass
    tracer.start_span("manual", start_time=1_500.9).end(2_500.2)  # type: ignore[arg-type]
    backfilled, manual = trace_capture.spans
    assert type(backfilled.start_time) is int and type(backfilled.end_time) is int
    assert backfilled.start_time == int(1_700_000_000_123_456_789.0)
    assert (manual.start_time, manual.end_time) == (1_500, 2_500)


@pytest.mark.parametrize("bad", [-1, 1 << 64, "yesterday", float("nan"), float("inf"), None])
def test_a_start_or_end_time_no_wire_format_can_carry_is_taken_as_now(
    trace_capture: CapturedSpans, bad: object,
) -> None:
    import time

    before = time.time_ns()
    tracer.start_span("odd start", start_time=bad).end()  # type: ignore[arg-type]
    tracer.start_span("odd end").end(bad)  # type: ignore[arg-type]
    after = time.time_ns()
    for data in trace_capture.spans:
        assert before <= data.start_time <= data.end_time <= after


def test_a_sampled_out_span_shows_the_same_context_every_time_and_to_every_thread() -> None:
    tracing.configure(exporter="memory", processor="simple", sampler="always_off")
    seen: List[tracing.SpanContext] = []
    with tracer.span("unsampled") as span:
        readers = [threading.Thread(target=lambda: seen.append(span.context)) for _ in range(4)]
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join(5.0)
        seen.append(span.context)
        carrier: dict[str, str] = {}
        tracing.inject(carrier)
    assert len(seen) == 5 and all(context == seen[0] for context in seen)
    assert seen[0].is_valid and not seen[0].sampled and not seen[0].is_remote
    assert carrier["traceparent"] == f"00-{seen[0].trace_id_hex}-{seen[0].span_id_hex}-02"
