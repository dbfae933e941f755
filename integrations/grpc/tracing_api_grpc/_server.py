"""The server interceptor for ``grpc`` servers: a SERVER span per call, current in the handler.

The span is the child of the caller's (read from the invocation metadata) and is current while
the handler's own code runs, also between the items of a streaming response, so the spans the
handler starts are its children. The status is what the handler set (``set_code``, ``abort``),
the exception it raised, or the cancellation or deadline that ended the call early.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterator, Mapping, NamedTuple, Optional, Tuple

import grpc

from tracing_api import INVALID_SPAN, Context, SpanKind
from tracing_api.context import use_context

from ._rpc import (
    AnySpan,
    Counted,
    describe_method,
    finish,
    handler_context,
    incoming_context,
    log,
    message_event,
    peer_attributes,
    status_code_of,
    tracer,
)

Behavior = Callable[..., Any]


def start(name: str, attributes: Mapping[str, object],
          metadata: Any) -> Optional[Tuple[AnySpan, Context]]:
    """The SERVER span of a call that came with ``metadata`` and the context its handler runs
    in; None when there is nothing to trace or pass on (tracing off and no incoming context).
    """
    parent = incoming_context(metadata)
    span = tracer.start_span(name, kind=SpanKind.SERVER, attributes=attributes, parent=parent)
    if span is INVALID_SPAN and not (parent.span_context.is_valid or parent.baggage):
        return None
    return span, handler_context(parent, span)


def add_peer(span: AnySpan, context: Any) -> None:
    """The caller's address on ``span``, from the servicer context."""
    if span.is_recording:
        try:
            span.set_attributes(peer_attributes(context.peer()))
        except Exception:  # a test double or a context without a peer
            log.debug("peer unknown", exc_info=True)


def begin(name: str, attributes: Mapping[str, object], context: Any) -> Optional[Tuple[AnySpan, Context]]:
    """``start`` for the call of servicer ``context``, with the caller's address; None also
    when that failed.
    """
    try:
        begun = start(name, attributes, context.invocation_metadata())
        if begun is not None:
            add_peer(begun[0], context)
        return begun
    except Exception:
        log.debug("server span not started", exc_info=True)
        return None


def ended_early(context: Any) -> grpc.StatusCode:
    """How a call the client left ended: past its deadline, or cancelled."""
    try:
        remaining = context.time_remaining()
        if remaining is not None and remaining <= 0:
            return grpc.StatusCode.DEADLINE_EXCEEDED
    except Exception:
        log.debug("time_remaining unavailable", exc_info=True)
    return grpc.StatusCode.CANCELLED


def _still_active(context: Any) -> bool:
    try:
        is_active = getattr(context, "is_active", None)
        if is_active is not None:
            return bool(is_active())
        return not context.cancelled()  # a grpc.aio context
    except Exception:
        return True


def _is_abort(exc: BaseException, code: Optional[grpc.StatusCode]) -> bool:
    # ``context.abort`` records the code, then raises a bare ``Exception()`` (grpc) or an
    # ``AbortError`` (grpc.aio) only to unwind the handler: it is not the handler's error.
    if code is None or code is grpc.StatusCode.OK:
        return False
    return (type(exc) is Exception and not exc.args) or type(exc).__name__ == "AbortError"


def finish_returned(span: AnySpan, context: Any) -> None:
    """End ``span`` of a handler that returned: with the code it set, OK by default."""
    if not _still_active(context):
        finish(span, ended_early(context), server=True)
        return
    code = status_code_of(_code(context))
    finish(span, code or grpc.StatusCode.OK, _details(context), server=True)


def finish_raised(span: AnySpan, context: Any, exc: BaseException, cancelled: bool = False) -> None:
    """End ``span`` of a handler that raised ``exc`` (or was cancelled)."""
    if cancelled or (isinstance(exc, grpc.RpcError) and not _still_active(context)):
        # The client went away: the request iterator raised, or the task was cancelled.
        finish(span, ended_early(context), server=True)
        return
    code = status_code_of(_code(context))
    if _is_abort(exc, code):
        finish(span, code, _details(context), server=True)
    else:  # grpc answers UNKNOWN unless the handler set a code before raising
        finish(span, code or grpc.StatusCode.UNKNOWN, _details(context), server=True, error=exc)


def _code(context: Any) -> Any:
    try:
        return context.code()
    except Exception:
        return None


def _details(context: Any) -> Any:
    try:
        return context.details()
    except Exception:
        return None


