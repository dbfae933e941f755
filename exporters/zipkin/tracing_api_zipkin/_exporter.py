"""The ``zipkin`` exporter: Zipkin v2 JSON over HTTP POST, with the core's retry rules."""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

from tracing_api import ConfigurationError, delivery
from tracing_api.export import SpanData

from ._encode import encode_spans

DEFAULT_ENDPOINT = "http://localhost:9411/api/v2/spans"
"""Where spans go unless told otherwise: a Zipkin server on this host."""

_ENDPOINT_ENV = ("TRACING_ZIPKIN_ENDPOINT", "OTEL_EXPORTER_ZIPKIN_ENDPOINT")
_TIMEOUT_ENV = ("TRACING_ZIPKIN_TIMEOUT", "OTEL_EXPORTER_ZIPKIN_TIMEOUT")
_COMPRESSION_ENV = ("TRACING_ZIPKIN_COMPRESSION",)
_PREFIX = "exporter 'zipkin': "


class ZipkinExporter(delivery.HttpExporter):
    """Sends spans to Zipkin's ``POST /api/v2/spans`` as JSON.

    ``endpoint`` is the full URL (default: ``TRACING_ZIPKIN_ENDPOINT``, then
    ``OTEL_EXPORTER_ZIPKIN_ENDPOINT``, then ``http://localhost:9411/api/v2/spans``).
    ``timeout`` bounds each request in seconds (default: ``TRACING_ZIPKIN_TIMEOUT`` or
    ``OTEL_EXPORTER_ZIPKIN_TIMEOUT`` in milliseconds, else 10 s). ``compression="gzip"``
    (or ``TRACING_ZIPKIN_COMPRESSION=gzip``) compresses each body. ``headers`` is a mapping of
    extra request headers. ``service_name`` overrides the resource's ``service.name``.
    ``retry`` is a ``tracing_api.delivery.RetryPolicy``. A bad setting raises
    ``ConfigurationError`` naming the option, or the environment variable it came from.
    """

    content_type = "application/json"

    def __init__(
        self, endpoint: Optional[str] = None, *, timeout: Optional[float] = None,
        compression: Optional[str] = None, headers: Optional[Mapping[str, str]] = None,
        service_name: Optional[str] = None, retry: Optional[delivery.RetryPolicy] = None,
    ) -> None:
        source = "endpoint"
        if endpoint is None:
            found = delivery.env(*_ENDPOINT_ENV)
            source, endpoint = (f"endpoint ({found[0]})", found[1]) if found else (
                source, DEFAULT_ENDPOINT)
        endpoint = delivery.url_setting(endpoint, _PREFIX + source)
        source = "compression"
        if compression is None:
            found = delivery.env(*_COMPRESSION_ENV)
            source, compression = (f"compression ({found[0]})", found[1]) if found else (
                source, "none")
        if not isinstance(compression, str) or compression.lower() not in ("gzip", "none"):
            raise ConfigurationError(
                f"{_PREFIX}{source}: expected 'gzip' or 'none', got {compression!r}")
        extra = delivery.headers_setting(headers, _PREFIX + "headers")
        policy = delivery.retry_setting(retry, _PREFIX + "retry")
        try:
            seconds = delivery.timeout_setting(timeout, "timeout", _TIMEOUT_ENV, 10.0)
        except ValueError as exc:
            raise ConfigurationError(f"{_PREFIX}{exc}") from None
        super().__init__(endpoint, timeout=seconds, headers=extra,
                         gzip=compression.lower() == "gzip", retry=policy)
        self.service_name = service_name

    def encode(self, spans: Sequence[SpanData]) -> bytes:
        """``spans`` as a Zipkin v2 JSON list. A span with an invalid context (hand-made: no
        backend can store it) raises, so the exporter leaves it out and counts it as failed
        (see ``delivery.HttpExporter.export``)."""
        for span in spans:
            if not span.context.is_valid:
                raise ValueError(f"span {span.name!r} has an invalid context")
        return encode_spans(spans, self.service_name)

    def __repr__(self) -> str:
        return f"ZipkinExporter({self.shown_url!r})"
