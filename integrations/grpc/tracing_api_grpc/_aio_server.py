"""The server interceptor for ``grpc.aio`` servers: a SERVER span per call, current in the handler.

A ``grpc.aio`` server accepts coroutine handlers, async generator handlers (streaming
responses), and plain functions it runs in a thread pool. Coroutines and async generators are
wrapped by a function of the same kind, so the server treats the traced handler exactly as it
would have treated the original. A plain function is decided per call, without starting a
span: with tracing off it stays plain (untouched, or wrapped by a plain function when there is
a context to pass on), so grpc.aio runs it where it always does; while tracing it is wrapped by
a coroutine that starts the span and runs it in a thread pool (see ``_aio_plain``).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from concurrent.futures import Executor
from typing import Any, AsyncIterator, Mapping, Optional

import grpc
import grpc.aio

import tracing_api
from tracing_api.context import use_context

from ._aio_plain import traced_plain
from ._rpc import (
    Counted,
    counted_async,
    describe_method,
    finish,
    incoming_context,
    log,
    message_event,
)
from ._server import (
    Behavior,
    HandlerCache,
    begin,
    ended_early,
    finish_raised,
    finish_returned,
    parts_of,
    rebuilt,
    traced_sync,
)


def _requests(span: Any, requests: Any) -> Any:
    return counted_async(span, requests, sent=False) if hasattr(requests, "__aiter__") else (
        Counted(span, requests, sent=False)
    )


def _end_when_done(span: Any, context: Any) -> None:
    # An async generator handler suspended when the client leaves may never be resumed.
    try:
        context.add_done_callback(lambda _context: finish(span, ended_early(context), server=True))
    except Exception:
        log.debug("done callback not added", exc_info=True)


def _traced_async_generator(
    behavior: Behavior, name: str, attributes: Mapping[str, object], request_streaming: bool
) -> Behavior:
    async def traced(request: Any, context: Any) -> AsyncIterator[Any]:
        begun = begin(name, attributes, context)
        if begun is None:
            async for response in behavior(request, context):
                yield response
            return
        span, current = begun
        if request_streaming:
            request = _requests(span, request)
        else:
            message_event(span, False, 1, request)
        if span.is_recording:
            _end_when_done(span, context)
        responses: Any = None
        index = 0
        try:
            with use_context(current):
                responses = behavior(request, context)
            while True:
                with use_context(current):
                    try:
                        response = await responses.__anext__()
                    except StopAsyncIteration:
                        break
                index += 1
                message_event(span, True, index, response)
                yield response
        except GeneratorExit:
            if responses is not None:
                try:
                    with use_context(current):
                        await responses.aclose()
                except Exception:
                    log.debug("handler's responses failed to close", exc_info=True)
            finish(span, ended_early(context), server=True)
            raise
        except asyncio.CancelledError as exc:
            finish_raised(span, context, exc, cancelled=True)
            raise
        except BaseException as exc:
            finish_raised(span, context, exc)
            raise
        finish_returned(span, context)

    return traced


def _traced_coroutine(
    behavior: Behavior, name: str, attributes: Mapping[str, object], request_streaming: bool,
    response_streaming: bool,
) -> Behavior:
    async def traced(request: Any, context: Any) -> Any:
        begun = begin(name, attributes, context)
        if begun is None:
            return await behavior(request, context)
        span, current = begun
        if request_streaming:
            request = _requests(span, request)
        else:
            message_event(span, False, 1, request)
        try:
            with use_context(current):
                result = await behavior(request, context)
        except asyncio.CancelledError as exc:
            finish_raised(span, context, exc, cancelled=True)
            raise
        except BaseException as exc:
            finish_raised(span, context, exc)
            raise
        if result is not None and not response_streaming:
            message_event(span, True, 1, result)
        finish_returned(span, context)
        return result

    return traced


_PLAIN = object()  # what the cache holds for a handler whose behavior is a plain function


def _traced_async(handler: Any, method: Any) -> Any:
    """``handler`` with its coroutine or async generator behavior traced by one of the same
    kind; ``_PLAIN`` when the behavior is a plain function, which is decided per call.
    """
    parts = parts_of(handler)
    if parts is None:
        return handler
    behavior = parts.behavior
    if inspect.isasyncgenfunction(behavior):
        name, attributes = describe_method(method)
        return rebuilt(handler, parts, _traced_async_generator(
            behavior, name, attributes, parts.request_streaming))
    if inspect.iscoroutinefunction(behavior):
        name, attributes = describe_method(method)
        return rebuilt(handler, parts, _traced_coroutine(
            behavior, name, attributes, parts.request_streaming, parts.response_streaming))
    return _PLAIN


def _traced_plain(handler: Any, method: Any, thread_pool: Optional[Executor]) -> Any:
    parts = parts_of(handler)
    if parts is None:
        return handler
    name, attributes = describe_method(method)
    return rebuilt(handler, parts, traced_plain(
        parts.behavior, name, attributes, parts.request_streaming, parts.response_streaming,
        thread_pool))


class AioServerInterceptor(grpc.aio.ServerInterceptor):
    """Traces every call a ``grpc.aio`` server handles: ``grpc.aio.server(interceptors=[...])``.

    While tracing, plain-function handlers run in ``thread_pool`` from a coroutine handler: give
    it the server's ``migration_thread_pool``, if it has one, so they run where they would
    untraced (None: the event loop's default executor, where grpc.aio runs them without one).
    With tracing off they are left to grpc.aio as they are.
    """

    def __init__(self, thread_pool: Optional[Executor] = None) -> None:
        self._traced = HandlerCache(_traced_async)
        self._in_context = HandlerCache(traced_sync)  # plain ones passing a context on
        # Plain ones while tracing, made into coroutines that run them in ``thread_pool``.
        self._coroutines = HandlerCache(functools.partial(_traced_plain, thread_pool=thread_pool))
        self._pool_noted = thread_pool is not None

    async def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        """The handler ``continuation`` finds, traced."""
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        try:
            traced = self._traced.get(handler, handler_call_details.method)
            if traced is _PLAIN:
                return self._plain(handler, handler_call_details)
            return traced
        except Exception:
            log.debug("handler not traced", exc_info=True)
            return handler

    def _plain(self, handler: Any, handler_call_details: Any) -> Any:
        # Decided without starting a span: grpc.aio may never run the handler (a request that
        # fails to deserialize, a deadline passed before the message, an interceptor further
        # out answering itself), and a span started here would then never end.
        parts = parts_of(handler)
        if parts is None:
            return handler
        method = handler_call_details.method
        if not tracing_api.enabled():
            parent = incoming_context(handler_call_details.invocation_metadata)
            if not (parent.span_context.is_valid or parent.baggage):
                return handler  # nothing to trace or pass on: the handler as it is
            return self._in_context.get(handler, method)  # still plain, passing the context on
        if not self._pool_noted:
            self._pool_noted = True
            log.info("plain-function handlers of a traced grpc.aio server run in the event "
                     "loop's default executor; to keep them in the server's "
                     "migration_thread_pool, pass it as aio_server_interceptors(thread_pool=...)")
        return self._coroutines.get(handler, method)
