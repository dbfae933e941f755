"""Plain-function (not ``async``) handlers on a traced ``grpc.aio`` server, on 127.0.0.1.

grpc.aio runs such handlers in a thread pool; the SERVER span must still record the code the
handler set, and end when the client leaves, also while the handler is still running.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import logging
import threading
import time
import weakref
from concurrent import futures
from typing import Any, AsyncIterator, Dict, Iterator, List, Optional

import grpc
import grpc.aio
import pytest
import tracing_api_grpc
from tracing_api_grpc import _aio_plain

import tracing_api
from tracing_api import StatusCode
from tracing_api.testing import CapturedSpans, capture

SERVICE = "test.Plain"


class Signals:
    """What the handlers tell the test (threading events: handlers run in a pool)."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()  # lets a waiting handler return
        self.closed = threading.Event()  # a generator handler's ``finally`` ran
        self.called_back = threading.Event()  # an ``add_callback`` callback ran


signals = Signals()


@pytest.fixture(autouse=True)
def _fresh_signals() -> Iterator[None]:
    global signals
    signals = Signals()
    yield
    signals.release.set()  # no handler outlives its test


def _identity(data: bytes) -> bytes:
    return data


def set_code(request: bytes, context: Any) -> bytes:
    context.set_code(grpc.StatusCode.NOT_FOUND)
    context.set_details("no such user")
    return b""


def abort(request: bytes, context: Any) -> bytes:
    context.abort(grpc.StatusCode.NOT_FOUND, "no such user")
    raise AssertionError("abort returned")


def boom(request: bytes, context: Any) -> bytes:
    raise ValueError("boom")


def wait_for_release(request: bytes, context: Any) -> bytes:
    signals.started.set()
    signals.release.wait(10)
    return b"late"


def thread_name(request: bytes, context: Any) -> bytes:
    return threading.current_thread().name.encode()


def who_am_i(request: bytes, context: Any) -> bytes:
    span_context = tracing_api.current_span().context
    return f"{span_context.trace_id_hex}-{span_context.span_id_hex}".encode()


def ticks(request: bytes, context: Any) -> Iterator[bytes]:
    if request == b"callback":
        context.add_callback(signals.called_back.set)
    signals.started.set()
    try:
        for _ in range(1000):
            yield b"tick"
            time.sleep(0.01)
    finally:
        signals.closed.set()


def first_and_rest(requests: Any, context: Any) -> bytes:
    first = requests.next()
    return bytes(first) + b"|" + b"".join(requests)


def join(requests: Iterator[bytes], context: Any) -> bytes:
    return b"".join(requests)


def upper(requests: Iterator[bytes], context: Any) -> Iterator[bytes]:
    for request in requests:
        yield request.upper()


HANDLERS: Dict[str, grpc.RpcMethodHandler] = {
    "SetCode": grpc.unary_unary_rpc_method_handler(set_code, _identity, _identity),
    "Abort": grpc.unary_unary_rpc_method_handler(abort, _identity, _identity),
    "Boom": grpc.unary_unary_rpc_method_handler(boom, _identity, _identity),
    "Wait": grpc.unary_unary_rpc_method_handler(wait_for_release, _identity, _identity),
    "ThreadName": grpc.unary_unary_rpc_method_handler(thread_name, _identity, _identity),
    "WhoAmI": grpc.unary_unary_rpc_method_handler(who_am_i, _identity, _identity),
    "Ticks": grpc.unary_stream_rpc_method_handler(ticks, _identity, _identity),
    "FirstAndRest": grpc.stream_unary_rpc_method_handler(first_and_rest, _identity, _identity),
    "Join": grpc.stream_unary_rpc_method_handler(join, _identity, _identity),
    "Upper": grpc.stream_stream_rpc_method_handler(upper, _identity, _identity),
}


@contextlib.asynccontextmanager
async def plain_server(thread_pool: Optional[futures.Executor] = None) -> AsyncIterator[grpc.aio.Channel]:
    """A traced grpc.aio server of ``HANDLERS``; yields an untraced channel to it (so the only
    spans are the server's).
    """
    server = grpc.aio.server(
        thread_pool, interceptors=tracing_api_grpc.aio_server_interceptors(thread_pool=thread_pool)
    )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, HANDLERS),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield channel
    finally:
        signals.release.set()
        await server.stop(None)


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 30))


