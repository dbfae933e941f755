"""The ``otlp`` exporter: OTLP/HTTP, protobuf or JSON, configured as OpenTelemetry's is."""

from __future__ import annotations

from typing import Dict, Mapping, Optional, Sequence
from urllib.parse import unquote

from tracing_api import delivery
from tracing_api.export import SpanData

from ._json import encode_json
from ._wire import encode_protobuf

DEFAULT_ENDPOINT = "http://localhost:4318"
"""The OTLP/HTTP receiver unless told otherwise: a Collector or agent on this host."""

PROTOCOLS = {"http/protobuf": "application/x-protobuf", "http/json": "application/json"}
"""The protocols this exporter speaks, and their content types."""


def _env(name: str) -> Optional[str]:
    """TRACING_OTLP_{name} (traces first), then OTEL_EXPORTER_OTLP_{name} likewise."""
    found = delivery.env(f"TRACING_OTLP_TRACES_{name}", f"OTEL_EXPORTER_OTLP_TRACES_{name}",
                         f"TRACING_OTLP_{name}", f"OTEL_EXPORTER_OTLP_{name}")
    return found[1] if found else None


def parse_headers(text: str) -> Dict[str, str]:
    """``key1=value1,key2=value2`` (values percent-decoded), as in ``OTEL_EXPORTER_OTLP_HEADERS``.

    A member without ``=`` or with an empty key raises ``ValueError``.
    """
    headers: Dict[str, str] = {}
    for member in text.split(","):
        if not member.strip():
            continue
        key, sep, value = member.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"OTLP headers: expected key=value pairs, got {member!r}")
        headers[unquote(key.strip())] = unquote(value.strip())
    return headers


def traces_url(endpoint: Optional[str]) -> str:
    """The URL to POST to: ``endpoint`` + ``/v1/traces``; from the environment, a
    ``*_TRACES_ENDPOINT`` is used as it is and a general ``*_ENDPOINT`` gets ``/v1/traces``.
    """
    if endpoint is None:
        found = delivery.env("TRACING_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        if found is not None:
            return found[1]
        general = delivery.env("TRACING_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
        endpoint = general[1] if general else DEFAULT_ENDPOINT
    if not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://")):
        raise ValueError(f"endpoint: expected an http:// or https:// URL, got {endpoint!r}")
    if endpoint.rstrip("/").endswith("/v1/traces"):
        return endpoint
    return endpoint.rstrip("/") + "/v1/traces"


class OtlpExporter(delivery.HttpExporter):
    """Sends spans over OTLP/HTTP to ``{endpoint}/v1/traces``.

    Options, each falling back to ``TRACING_OTLP_TRACES_*``, ``OTEL_EXPORTER_OTLP_TRACES_*``,
    ``TRACING_OTLP_*`` and ``OTEL_EXPORTER_OTLP_*`` in that order: ``endpoint`` (default
    ``http://localhost:4318``), ``protocol`` (``"http/protobuf"``, the default, or
    ``"http/json"``), ``headers`` (a mapping; ``key=value,...`` in the environment),
    ``timeout`` (seconds; milliseconds in the environment; default 10 s) and ``compression``
    (``"gzip"`` or ``"none"``). ``retry`` is a ``tracing_api.delivery.RetryPolicy``.
    """

    def __init__(
        self, endpoint: Optional[str] = None, *, protocol: Optional[str] = None,
        headers: Optional[Mapping[str, str]] = None, timeout: Optional[float] = None,
        compression: Optional[str] = None, retry: delivery.RetryPolicy = delivery.DEFAULT_RETRY,
    ) -> None:
        protocol = protocol or _env("PROTOCOL") or "http/protobuf"
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol: expected one of {sorted(PROTOCOLS)}, got {protocol!r}"
                             + (" (gRPC is not supported; use OTLP/HTTP)" if "grpc" in protocol
                                else ""))
        compression = (compression or _env("COMPRESSION") or "none").lower()
        if compression not in ("gzip", "none"):
            raise ValueError(f"compression: expected 'gzip' or 'none', got {compression!r}")
        if headers is None:
            headers = parse_headers(_env("HEADERS") or "")
        self.protocol = protocol
        self.content_type = PROTOCOLS[protocol]
        self._encode = encode_json if protocol == "http/json" else encode_protobuf
        timeout_env = ("TRACING_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
                       "TRACING_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT")
        super().__init__(
            traces_url(endpoint), headers=headers, gzip=compression == "gzip", retry=retry,
            timeout=delivery.timeout_setting(timeout, "timeout", timeout_env, 10.0))

    def encode(self, spans: Sequence[SpanData]) -> bytes:
        """``spans`` as an ``ExportTraceServiceRequest`` in the chosen protocol."""
        return self._encode(spans)

    def __repr__(self) -> str:
        return f"OtlpExporter({self.url!r}, protocol={self.protocol!r})"
