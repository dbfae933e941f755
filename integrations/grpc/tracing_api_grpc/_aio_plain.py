"""Plain-function handlers on a ``grpc.aio`` server, run in a thread pool by a coroutine.

Left to itself, grpc.aio runs a plain function (or generator function) in its thread pool with
a servicer context that cannot tell how the call is going (it has no ``code()``, ``details()``
or ``is_active()``) and whose ``add_callback`` callbacks run only after a unary handler returns,
so a span could neither read the status the handler set nor end when the client leaves a
streaming call. While tracing, the handler is a coroutine instead: it keeps the call's own aio
context, which knows its status and is told when the call ends however it ends, and runs the
function in a thread pool with a ``SyncContext`` over that context.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from concurrent.futures import Executor
from typing import Any, Callable, Coroutine, Mapping, Optional, Tuple

import grpc

from tracing_api import Context
from tracing_api.context import use_context

from ._rpc import AnySpan, Counted, log, message_event
from ._server import Behavior, begin, finish_raised, finish_returned

_END = object()  # what the request reader answers once the client has sent its last request


def _wait(loop: asyncio.AbstractEventLoop, awaitable: Coroutine[Any, Any, Any]) -> Any:
    """Run ``awaitable`` on ``loop`` and wait for its result, from a pool thread."""
    future = asyncio.run_coroutine_threadsafe(awaitable, loop)
    while True:
        try:
            return future.result(1.0)
        except concurrent.futures.TimeoutError:
            if future.done():
                # Done by now: its own TimeoutError, or it completed just after the wait gave
                # up; either way the outcome is the coroutine's.
                return future.result()
            # A write may wait long for a slow reader; a loop that stopped never answers.
            if not loop.is_running():
                future.cancel()
                raise RuntimeError("the server's event loop stopped") from None


class SyncContext:
    """The servicer context a plain-function handler gets: the call's ``grpc.aio`` context,
    with its coroutines (``abort``, ``send_initial_metadata``) made blocking calls for the pool
    thread, ``is_active()``, and ``add_callback`` callbacks run when the call ends.
    """

    __slots__ = ("_active", "_context", "_loop")

    def __init__(self, context: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._context = context
        self._loop = loop
        self._active = True

    def left(self) -> None:
        """The client went away (cancelled, or past its deadline): the call is no longer active."""
        self._active = False

    def write(self, message: Any) -> None:
        """Send one response of a streaming call, waiting until it is sent."""
        _wait(self._loop, self._context.write(message))

    def is_active(self) -> bool:
        """Whether the call is still going: the client has not left and no status was sent."""
        return self._active and not self._context.done()

    def add_callback(self, callback: Callable[[], None]) -> bool:
        """Call ``callback`` when the call ends; False when it has ended already."""
        if not self.is_active():
            return False
        self._context.add_done_callback(lambda _context: callback())
        return True

    def abort(
        self, code: grpc.StatusCode, details: str = "", trailing_metadata: Tuple[Any, ...] = ()
    ) -> None:
        """End the call with ``code`` and ``details``; raises to unwind the handler."""
        _wait(self._loop, self._context.abort(code, details, trailing_metadata))

    def abort_with_status(self, status: Any) -> None:
        """End the call with a ``grpc.Status``; raises to unwind the handler."""
        _wait(self._loop, self._context.abort_with_status(status))

    def send_initial_metadata(self, metadata: Any) -> None:
        """Send the initial metadata now."""
        _wait(self._loop, self._context.send_initial_metadata(metadata))

    def set_trailing_metadata(self, metadata: Any) -> None:
        """The trailing metadata to send with the status."""
        self._context.set_trailing_metadata(metadata)

    def trailing_metadata(self) -> Any:
        """The trailing metadata set so far."""
        return self._context.trailing_metadata()

    def invocation_metadata(self) -> Any:
        """The metadata the client sent."""
        return self._context.invocation_metadata()

    def set_code(self, code: grpc.StatusCode) -> None:
        """The status code to answer with."""
        self._context.set_code(code)

    def code(self) -> Any:
        """The status code set so far (None: OK)."""
        return self._context.code()

    def set_details(self, details: str) -> None:
        """The status details to answer with."""
        self._context.set_details(details)

    def details(self) -> Any:
        """The status details set so far."""
        return self._context.details()

    def set_compression(self, compression: grpc.Compression) -> None:
        """The compression of the responses."""
        self._context.set_compression(compression)

    def disable_next_message_compression(self) -> None:
        """Send the next response uncompressed."""
        self._context.disable_next_message_compression()

    def peer(self) -> Any:
        """The client's address, as grpc writes it (``ipv4:127.0.0.1:5000``)."""
        return self._context.peer()

    def peer_identities(self) -> Any:
        """The client's authenticated identities, if any."""
        return self._context.peer_identities()

    def peer_identity_key(self) -> Any:
        """The auth property naming the client's identity, if any."""
        return self._context.peer_identity_key()

    def auth_context(self) -> Any:
        """The call's auth properties."""
        return self._context.auth_context()

    def time_remaining(self) -> Any:
        """Seconds left before the deadline (None without one)."""
        return self._context.time_remaining()


