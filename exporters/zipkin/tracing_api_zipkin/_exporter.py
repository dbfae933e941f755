"""The ``zipkin`` exporter: Zipkin v2 JSON over HTTP POST, with the core's retry rules."""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

from tracing_api import delivery
from tracing_api.export import SpanData

from ._encode import encode_spans

DEFAULT_ENDPOINT = "http://localhost:9411/api/v2/spans"
"""Where spans go unless told otherwise: a Zipkin server on this host."""

_ENDPOINT_ENV = ("TRACING_ZIPKIN_ENDPOINT", "OTEL_EXPORTER_ZIPKIN_ENDPOINT")
_TIMEOUT_ENV = ("TRACING_ZIPKIN_TIMEOUT", "OTEL_EXPORTER_ZIPKIN_TIMEOUT")
_COMPRESSION_ENV = ("TRACING_ZIPKIN_COMPRESSION",)


class ZipkinExporter(delivery.HttpExporter):
    """Sends spans to Zipkin's ``POST /api/v2/spans`` as JSON.

    ``endpoint`` is the full URL (default: ``TRACING_ZIPKIN_ENDPOINT``, then
    ``OTEL_EXPORTER_ZIPKIN_ENDPOINT``, then ``http://localhost:9411/api/v2/spans``).
    ``timeout`` bounds each request in seconds (default: ``TRACING_ZIPKIN_TIMEOUT`` or
    ``OTEL_EXPORTER_ZIPKIN_TIMEOUT`` in milliseconds, else 10 s). ``compression="gzip"``
    (or ``TRACING_ZIPKIN_COMPRESSION=gzip``) compresses each body. ``service_name`` overrides
    the resource's ``service.name``. ``retry`` is a ``tracing_api.delivery.RetryPolicy``.
    """

    content_type = "application/json"

    def __init__(
        self, endpoint: Optional[str] = None, *, timeout: Optional[float] = None,
        compression: Optional[str] = None, headers: Optional[Mapping[str, str]] = None,
        service_name: Optional[str] = None, retry: delivery.RetryPolicy = delivery.DEFAULT_RETRY,
    ) -> None:
        if endpoint is None:
            found = delivery.env(*_ENDPOINT_ENV)
            endpoint = found[1] if found else DEFAULT_ENDPOINT
        if not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://")):
            raise ValueError(f"endpoint: expected an http:// or https:// URL, got {endpoint!r}")
        if compression is None:
            found = delivery.env(*_COMPRESSION_ENV)
            compression = found[1].lower() if found else "none"
        if compression not in ("gzip", "none"):
            raise ValueError(f"compression: expected 'gzip' or 'none', got {compression!r}")
        super().__init__(
            endpoint, timeout=delivery.timeout_setting(timeout, "timeout", _TIMEOUT_ENV, 10.0),
            headers=headers, gzip=compression == "gzip", retry=retry)
        self.service_name = service_name

    def encode(self, spans: Sequence[SpanData]) -> bytes:
        """``spans`` as a Zipkin v2 JSON list."""
        return encode_spans(spans, self.service_name)

    def __repr__(self) -> str:
        return f"ZipkinExporter({self.url!r})"
