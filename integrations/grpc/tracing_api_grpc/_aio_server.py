"""The server interceptor for ``grpc.aio`` servers: a SERVER span per call, current in the handler.

A ``grpc.aio`` server accepts coroutine handlers, async generator handlers (streaming
responses), and plain functions it runs in a thread pool. Coroutines and async generators are
wrapped by a function of the same kind, so the server treats the traced handler exactly as it
would have treated the original; a plain function is wrapped by a coroutine that runs it in a
thread pool (see ``_aio_plain``).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from concurrent.futures import Executor
from typing import Any, AsyncIterator, Mapping, Optional

import grpc
import grpc.aio

from tracing_api.context import use_context

from ._aio_plain import traced_plain
from ._rpc import Counted, counted_async, finish, log, message_event
from ._server import Behavior, begin, ended_early, finish_raised, finish_returned, traced_handler


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


def _traced_any(
    behavior: Behavior, name: str, attributes: Mapping[str, object], request_streaming: bool,
    response_streaming: bool, thread_pool: Optional[Executor] = None,
) -> Behavior:
    if inspect.isasyncgenfunction(behavior):
        return _traced_async_generator(behavior, name, attributes, request_streaming)
    if inspect.iscoroutinefunction(behavior):
        return _traced_coroutine(behavior, name, attributes, request_streaming, response_streaming)
    return traced_plain(behavior, name, attributes, request_streaming, response_streaming, thread_pool)


class AioServerInterceptor(grpc.aio.ServerInterceptor):
    """Traces every call a ``grpc.aio`` server handles: ``grpc.aio.server(interceptors=[...])``.

    Plain-function handlers run in ``thread_pool``: give it the server's
    ``migration_thread_pool``, if it has one, so they run where they would untraced (without
    one, both grpc.aio and this interceptor use the event loop's default executor).
    """

    def __init__(self, thread_pool: Optional[Executor] = None) -> None:
        # One wrapping function per interceptor, so the traced handlers it makes are kept.
        self._wrap = functools.partial(_traced_any, thread_pool=thread_pool)

    async def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        """The handler ``continuation`` finds, traced."""
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        try:
            return traced_handler(handler, handler_call_details.method, self._wrap)
        except Exception:
            log.debug("handler not traced", exc_info=True)
            return handler