class SyncRequests:
    """The call's requests, read on the event loop, as a plain iterator for the pool thread."""

    __slots__ = ("_loop", "_requests")

    def __init__(self, requests: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._requests = requests.__aiter__()
        self._loop = loop

    def __iter__(self) -> SyncRequests:
        return self

    def __next__(self) -> Any:
        request = _wait(self._loop, _next_request(self._requests))
        if request is _END:
            raise StopIteration
        return request

    def next(self) -> Any:
        """The next request (grpc's request iterators offer this spelling too)."""
        return self.__next__()


async def _next_request(requests: Any) -> Any:
    try:
        return await requests.__anext__()
    except StopAsyncIteration:  # a future cannot carry it to the thread as an end
        return _END


def _run(behavior: Behavior, request: Any, context: SyncContext, response_streaming: bool,
         span: Optional[AnySpan], current: Optional[Context]) -> Any:
    """In the pool: the handler, and for a streaming response the sending of each item, in
    ``current`` (the handler's context) when there is one.
    """
    if current is None:
        return _handle(behavior, request, context, response_streaming, span)
    with use_context(current):
        return _handle(behavior, request, context, response_streaming, span)


def _handle(behavior: Behavior, request: Any, context: SyncContext, response_streaming: bool,
            span: Optional[AnySpan]) -> Any:
    result = behavior(request, context)
    if not response_streaming or result is None:
        return result
    responses = iter(result)
    index = 0
    try:
        for response in responses:
            index += 1
            if span is not None:
                message_event(span, True, index, response)
            context.write(response)  # fails once the client has left: the handler stops
    finally:  # its own ``finally`` blocks run now, in this thread, not at garbage collection
        close = getattr(responses, "close", None)
        if close is not None:
            try:
                close()
            except Exception:
                log.debug("handler's response iterator failed to close", exc_info=True)
    return None


def _status_sent(context: Any) -> bool:
    try:
        return bool(context.done())
    except Exception:
        return False


def traced_plain(
    behavior: Behavior, name: str, attributes: Mapping[str, object], request_streaming: bool,
    response_streaming: bool, thread_pool: Optional[Executor],
) -> Behavior:
    """A coroutine that runs ``behavior`` (a plain function) in ``thread_pool`` (None: the
    loop's default executor) inside a SERVER span, ended when the call ends.

    The span starts when grpc.aio runs the handler, so a call it never runs it for (a request
    that fails to deserialize, a deadline passed before the message arrived, an interceptor
    further out that answered itself) has no span.
    """

    async def traced(request: Any, context: Any) -> Any:
        loop = asyncio.get_running_loop()
        sync_context = SyncContext(context, loop)
        if request_streaming:
            request = SyncRequests(request, loop)
        begun = begin(name, attributes, context)
        span, current = begun if begun is not None else (None, None)
        if span is not None:
            if request_streaming:
                request = Counted(span, request, sent=False)
            else:
                message_event(span, False, 1, request)
        try:
            result = await loop.run_in_executor(
                thread_pool, _run, behavior, request, sync_context, response_streaming, span, current
            )
        except asyncio.CancelledError as exc:  # the client left, or its deadline passed
            sync_context.left()
            if span is not None:
                if _status_sent(context):
                    # The handler aborted, and the call's task was cancelled (the server
                    # stopping) before the handler unwound in its thread: the status went out.
                    finish_returned(span, context)
                else:
                    finish_raised(span, context, exc, cancelled=True)
            raise
        except BaseException as exc:
            if span is not None:
                finish_raised(span, context, exc)
            raise
        if span is not None:
            if result is not None and not response_streaming:
                message_event(span, True, 1, result)
            finish_returned(span, context)
        return result

    return traced
