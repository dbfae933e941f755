"""The client interceptor for ``grpc`` channels: a CLIENT span per call, ended when the call ends.

The span ends from the call's own termination callback, not from iterating its responses, so a
call that is cancelled, runs past its deadline, or whose response stream is never read (and is
then dropped, which cancels it) still ends its span.
"""

from __future__ import annotations

import collections
import functools
import weakref
from typing import Any, Callable, Mapping, Optional, Tuple

import grpc

from tracing_api import Propagator, SpanKind

from ._rpc import (
    AnySpan,
    Counted,
    Reader,
    describe_method,
    finish,
    log,
    message_event,
    outgoing_metadata,
    server_attributes,
    status_code_of,
    tracer,
)


class _CallDetails(
    collections.namedtuple(
        "_CallDetails",
        ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression"),
    ),
    grpc.ClientCallDetails,
):
    """The caller's call details with the trace context added to the metadata."""


def _with_metadata(details: grpc.ClientCallDetails, metadata: Any) -> grpc.ClientCallDetails:
    return _CallDetails(
        details.method,
        getattr(details, "timeout", None),
        metadata,
        getattr(details, "credentials", None),
        getattr(details, "wait_for_ready", None),
        getattr(details, "compression", None),
    )


def _status_of(error: BaseException) -> Optional[Tuple[grpc.StatusCode, Any]]:
    """The status and details of ``error`` when it is a failed RPC (an RpcError with a code)."""
    if not isinstance(error, grpc.RpcError):
        return None
    try:
        code = status_code_of(error.code())
        return None if code is None else (code, error.details())
    except Exception:  # an RpcError that is not a call: no status to read
        return None


def _call_ended(span: AnySpan, unary_response: bool, call: Any) -> None:
    """Record how ``call`` ended (None: it was dropped, which cancels it) and end ``span``."""
    if call is None:
        finish(span, grpc.StatusCode.CANCELLED, "cancelled upon garbage collection", server=False)
        return
    code: Optional[grpc.StatusCode] = None
    details: Any = None
    error: Optional[BaseException] = None
    try:
        code = status_code_of(call.code())
        details = call.details()
        if code is grpc.StatusCode.OK:
            if unary_response:
                message_event(span, False, 1, call.result())
        else:
            # A failed RPC is its own exception. When the call holds another one, a later
            # interceptor raised it and the caller gets it raised as it is; grpcio wraps it in
            # an object that is also an RpcError and reports INTERNAL "Exception raised while
            # intercepting the RPC", which is not what happened. That exception is what the
            # span records: its status when it is a failed RPC, else the exception itself.
            found = call.exception()
            if isinstance(found, BaseException) and found is not call:
                status = _status_of(found)
                if status is None:
                    error, code = found, None
                else:
                    code, details = status
    except Exception:
        log.debug("call outcome not readable", exc_info=True)
    finish(span, code, details, server=False, error=error)


def _watch(span: AnySpan, call: Any, unary_response: bool, reader: Optional[Reader] = None) -> None:
    """End ``span`` when ``call`` terminates, without keeping ``call`` alive meanwhile."""
    try:
        ref: Callable[[], Any] = weakref.ref(call)
    except TypeError:
        ref = functools.partial(lambda c: c, call)

    def terminated() -> None:
        if reader is None or not reader.leave_to_reader():
            _call_ended(span, unary_response, ref())

    try:
        added = call.add_callback(terminated)
    except Exception:  # a call object without add_callback is complete already
        added = False
    if not added:
        _call_ended(span, unary_response, call)


def _returned_error(span: AnySpan | None, call: Any) -> None:
    """Raise ``call`` when it is an exception rather than a call, after recording it on ``span``.

    grpcio's continuation of a blocking unary-response call returns the ``RpcError`` a later
    interceptor raised instead of raising it, and then asks it for ``result()``: one of the
    application's own, which is no call, has none, and the caller would get AttributeError.
    With no recording span (tracing off, a call the sampler dropped) it is raised all the same.
    """
    if isinstance(call, BaseException) and not isinstance(call, grpc.Future):
        if span is not None:
            finish(span, None, server=False, error=call)
        raise call


