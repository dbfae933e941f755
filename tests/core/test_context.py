"""Context propagation inside a process: asyncio, threads, executors, generators, baggage."""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator, List

import pytest

import tracing_api as tracing
from tracing_api import context
from tracing_api.testing import CapturedSpans

tracer = tracing.get_tracer(__name__)


def test_current_span_is_never_none() -> None:
    assert tracing.current_span() is tracing.INVALID_SPAN
    assert tracing.current_context() == tracing.Context()


def test_asyncio_tasks_inherit_the_span_they_were_created_under(trace_capture: CapturedSpans) -> None:
    async def child(n: int) -> None:
        with tracer.span(f"child{n}"):
            await asyncio.sleep(0.001 * n)

    async def main() -> None:
        with tracer.span("root"):
            await asyncio.gather(*(child(n) for n in range(3)))

    asyncio.run(main())
    trace_capture.assert_tree("""
        root
          child0
          child1
          child2
    """)


def test_concurrent_tasks_do_not_see_each_others_spans(trace_capture: CapturedSpans) -> None:
    seen: List[str] = []

    async def worker(name: str) -> None:
        with tracer.span(name):
            await asyncio.sleep(0.01)
            seen.append(f"{name}:{tracing.current_span().name}")

    async def main() -> None:
        await asyncio.gather(worker("a"), worker("b"))

    asyncio.run(main())
    assert sorted(seen) == ["a:a", "b:b"]


def test_plain_thread_does_not_inherit_but_wrapped_callable_does(trace_capture: CapturedSpans) -> None:
    seen: List[Any] = []
    with tracer.span("root") as root:
        plain = threading.Thread(target=lambda: seen.append(tracing.current_span()))
        wrapped = threading.Thread(target=context.wrap(lambda: seen.append(tracing.current_span())))
        plain.start()
        plain.join(10)
        wrapped.start()
        wrapped.join(10)
    assert seen == [tracing.INVALID_SPAN, root]


def test_wrapped_callable_may_run_in_two_threads_at_once() -> None:
    barrier = threading.Barrier(2)
    results: List[bool] = []
    fn = context.wrap(lambda: results.append(barrier.wait(timeout=10) >= 0))
    threads = [threading.Thread(target=fn) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == [True, True]


def test_executor_wrapper_runs_tasks_in_the_submitters_context(trace_capture: CapturedSpans) -> None:
    with ThreadPoolExecutor(2) as pool:
        executor = context.wrap_executor(pool)
        with tracer.span("root") as root:
            future = executor.submit(tracing.current_span)
            mapped = list(executor.map(lambda _: tracing.current_span(), range(3)))
        assert future.result(timeout=10) is root
        assert mapped == [root, root, root]


def test_generator_closed_in_another_context_logs_nothing_and_keeps_current_span(
    trace_capture: CapturedSpans, caplog: pytest.LogCaptureFixture
) -> None:
    """A generator holding a span, closed in another context (opentelemetry-python#2606)."""

    def holder() -> Iterator[int]:
        with tracer.span("held"):
            yield 1
            yield 2

    gen = holder()
    next(gen)  # entered in this context
    caplog.set_level(logging.DEBUG, logger="tracing_api")

    def close_elsewhere() -> None:
        with tracer.span("other") as other:
            gen.close()
            assert tracing.current_span() is other

    import contextvars

    contextvars.copy_context().run(close_elsewhere)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "held" in trace_capture.names()


def test_use_span_exited_in_another_context_never_raises(trace_capture: CapturedSpans) -> None:
    import contextvars

    span = tracer.start_span("cross")
    scope = tracing.use_span(span, end_on_exit=True)
    scope.__enter__()
    ctx = contextvars.copy_context()
    ctx.run(scope.__exit__, None, None, None)
    assert trace_capture.names() == ["cross"]
    assert ctx.run(tracing.current_span) is tracing.INVALID_SPAN


def test_baggage_is_scoped_and_readable() -> None:
    assert context.baggage() == {}
    with context.use_baggage({"user": "alice", "tier": "gold"}):
        assert context.get_baggage("user") == "alice"
        with context.use_baggage({"tier": None}):
            assert dict(context.baggage()) == {"user": "alice"}
        assert context.get_baggage("tier") == "gold"
    assert context.get_baggage("user") is None


def test_attach_and_detach_an_extracted_context(trace_capture: CapturedSpans) -> None:
    remote = tracing.SpanContext(0xABC, 0xDEF, 1, is_remote=True)
    incoming = tracing.Context().with_span_context(remote).with_baggage({"k": "v"})
    token = context.attach(incoming)
    try:
        assert tracing.current_span().context == remote
        with tracer.span("server") as span:
            assert span.context.trace_id == 0xABC
        assert context.get_baggage("k") == "v"
    finally:
        context.detach(token)
    assert tracing.current_span() is tracing.INVALID_SPAN
    assert trace_capture.find("server").parent == remote


def test_use_context_makes_a_context_current_for_a_block() -> None:
    remote = tracing.SpanContext(1, 2, 1, is_remote=True)
    with tracing.use_context(tracing.Context().with_span_context(remote)) as ctx:
        assert tracing.current_context() == ctx
    assert tracing.current_span() is tracing.INVALID_SPAN
