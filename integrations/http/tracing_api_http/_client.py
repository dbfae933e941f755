"""What the three HTTP clients share: the CLIENT span, header injection, status and errors.

A client span covers one HTTP exchange (one hop): from sending the request until the response
headers arrive. A followed redirect is another hop and another span, a sibling of the first
under the caller's span, each with its own ``traceparent``.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Optional, Tuple
from urllib.parse import urlsplit

import tracing_api
from tracing_api import INVALID_SPAN, SpanKind, StatusCode
from tracing_api.context import Context, current_context
from tracing_api.propagation import Setter

from . import _semconv
from ._version import __version__

_log = logging.getLogger("tracing_api_http")
_tracer = tracing_api.get_tracer("tracing_api_http", __version__)

_DEFAULT_PORTS = {"http": 80, "https": 443}


def start(method: object, url: str) -> Tuple[Any, Context]:
    """Start the CLIENT span for ``method url``; return it and the context to inject."""
    method_value, original = _semconv.method(
        method.upper() if isinstance(method, str) else method
    )
    attributes: Dict[str, object] = {
        "http.request.method": method_value,
        "url.full": _semconv.redact_url(url),
    }
    if original is not None:
        attributes["http.request.method_original"] = original
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:  # a bad port or IPv6 literal: the request itself will fail and say so
        host, port = None, None
    if host:
        attributes["server.address"] = _semconv.cap(host)
    if port:
        attributes["server.port"] = port
    span = _tracer.start_span(
        _semconv.span_name(method_value), SpanKind.CLIENT, attributes
    )
    context = current_context()
    # With nothing configured there is no span: the current context is sent on unchanged, so
    # a service that does not trace still carries its caller's trace forward.
    return span, context if span is INVALID_SPAN else context._replace(span=span)


class _HeaderSafeSetter:
    """Passes on only values an HTTP header can carry: text without control characters. A
    binary propagator value (``grpc-trace-bin`` as bytes) or a stray newline would make the
    HTTP library refuse the request, in the application's call.
    """

    __slots__ = ("_inner",)

    def __init__(self, inner: Setter) -> None:
        self._inner = inner

    def set(self, carrier: Any, key: str, value: Any) -> None:
        if isinstance(value, str) and value.isprintable() and value.isascii():
            self._inner.set(carrier, key, value)


def inject(context: Context, carrier: Any, setter: Optional[Setter] = None) -> None:
    """Write ``context`` into the request headers (never raises).

    Headers of the configured formats already on the request (forwarded from another trace,
    or left from an earlier send) go first: a ``tracestate`` or ``baggage`` the new context
    does not carry must not travel beside its ``traceparent``.
    """
    if context.span.context.is_valid:
        propagation = tracing_api.propagation
        _drop(carrier, propagation.fields(), propagation.field_prefixes())
    inner = setter if setter is not None else tracing_api.propagation.setter_for(carrier)
    tracing_api.inject(carrier, context=context, setter=_HeaderSafeSetter(inner))


def _drop(carrier: Any, names: Tuple[str, ...], prefixes: Tuple[str, ...] = ()) -> None:
    remove = getattr(carrier, "remove_header", None)  # urllib.request.Request
    if prefixes:  # a family of names (Jaeger's uberctx-*): the ones the request holds go too
        try:
            present = ([name for name, _ in carrier.header_items()] if remove is not None
                       else list(carrier.keys()))
        except Exception:
            _log.debug("could not list the headers", exc_info=True)
            present = []
        names += tuple(
            name for name in present
            if isinstance(name, str) and name.lower().startswith(prefixes)
        )
    for name in names:
        try:
            if remove is not None:
                remove(name.capitalize())  # the case urllib stores names in
            else:
                carrier.pop(name, None)  # requests' and httpx's headers ignore case
        except Exception:
            _log.debug("could not remove header %r", name, exc_info=True)


def finish(span: Any, status_code: Optional[int], http_version: Optional[str] = None) -> None:
    """Record the response status (4xx and 5xx are errors for a client) and end the span."""
    try:
        if status_code is not None:
            span.set_attribute("http.response.status_code", status_code)
            code, extra = _semconv.client_status(status_code)
            if code is StatusCode.ERROR:
                span.set_attributes(extra)
                span.set_status(StatusCode.ERROR)
        if http_version:
            version = _semconv.protocol_version(http_version)
            if version:
                span.set_attribute("network.protocol.version", version)
    finally:
        span.end()


def fail(span: Any, exc: BaseException) -> None:
    """Record an exception raised by the transport and end the span.

    Transport errors quote the request URL (``Max retries exceeded with url: /obj?Signature=...``):
    the message and stack trace are recorded with query strings and credentials scrubbed.
    """
    try:
        try:
            message = _semconv.scrub(str(exc))
        except Exception:
            message = ""
        if span.is_recording:
            import traceback

            trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            span.record_exception(exc, {"exception.message": message,
                                        "exception.stacktrace": _semconv.scrub(trace)},
                                  escaped=True)
        span.set_attribute("error.type", _semconv.error_type(exc))
        span.set_status(StatusCode.ERROR, f"{type(exc).__name__}: {message}" if message
                        else type(exc).__name__)
    finally:
        span.end()