async def ended(spans: CapturedSpans, count: int = 1, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while len(spans) < count:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def started() -> bool:
    return await asyncio.get_running_loop().run_in_executor(None, signals.started.wait, 5)


def unary(channel: grpc.aio.Channel, method: str) -> Any:
    return channel.unary_unary(f"/{SERVICE}/{method}", _identity, _identity)


def test_code_the_plain_handler_set_is_recorded_on_the_server_span() -> None:
    async def scenario() -> None:
        async with plain_server() as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await unary(channel, "SetCode")(b"x", timeout=5)
            assert raised.value.code() == grpc.StatusCode.NOT_FOUND

    with capture() as spans:
        run(scenario())
    [server] = list(spans)
    assert server.attributes["rpc.grpc.status_code"] == 5
    assert server.status.code == StatusCode.UNSET  # the caller's error, not the server's


def test_abort_in_a_plain_handler_records_its_code_and_no_exception() -> None:
    async def scenario(spans: CapturedSpans) -> None:
        async with plain_server() as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await unary(channel, "Abort")(b"x", timeout=5)
            assert raised.value.code() == grpc.StatusCode.NOT_FOUND
            # abort sends the status before the handler unwinds in its thread
            assert await ended(spans)

    with capture() as spans:
        run(scenario(spans))
    [server] = list(spans)
    assert server.attributes["rpc.grpc.status_code"] == 5
    assert server.status.code == StatusCode.UNSET
    assert not [e for e in server.events if e.name == "exception"]


def test_exception_raised_by_a_plain_handler_is_recorded_on_the_server_span() -> None:
    async def scenario() -> None:
        async with plain_server() as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await unary(channel, "Boom")(b"x", timeout=5)
            assert raised.value.code() == grpc.StatusCode.UNKNOWN

    with capture() as spans:
        run(scenario())
    [server] = list(spans)
    assert server.attributes["rpc.grpc.status_code"] == 2
    assert server.status.description == "ValueError: boom"


def test_plain_handler_cancelled_by_the_client_ends_its_span_as_cancelled_at_once() -> None:
    async def scenario(spans: CapturedSpans) -> None:
        async with plain_server() as channel:
            call = unary(channel, "Wait")(b"x", timeout=10)
            assert await started()
            call.cancel()
            # The handler is still waiting: the span ends with the call, not with the handler.
            assert await ended(spans)

    with capture() as spans:
        run(scenario(spans))
    [server] = list(spans)
    assert server.attributes["rpc.grpc.status_code"] == 1


def test_plain_handler_past_its_deadline_ends_its_span_as_deadline_exceeded() -> None:
    async def scenario(spans: CapturedSpans) -> None:
        async with plain_server() as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await unary(channel, "Wait")(b"x", timeout=0.3)
            assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert await ended(spans)

    with capture() as spans:
        run(scenario(spans))
    [server] = list(spans)
    assert server.attributes["rpc.grpc.status_code"] == 4
    assert server.status.code == StatusCode.ERROR


def test_plain_generator_cancelled_by_the_client_ends_its_span() -> None:
    async def scenario(spans: CapturedSpans) -> None:
        async with plain_server() as channel:
            call = channel.unary_stream(f"/{SERVICE}/Ticks", _identity, _identity)(b"x", timeout=10)
            assert await call.read() == b"tick"
            call.cancel()
            assert await ended(spans)

    with capture() as spans:
        run(scenario(spans))
    [server] = list(spans)
    assert server.attributes["rpc.grpc.status_code"] == 1


def test_plain_generator_is_closed_when_the_client_leaves() -> None:
    async def scenario() -> bool:
        async with plain_server() as channel:
            call = channel.unary_stream(f"/{SERVICE}/Ticks", _identity, _identity)(b"x", timeout=10)
            assert await call.read() == b"tick"
            call.cancel()
            return await asyncio.get_running_loop().run_in_executor(None, signals.closed.wait, 5)

    with capture():
        assert run(scenario())


def test_add_callback_of_a_plain_generator_runs_when_the_client_leaves() -> None:
    async def scenario() -> bool:
        async with plain_server() as channel:
            call = channel.unary_stream(f"/{SERVICE}/Ticks", _identity, _identity)(
                b"callback", timeout=10)
            assert await call.read() == b"tick"
            call.cancel()
            return await asyncio.get_running_loop().run_in_executor(None, signals.called_back.wait, 5)

    with capture():
        assert run(scenario())


def test_plain_request_streaming_handlers_read_every_request() -> None:
    async def scenario() -> List[bytes]:
        async with plain_server() as channel:
            joined = await channel.stream_unary(f"/{SERVICE}/FirstAndRest", _identity, _identity)(
                iter([b"a", b"b", b"c"]), timeout=5)
            call = channel.stream_stream(f"/{SERVICE}/Upper", _identity, _identity)(
                iter([b"x", b"y"]), timeout=5)
            return [joined] + [response async for response in call]

    with capture() as spans:
        assert run(scenario()) == [b"a|bc", b"X", b"Y"]
    events = {s.name: [e.attributes["rpc.message.type"] for e in s.events] for s in spans}
    assert events == {
        f"{SERVICE}/FirstAndRest": ["RECEIVED", "RECEIVED", "RECEIVED", "SENT"],
        f"{SERVICE}/Upper": ["RECEIVED", "SENT", "RECEIVED", "SENT"],
    }


def test_plain_handler_runs_in_the_thread_pool_given_to_the_interceptor() -> None:
    pool = futures.ThreadPoolExecutor(2, thread_name_prefix="plain-handlers")

    async def scenario() -> bytes:
        async with plain_server(pool) as channel:
            return bytes(await unary(channel, "ThreadName")(b"x", timeout=5))

    try:
        with capture():
            assert run(scenario()).startswith(b"plain-handlers")
    finally:
        pool.shutdown(wait=True)


def test_plain_handlers_answer_with_tracing_off() -> None:
    async def scenario() -> List[Any]:
        async with plain_server() as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await unary(channel, "SetCode")(b"x", timeout=5)
            joined = await channel.stream_unary(f"/{SERVICE}/Join", _identity, _identity)(
                iter([b"a", b"b"]), timeout=5)
            upper_call = channel.stream_stream(f"/{SERVICE}/Upper", _identity, _identity)(
                iter([b"q"]), timeout=5)
            return [raised.value.code(), joined] + [response async for response in upper_call]

    assert run(scenario()) == [grpc.StatusCode.NOT_FOUND, b"ab", b"Q"]


def test_plain_handler_passes_the_callers_context_on_with_tracing_off() -> None:
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

    async def scenario() -> bytes:
        async with plain_server() as channel:
            return bytes(await unary(channel, "WhoAmI")(
                b"x", metadata=(("traceparent", traceparent),), timeout=5))

    assert run(scenario()) == b"0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331"


def test_plain_handler_runs_in_the_servers_migration_pool_with_tracing_off() -> None:
    """No ``thread_pool`` given: with tracing off grpc.aio runs the handler where it would."""
    pool = futures.ThreadPoolExecutor(2, thread_name_prefix="migration")

    async def scenario() -> bytes:
        server = grpc.aio.server(pool, interceptors=tracing_api_grpc.aio_server_interceptors())
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, HANDLERS),))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                return bytes(await unary(channel, "ThreadName")(b"x", timeout=5))
        finally:
            await server.stop(None)

    try:
        assert run(scenario()).startswith(b"migration")
    finally:
        pool.shutdown(wait=True)