class ResponseStream(grpc.Call, grpc.Future):  # type: ignore[type-arg]  # any response type
    """A streaming call whose responses are counted on the span as they are read.

    Everything else is the call's own: ``cancel()``, ``code()``, ``result()``, ...
    """

    def __init__(self, call: Any, span: AnySpan) -> None:
        self._call = call
        self._span = span
        self._received = 0
        self._reader = Reader()
        _watch(span, call, False, self._reader)

    def __iter__(self) -> ResponseStream:
        return self

    def __next__(self) -> Any:
        self._reader.start()
        try:
            response = next(self._call)
        except (StopIteration, grpc.RpcError):
            self._reader.stop()
            # The call has ended: end the span before the caller moves on.
            _call_ended(self._span, False, self._call)
            raise
        except BaseException:
            if self._reader.stop():
                _call_ended(self._span, False, self._call)
            raise
        self._received += 1
        message_event(self._span, False, self._received, response)
        if self._reader.stop():
            _call_ended(self._span, False, self._call)
        return response

    def next(self) -> Any:
        """The next response (the call's Python 2 era spelling, kept for callers using it)."""
        return self.__next__()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._call, name)

    def is_active(self) -> bool:
        """Whether the RPC is still in progress."""
        return bool(self._call.is_active())

    def time_remaining(self) -> Any:
        """Seconds left before the deadline (None without one)."""
        return self._call.time_remaining()

    def cancel(self) -> bool:
        """Cancel the RPC."""
        return bool(self._call.cancel())

    def add_callback(self, callback: Callable[[], None]) -> bool:
        """Call ``callback`` when the RPC terminates."""
        return bool(self._call.add_callback(callback))

    def initial_metadata(self) -> Any:
        """The server's initial metadata."""
        return self._call.initial_metadata()

    def trailing_metadata(self) -> Any:
        """The server's trailing metadata."""
        return self._call.trailing_metadata()

    def code(self) -> Any:
        """The status code the RPC ended with."""
        return self._call.code()

    def details(self) -> Any:
        """The status details the RPC ended with."""
        return self._call.details()

    def cancelled(self) -> bool:
        """Whether the RPC was cancelled."""
        return bool(self._call.cancelled())

    def running(self) -> bool:
        """Whether the RPC is running."""
        return bool(self._call.running())

    def done(self) -> bool:
        """Whether the RPC has ended."""
        return bool(self._call.done())

    def result(self, timeout: Optional[float] = None) -> Any:
        """See ``grpc.Future.result``."""
        return self._call.result(timeout)

    def exception(self, timeout: Optional[float] = None) -> Any:
        """See ``grpc.Future.exception``."""
        return self._call.exception(timeout)

    def traceback(self, timeout: Optional[float] = None) -> Any:
        """See ``grpc.Future.traceback``."""
        return self._call.traceback(timeout)

    def add_done_callback(self, fn: Callable[[Any], None]) -> None:
        """Call ``fn(self)`` when the RPC ends."""
        self._call.add_done_callback(lambda _call: fn(self))


class ClientInterceptor(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Traces every call of a channel: ``grpc.intercept_channel(channel, ClientInterceptor())``.

    ``target`` (the channel's address) fills ``server.address`` and ``server.port``.
    ``propagator`` replaces the configured propagators for the metadata this client writes.
    """

    def __init__(self, target: Optional[str] = None, propagator: Optional[Propagator] = None):
        self._server: Mapping[str, object] = server_attributes(target)
        self._propagator = propagator

    def _start(
        self, details: grpc.ClientCallDetails
    ) -> Tuple[Optional[AnySpan], grpc.ClientCallDetails]:
        try:
            name, attributes = describe_method(details.method)
            if self._server:
                attributes = {**attributes, **self._server}
            span = tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
        except Exception:
            log.debug("client span not started", exc_info=True)
            return None, details
        try:
            metadata = outgoing_metadata(getattr(details, "metadata", None), span, self._propagator)
            if metadata is not None:
                details = _with_metadata(details, metadata)
        except Exception:  # the call goes out without the trace context, and is still traced
            log.debug("trace context not injected", exc_info=True)
        return (span if span.is_recording else None), details

    @staticmethod
    def _failed(span: AnySpan, exc: BaseException) -> None:
        finish(span, None, server=False, error=exc)

    def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        """Trace a unary-unary call."""
        span, details = self._start(client_call_details)
        if span is None:
            call = continuation(details, request)
            _returned_error(None, call)
            return call
        message_event(span, True, 1, request)
        try:
            call = continuation(details, request)
        except BaseException as exc:
            self._failed(span, exc)
            raise
        _returned_error(span, call)
        _watch(span, call, unary_response=True)
        return call

    def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        """Trace a unary-stream call."""
        span, details = self._start(client_call_details)
        if span is None:
            return continuation(details, request)
        message_event(span, True, 1, request)
        try:
            call = continuation(details, request)
        except BaseException as exc:
            self._failed(span, exc)
            raise
        return ResponseStream(call, span)

    def intercept_stream_unary(
        self, continuation: Any, client_call_details: Any, request_iterator: Any
    ) -> Any:
        """Trace a stream-unary call."""
        span, details = self._start(client_call_details)
        if span is None:
            call = continuation(details, request_iterator)
            _returned_error(None, call)
            return call
        try:
            call = continuation(details, Counted(span, request_iterator, sent=True))
        except BaseException as exc:
            self._failed(span, exc)
            raise
        _returned_error(span, call)
        _watch(span, call, unary_response=True)
        return call

    def intercept_stream_stream(
        self, continuation: Any, client_call_details: Any, request_iterator: Any
    ) -> Any:
        """Trace a stream-stream call."""
        span, details = self._start(client_call_details)
        if span is None:
            return continuation(details, request_iterator)
        try:
            call = continuation(details, Counted(span, request_iterator, sent=True))
        except BaseException as exc:
            self._failed(span, exc)
            raise
        return ResponseStream(call, span)
