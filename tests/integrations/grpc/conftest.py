"""A small gRPC service with all four call shapes, served for real on 127.0.0.1.

``test.Echo`` takes and returns raw bytes (generic handlers, identity serializers). What a unary
handler does is chosen by the request: ``ok``, ``child`` (starts a span), ``abort``,
``abort-internal``, ``raise``, ``sleep`` (until the client goes away), ``whoami`` (answers the
current trace and span ids), ``baggage`` (answers the ``user`` baggage entry) and
``forward:<target>`` (calls ``child`` on another server through a traced channel).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import types
from concurrent import futures
from typing import Any, AsyncIterator, Callable, Dict, Iterator, List, Tuple

import grpc
import grpc.aio
import pytest
import tracing_api_grpc

import tracing_api
from tracing_api.context import get_baggage

SERVICE = "test.Echo"
tracer = tracing_api.get_tracer("tests.grpc")
sleeping = threading.Event()  # set by the ``sleep`` handlers once they run


def _identity(data: bytes) -> bytes:
    return data


def _whoami() -> bytes:
    context = tracing_api.current_span().context
    return f"{context.trace_id_hex}-{context.span_id_hex}".encode()


# ------------------------------------------------------------------------------- grpc handlers


def unary(request: bytes, context: grpc.ServicerContext) -> bytes:
    if request == b"child":
        with tracer.span("handler.work"):
            pass
    elif request == b"abort":
        context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
    elif request == b"abort-internal":
        context.abort(grpc.StatusCode.INTERNAL, "broken")
    elif request == b"raise":
        raise ValueError("boom")
    elif request == b"sleep":
        sleeping.set()
        deadline = time.monotonic() + 10
        while context.is_active() and time.monotonic() < deadline:
            time.sleep(0.01)
    elif request == b"whoami":
        return _whoami()
    elif request == b"baggage":
        return (get_baggage("user") or "").encode()
    elif request.startswith(b"forward:"):
        target = request.split(b":", 1)[1].decode()
        with traced_channel(target) as channel:
            call = channel.unary_unary(f"/{SERVICE}/Unary", _identity, _identity)
            return call(b"child", timeout=10)
    return request


def server_stream(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
    if request == b"abort":
        context.abort(grpc.StatusCode.NOT_FOUND, "no such feed")
    if request == b"forever":
        sleeping.set()
        deadline = time.monotonic() + 10
        while context.is_active() and time.monotonic() < deadline:
            yield b"tick"
            time.sleep(0.01)
        return
    for index in range(3):
        with tracer.span("item"):
            pass
        yield b"item-%d" % index


def client_stream(requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
    return b"".join(requests)


def first_request(requests: Any, context: grpc.ServicerContext) -> bytes:
    return bytes(requests.next())  # grpc's request iterators offer next() beside __next__


def bidi_stream(requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
    for request in requests:
        yield request.upper()


def echo_handler() -> grpc.GenericRpcHandler:
    def handler(make: Callable[..., Any], behavior: Callable[..., Any]) -> Any:
        return make(behavior, request_deserializer=_identity, response_serializer=_identity)

    return grpc.method_handlers_generic_handler(SERVICE, {
        "Unary": handler(grpc.unary_unary_rpc_method_handler, unary),
        "ServerStream": handler(grpc.unary_stream_rpc_method_handler, server_stream),
        "ClientStream": handler(grpc.stream_unary_rpc_method_handler, client_stream),
        "FirstRequest": handler(grpc.stream_unary_rpc_method_handler, first_request),
        "BidiStream": handler(grpc.stream_stream_rpc_method_handler, bidi_stream),
    })


@contextlib.contextmanager
def serve(host: str = "127.0.0.1") -> Iterator[str]:
    """A traced ``grpc`` server of ``test.Echo`` on an ephemeral port of ``host`` (``[::1]``
    for IPv6); yields its target.
    """
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=8),
        interceptors=tracing_api_grpc.server_interceptors(),
    )
    server.add_generic_rpc_handlers((echo_handler(),))
    port = server.add_insecure_port(f"{host}:0")
    server.start()
    try:
        yield f"{host}:{port}"
    finally:
        server.stop(None).wait(5)


@contextlib.contextmanager
def traced_channel(target: str, *extra: grpc.UnaryUnaryClientInterceptor,
                   propagator: Any = None) -> Iterator[grpc.Channel]:
    """A channel to ``target`` traced by our interceptor (outermost), then ``extra`` ones."""
    raw = grpc.insecure_channel(target)
    try:
        yield grpc.intercept_channel(
            raw, *tracing_api_grpc.client_interceptors(target, propagator=propagator), *extra
        )
    finally:
        raw.close()


class MetadataRecorder(grpc.UnaryUnaryClientInterceptor):
    """An interceptor placed inside ours: it keeps the metadata each call goes out with."""

    def __init__(self) -> None:
        self.sent: List[Tuple[Tuple[str, Any], ...]] = []

    def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        self.sent.append(tuple(client_call_details.metadata or ()))
        return continuation(client_call_details, request)


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass; its last value."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture(autouse=True)
def _not_sleeping() -> None:
    sleeping.clear()


@pytest.fixture
def target() -> Iterator[str]:
    """The target of a running traced ``test.Echo`` server."""
    with serve() as address:
        yield address


@pytest.fixture
def channel(target: str) -> Iterator[grpc.Channel]:
    """A traced channel to the ``target`` server."""
    with traced_channel(target) as made:
        yield made


# -------------------------------------------------------------------------- grpc.aio handlers


async def aio_unary(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    if request == b"child":
        with tracer.span("handler.work"):
            pass
    elif request == b"abort":
        await context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
    elif request == b"raise":
        raise ValueError("boom")
    elif request == b"sleep":
        sleeping.set()
        await asyncio.sleep(10)
    elif request == b"whoami":
        return _whoami()
    elif request.startswith(b"forward:"):
        target = request.split(b":", 1)[1].decode()
        async with aio_traced_channel(target) as channel:
            call = channel.unary_unary(f"/{SERVICE}/Unary", _identity, _identity)
            return await call(b"child", timeout=10)
    return request


async def aio_server_stream(
    request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]
) -> AsyncIterator[bytes]:
    if request == b"forever":
        sleeping.set()
        for _ in range(1000):
            yield b"tick"
            await asyncio.sleep(0.01)
        return
    for index in range(3):
        with tracer.span("item"):
            pass
        yield b"item-%d" % index


async def aio_client_stream(
    requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[bytes, bytes]
) -> bytes:
    return b"".join([request async for request in requests])


async def aio_bidi_stream(
    requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[bytes, bytes]
) -> AsyncIterator[bytes]:
    async for request in requests:
        yield request.upper()


def aio_echo_handler() -> grpc.GenericRpcHandler:
    behaviors: Dict[str, Any] = {
        "Unary": grpc.unary_unary_rpc_method_handler(aio_unary, _identity, _identity),
        "ServerStream": grpc.unary_stream_rpc_method_handler(aio_server_stream, _identity, _identity),
        "ClientStream": grpc.stream_unary_rpc_method_handler(aio_client_stream, _identity, _identity),
        "BidiStream": grpc.stream_stream_rpc_method_handler(aio_bidi_stream, _identity, _identity),
        # A plain function: the traced handler runs it in a thread pool.
        "SyncUnary": grpc.unary_unary_rpc_method_handler(unary, _identity, _identity),
    }
    return grpc.method_handlers_generic_handler(SERVICE, behaviors)


@contextlib.asynccontextmanager
async def aio_serve() -> AsyncIterator[str]:
    """A traced ``grpc.aio`` server of ``test.Echo``; yields its target."""
    server = grpc.aio.server(
        futures.ThreadPoolExecutor(max_workers=4),
        interceptors=tracing_api_grpc.aio_server_interceptors(),
    )
    server.add_generic_rpc_handlers((aio_echo_handler(),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


@contextlib.asynccontextmanager
async def aio_traced_channel(target: str) -> AsyncIterator[grpc.aio.Channel]:
    """A ``grpc.aio`` channel to ``target`` traced by our interceptors."""
    channel = grpc.aio.insecure_channel(
        target, interceptors=tracing_api_grpc.aio_client_interceptors(target)
    )
    try:
        yield channel
    finally:
        await channel.close()


def run(coroutine: Any, timeout: float = 30.0) -> Any:
    """Run ``coroutine`` on a fresh event loop, bounded by ``timeout`` seconds."""
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """``wait_until`` for coroutines."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


@pytest.fixture
def echo() -> types.SimpleNamespace:
    """The helpers above, for test modules (which cannot import this file)."""
    return types.SimpleNamespace(
        SERVICE=SERVICE, sleeping=sleeping, serve=serve, traced_channel=traced_channel, wait_until=wait_until,
        MetadataRecorder=MetadataRecorder, aio_serve=aio_serve,
        aio_traced_channel=aio_traced_channel, run=run, eventually=eventually,
    )