class NotFoundOnKeyError(grpc.aio.ServerInterceptor):
    """An application's interceptor for a service of plain functions: it wraps the behavior
    with a plain function, so it must be given one.
    """

    async def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        handler = await continuation(handler_call_details)
        behavior = handler.unary_unary

        def wrapped(request: bytes, context: Any) -> Any:
            try:
                return behavior(request, context)
            except KeyError:
                context.abort(grpc.StatusCode.NOT_FOUND, "missing")

        return grpc.unary_unary_rpc_method_handler(
            wrapped, handler.request_deserializer, handler.response_serializer)


def test_interceptor_before_ours_gets_the_plain_handler_with_tracing_off() -> None:
    async def scenario() -> bytes:
        server = grpc.aio.server(
            interceptors=[NotFoundOnKeyError(), *tracing_api_grpc.aio_server_interceptors()])
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, HANDLERS),))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                return bytes(await unary(channel, "WhoAmI")(b"x", timeout=5))
        finally:
            await server.stop(None)

    assert run(scenario()) == b"0" * 32 + b"-" + b"0" * 16  # answered, in no trace


def test_plain_wrapping_interceptor_after_ours_is_traced_with_the_handler() -> None:
    """The order the docs recommend while tracing: ours first, so the others get plain ones."""

    async def scenario() -> bytes:
        server = grpc.aio.server(
            interceptors=[*tracing_api_grpc.aio_server_interceptors(), NotFoundOnKeyError()])
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, HANDLERS),))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                return bytes(await unary(channel, "WhoAmI")(b"x", timeout=5))
        finally:
            await server.stop(None)

    with capture() as spans:
        answer = run(scenario())
    [server] = list(spans)
    assert answer == f"{server.context.trace_id_hex}-{server.context.span_id_hex}".encode()