def _responses(span: AnySpan, current: Context, context: Any, responses: Any) -> Iterator[Any]:
    """The handler's responses, pulled with its span current, a SENT event each."""
    index = 0
    iterator: Any = None
    try:
        with use_context(current):
            iterator = iter(responses)
        while True:
            with use_context(current):
                try:
                    response = next(iterator)
                except StopIteration:
                    break
            index += 1
            message_event(span, True, index, response)
            yield response
    except GeneratorExit:  # dropped by grpc after the client went away
        close = getattr(iterator, "close", None)
        if close is not None:
            try:
                with use_context(current):
                    close()
            except Exception:
                log.debug("handler's response iterator failed to close", exc_info=True)
        finish(span, ended_early(context), server=True)
        raise
    except BaseException as exc:
        finish_raised(span, context, exc)
        raise
    finish_returned(span, context)


def _end_on_termination(span: AnySpan, context: Any) -> None:
    # A streaming handler blocked in its own code when the client leaves is never resumed:
    # the call's termination callback ends its span (a no-op once the span has ended).
    def end() -> None:
        finish(span, ended_early(context), server=True)

    try:
        context.add_callback(end)
    except Exception:
        log.debug("termination callback not added", exc_info=True)


def traced_behavior(behavior: Behavior, name: str, attributes: Mapping[str, object],
                    request_streaming: bool, response_streaming: bool) -> Behavior:
    """``behavior`` (a plain function or generator function) run inside a SERVER span."""

    def traced(request: Any, context: Any) -> Any:
        begun = begin(name, attributes, context)
        if begun is None:
            return behavior(request, context)
        span, current = begun
        if request_streaming:
            request = Counted(span, request, sent=False)
        else:
            message_event(span, False, 1, request)
        try:
            with use_context(current):
                result = behavior(request, context)
        except BaseException as exc:
            finish_raised(span, context, exc)
            raise
        if response_streaming:
            if result is None:  # nothing to stream: grpc ends the call
                finish_returned(span, context)
                return result
            if span.is_recording:
                _end_on_termination(span, context)
            return _responses(span, current, context, result)
        if result is not None:
            message_event(span, True, 1, result)
        finish_returned(span, context)
        return result

    return traced


class Parts(NamedTuple):
    """What a ``grpc.RpcMethodHandler`` is made of, for rebuilding it around another behavior."""

    behavior: Behavior
    make: Callable[..., Any]  # grpc.unary_unary_rpc_method_handler, ...
    request_streaming: bool
    response_streaming: bool


def parts_of(handler: Any) -> Optional[Parts]:
    """The behavior of ``handler`` and how to rebuild it; None for a handler left as it is
    (none, or a callback-style behavior, which takes other arguments).
    """
    request_streaming = bool(handler.request_streaming)
    response_streaming = bool(handler.response_streaming)
    if request_streaming and response_streaming:
        behavior, make = handler.stream_stream, grpc.stream_stream_rpc_method_handler
    elif request_streaming:
        behavior, make = handler.stream_unary, grpc.stream_unary_rpc_method_handler
    elif response_streaming:
        behavior, make = handler.unary_stream, grpc.unary_stream_rpc_method_handler
    else:
        behavior, make = handler.unary_unary, grpc.unary_unary_rpc_method_handler
    if behavior is None or getattr(behavior, "experimental_non_blocking", False):
        return None
    return Parts(behavior, make, request_streaming, response_streaming)


def rebuilt(handler: Any, parts: Parts, behavior: Behavior) -> Any:
    """``handler`` with ``behavior`` in place of its own."""
    return parts.make(
        behavior,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def traced_sync(handler: Any, method: Any) -> Any:
    """``handler`` with its plain behavior run inside a SERVER span (``traced_behavior``)."""
    parts = parts_of(handler)
    if parts is None:
        return handler
    name, attributes = describe_method(method)
    return rebuilt(handler, parts, traced_behavior(
        parts.behavior, name, attributes, parts.request_streaming, parts.response_streaming))


class HandlerCache:
    """What an interceptor made of each handler it was given, made once: generic handlers
    answer the same handler for a method on every call.

    One per interceptor, so what it holds goes away with its server.
    """

    __slots__ = ("_made", "_make")

    MAX = 1024  # handlers per method are few; the bound only guards odd generic handlers

    def __init__(self, make: Callable[[Any, Any], Any]) -> None:
        self._made: Dict[Tuple[Any, Any], Any] = {}
        self._make = make

    def get(self, handler: Any, method: Any) -> Any:
        """What ``make(handler, method)`` answered, made on first use."""
        try:
            key = (method, handler)
            found = self._made.get(key)
        except TypeError:  # an unhashable handler: made afresh on each call
            return self._make(handler, method)
        if found is None:
            found = self._make(handler, method)
            if len(self._made) < self.MAX:
                self._made[key] = found
        return found


class ServerInterceptor(grpc.ServerInterceptor):
    """Traces every call a ``grpc`` server handles: ``grpc.server(pool, interceptors=[...])``."""

    def __init__(self) -> None:
        self._traced = HandlerCache(traced_sync)

    def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        """The handler ``continuation`` finds, traced."""
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        try:
            return self._traced.get(handler, handler_call_details.method)
        except Exception:
            log.debug("handler not traced", exc_info=True)
            return handler
