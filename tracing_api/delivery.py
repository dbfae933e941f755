"""Getting encoded spans to a backend: retries, backoff, HTTP, counting. For exporter authors.

Every exporter shares the same rules: a timeout on every call; retries with exponential backoff
and full jitter on failures that may pass (HTTP 429/502/503/504, connection errors, timeouts,
gRPC UNAVAILABLE/DEADLINE_EXCEEDED), honouring the server's ``Retry-After``, within a total
deadline; no retry on a permanent failure (HTTP 400/401/403/404/413, gRPC INVALID_ARGUMENT, ...).
A ``Retry-After`` lengthens a backoff, never shortens it. ``export`` never raises into the
pipeline and ``shutdown`` interrupts any backoff sleep. An HTTP request's timeout bounds the
whole request, however slowly a server answers, and no attempt outlives the retry deadline: a
backend that hangs or trickles holds the exporting thread at most one request timeout per
attempt, and one ``export`` at most the deadline.

Settings are checked when an exporter is built, not at export: ``url_setting``,
``headers_setting`` and ``retry_setting`` raise ``ConfigurationError`` naming the option or
environment variable a bad value came from (``timeout_setting`` a ``ValueError``, which
``configure()`` reports as one).

An HTTP exporter is a subclass of ``HttpExporter`` that says how to encode::

    class MyExporter(delivery.HttpExporter):
        content_type = "application/json"

        def encode(self, spans):
            return json.dumps([s.name for s in spans]).encode()

    exporter = MyExporter("http://127.0.0.1:9000/spans", timeout=5.0)

Other transports call ``Sender.run`` with one attempt of their own that returns an ``Outcome``.
"""

from __future__ import annotations

from ._http import HttpExporter, HttpResponse, post
from ._http_settings import headers_setting, url_setting
from ._retry import (
    DEFAULT_RETRY,
    MAX_RESPONSE_BYTES,
    NO_RETRY,
    RETRYABLE_GRPC_CODES,
    RETRYABLE_HTTP_STATUSES,
    Outcome,
    RetryPolicy,
    Sender,
    env,
    grpc_outcome,
    http_outcome,
    parse_retry_after,
    retry_setting,
    timeout_setting,
)

__all__ = [
    "DEFAULT_RETRY",
    "MAX_RESPONSE_BYTES",
    "NO_RETRY",
    "RETRYABLE_GRPC_CODES",
    "RETRYABLE_HTTP_STATUSES",
    "HttpExporter",
    "HttpResponse",
    "Outcome",
    "RetryPolicy",
    "Sender",
    "env",
    "grpc_outcome",
    "headers_setting",
    "http_outcome",
    "parse_retry_after",
    "post",
    "retry_setting",
    "timeout_setting",
    "url_setting",
]