def test_traced_plain_handler_without_a_thread_pool_is_noted_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        async with plain_server() as channel:
            for _ in range(2):
                await unary(channel, "ThreadName")(b"x", timeout=5)

    with caplog.at_level(logging.INFO, logger="tracing_api_grpc"), capture():
        run(scenario())
    notes = [r for r in caplog.records if "migration_thread_pool" in r.getMessage()]
    assert [r.levelno for r in notes] == [logging.INFO]


def test_stopped_server_lets_go_of_the_thread_pool_given_to_the_interceptor() -> None:
    async def scenario(pool: futures.Executor) -> List[bytes]:
        async with plain_server(pool) as channel:
            return [bytes(await unary(channel, "ThreadName")(b"x", timeout=5))]

    pool = futures.ThreadPoolExecutor(2, thread_name_prefix="short-lived")
    with capture() as spans:
        assert run(scenario(pool))[0].startswith(b"short-lived")
    assert len(spans) == 1
    pool.shutdown(wait=True)
    kept = weakref.ref(pool)
    del pool
    deadline = time.monotonic() + 5
    while kept() is not None and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.01)
    assert kept() is None


class _DoneAfterTheWait(concurrent.futures.Future):  # type: ignore[type-arg]
    """The future of an operation that completes just after a timed wait for it gives up."""

    def result(self, timeout: Optional[float] = None) -> Any:
        if not self.done():
            self.set_result("sent")
            raise concurrent.futures.TimeoutError()
        return super().result(timeout)


def test_wait_returns_what_completed_just_after_its_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that finishes at the 1-second boundary succeeded: no TimeoutError of the wait's."""
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever, daemon=True)
    runner.start()
    submit = asyncio.run_coroutine_threadsafe

    def late(coroutine: Any, target: asyncio.AbstractEventLoop) -> Any:
        submit(coroutine, target).result(5)  # the operation really runs on the loop
        return _DoneAfterTheWait()

    async def write() -> str:
        return "sent"

    monkeypatch.setattr(_aio_plain.asyncio, "run_coroutine_threadsafe", late)
    try:
        assert _aio_plain._wait(loop, write()) == "sent"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        runner.join(5)
        loop.close()


class CountingSampler:
    """Samples every span, counting those it was asked about: the spans started."""

    def __init__(self) -> None:
        self.asked = 0
        self._lock = threading.Lock()

    def should_sample(self, parent: Any, trace_id: int, name: str, kind: Any,
                      attributes: Any) -> bool:
        with self._lock:
            self.asked += 1
        return True


def _refusing_deserializer(data: bytes) -> bytes:
    raise ValueError("not a valid message")


class Unauthenticated(grpc.aio.ServerInterceptor):
    """An interceptor further out than ours that answers every call itself."""

    async def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        await continuation(handler_call_details)

        def refuse(request: bytes, context: Any) -> bytes:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "who are you")
            raise AssertionError("abort returned")

        return grpc.unary_unary_rpc_method_handler(refuse, _identity, _identity)


async def _call_plain_handler_not_run(interceptors: List[Any], deserializer: Any) -> grpc.StatusCode:
    server = grpc.aio.server(interceptors=interceptors)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {
        "WhoAmI": grpc.unary_unary_rpc_method_handler(who_am_i, deserializer, _identity)}),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await unary(channel, "WhoAmI")(b"x", timeout=5)
            return raised.value.code()
    finally:
        await server.stop(None)


def test_plain_handler_whose_request_fails_to_deserialize_starts_no_span() -> None:
    sampler = CountingSampler()
    with capture(sampler=sampler) as spans:
        code = run(_call_plain_handler_not_run(
            tracing_api_grpc.aio_server_interceptors(), _refusing_deserializer))
    assert code == grpc.StatusCode.UNKNOWN  # grpc.aio's answer to a request it cannot read
    assert sampler.asked == 0
    assert not list(spans)


def test_plain_handler_refused_by_an_outer_interceptor_starts_no_span() -> None:
    sampler = CountingSampler()
    with capture(sampler=sampler) as spans:
        code = run(_call_plain_handler_not_run(
            [Unauthenticated(), *tracing_api_grpc.aio_server_interceptors()], _identity))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert sampler.asked == 0
    assert not list(spans)
