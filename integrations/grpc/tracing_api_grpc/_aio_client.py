"""Client interceptors for ``grpc.aio`` channels: a CLIENT span per call, ended when it ends.

``grpc.aio`` sorts a channel's interceptors by the one call shape each implements, so there is
one class per shape; ``aio_client_interceptors()`` makes the four. As with ``grpc`` channels,
the span ends from the call's done callback, never from reading its responses.
"""

from __future__ import annotations

import asyncio
from time import time_ns
from typing import Any, AsyncIterator, Mapping, Optional, Tuple

import grpc
import grpc.aio

from tracing_api import Propagator, SpanKind

from ._rpc import (
    AnySpan,
    Counted,
    Reader,
    counted_async,
    describe_method,
    finish,
    log,
    message_event,
    outgoing_metadata,
    server_attributes,
    status_code_of,
    tracer,
)

_pending: set[asyncio.Task[None]] = set()  # status reads that had to wait, kept from the GC


def _now(awaitable: Any) -> Tuple[bool, Any]:
    """The result of ``awaitable`` if it is ready without waiting (a done call's ``code()``)."""
    try:
        awaitable.send(None)
    except StopIteration as stop:
        return True, stop.value
    except Exception:
        log.debug("call status not readable", exc_info=True)
        return True, None
    awaitable.close()
    return False, None


async def _finish_later(span: AnySpan, call: Any, end_time: int) -> None:
    try:
        code, details = await call.code(), await call.details()
    except Exception:
        code, details = None, None
    finish(span, status_code_of(code), details, server=False, end_time=end_time)


def _call_ended(span: AnySpan, call: Any) -> None:
    end_time = time_ns()
    ready, code = _now(call.code())
    if ready:
        _, details = _now(call.details())
        finish(span, status_code_of(code), details, server=False, end_time=end_time)
        return
    try:
        task = asyncio.get_running_loop().create_task(_finish_later(span, call, end_time))
        _pending.add(task)
        task.add_done_callback(_pending.discard)
    except Exception:
        finish(span, None, server=False, end_time=end_time)


def _watch(span: AnySpan, call: Any, reader: Optional[Reader] = None) -> None:
    """End ``span`` when ``call`` is done (or leave it to a read in progress)."""

    def done(call: Any) -> None:
        if reader is None or not reader.leave_to_reader():
            _call_ended(span, call)

    try:
        call.add_done_callback(done)
    except Exception:  # a response an interceptor answered itself: complete, and OK
        finish(span, grpc.StatusCode.OK, server=False)


def _watched_responses(span: AnySpan, call: Any) -> AsyncIterator[Any]:
    """The call's responses, read through ``_responses``; the span ends when the call does,
    read or not.
    """
    reader = Reader()
    _watch(span, call, reader)
    return _responses(span, call, reader)


async def _responses(span: AnySpan, call: Any, reader: Reader) -> AsyncIterator[Any]:
    """The call's responses, a RECEIVED event each; the span ends with the stream."""
    responses = call.__aiter__()
    index = 0
    while True:
        reader.start()
        try:
            response = await responses.__anext__()
        except StopAsyncIteration:
            reader.stop()
            _call_ended(span, call)  # before the caller moves on, not at the callback's turn
            return
        except grpc.aio.AioRpcError:
            reader.stop()
            _call_ended(span, call)
            raise
        except BaseException:
            if reader.stop():
                _call_ended(span, call)
            raise
        index += 1
        message_event(span, False, index, response)
        if reader.stop():
            _call_ended(span, call)
        yield response


def _sent_any(span: AnySpan, requests: Any) -> Any:
    """The request iterator (sync or async, as given), with a SENT event per request."""
    if hasattr(requests, "__aiter__"):
        return counted_async(span, requests, sent=True)
    return Counted(span, requests, sent=True)


class _Traced:
    def __init__(self, target: Optional[str] = None, propagator: Optional[Propagator] = None):
        self._server: Mapping[str, object] = server_attributes(target)
        self._propagator = propagator

    def _start(self, details: Any) -> Tuple[Optional[AnySpan], Any]:
        try:
            name, attributes = describe_method(details.method)
            if self._server:
                attributes = {**attributes, **self._server}
            span = tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
        except Exception:
            log.debug("client span not started", exc_info=True)
            return None, details
        try:
            metadata = outgoing_metadata(details.metadata, span, self._propagator)
            if metadata is not None:
                details = grpc.aio.ClientCallDetails(
                    details.method, details.timeout, grpc.aio.Metadata(*metadata),
                    details.credentials, details.wait_for_ready,
                )
        except Exception:  # the call goes out without the trace context, and is still traced
            log.debug("trace context not injected", exc_info=True)
        return (span if span.is_recording else None), details

    @staticmethod
    def _failed(span: AnySpan, exc: BaseException) -> None:
        if isinstance(exc, asyncio.CancelledError):
            finish(span, grpc.StatusCode.CANCELLED, server=False)
        elif isinstance(exc, grpc.aio.AioRpcError):
            finish(span, exc.code(), exc.details(), server=False)
        else:
            finish(span, None, server=False, error=exc)


class UnaryUnaryInterceptor(_Traced, grpc.aio.UnaryUnaryClientInterceptor):
    """Traces the unary-unary calls of a ``grpc.aio`` channel."""

    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        """Trace one call."""
        span, details = self._start(client_call_details)
        if span is None:
            return await continuation(details, request)
        message_event(span, True, 1, request)
        try:
            call = await continuation(details, request)
        except BaseException as exc:
            self._failed(span, exc)
            raise
        _watch(span, call)
        return call


class UnaryStreamInterceptor(_Traced, grpc.aio.UnaryStreamClientInterceptor):
    """Traces the unary-stream calls of a ``grpc.aio`` channel."""

    async def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        """Trace one call."""
        span, details = self._start(client_call_details)
        if span is None:
            return await continuation(details, request)
        message_event(span, True, 1, request)
        try:
            call = await continuation(details, request)
        except BaseException as exc:
            self._failed(span, exc)
            raise
        return _watched_responses(span, call)


class StreamUnaryInterceptor(_Traced, grpc.aio.StreamUnaryClientInterceptor):
    """Traces the stream-unary calls of a ``grpc.aio`` channel."""

    async def intercept_stream_unary(
        self, continuation: Any, client_call_details: Any, request_iterator: Any
    ) -> Any:
        """Trace one call."""
        span, details = self._start(client_call_details)
        if span is None:
            return await continuation(details, request_iterator)
        try:
            call = await continuation(details, _sent_any(span, request_iterator))
        except BaseException as exc:
            self._failed(span, exc)
            raise
        _watch(span, call)
        return call


class StreamStreamInterceptor(_Traced, grpc.aio.StreamStreamClientInterceptor):
    """Traces the stream-stream calls of a ``grpc.aio`` channel."""

    async def intercept_stream_stream(
        self, continuation: Any, client_call_details: Any, request_iterator: Any
    ) -> Any:
        """Trace one call."""
        span, details = self._start(client_call_details)
        if span is None:
            return await continuation(details, request_iterator)
        try:
            call = await continuation(details, _sent_any(span, request_iterator))
        except BaseException as exc:
            self._failed(span, exc)
            raise
        return _watched_responses(span, call)
