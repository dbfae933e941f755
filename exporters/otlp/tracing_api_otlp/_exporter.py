"""The ``otlp`` exporter: OTLP/HTTP, protobuf or JSON, configured as OpenTelemetry's is."""

from __future__ import annotations

import logging
import time
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, cast
from urllib.parse import unquote, urlsplit, urlunsplit

from tracing_api import ConfigurationError, delivery
from tracing_api.export import SpanData

from ._json import encode_json
from ._wire import encode_protobuf

DEFAULT_ENDPOINT = "http://localhost:4318"
"""The OTLP/HTTP receiver unless told otherwise: a Collector or agent on this host."""

PROTOCOLS = {"http/protobuf": "application/x-protobuf", "http/json": "application/json"}
"""The protocols this exporter speaks, and their content types."""

_PREFIX = "exporter 'otlp': "
_log = logging.getLogger("tracing_api.delivery")


def _env(name: str) -> Optional[Tuple[str, str]]:
    """TRACING_OTLP_{name} (traces first), then OTEL_EXPORTER_OTLP_{name} likewise, as
    ``(variable, value)`` so that an error can name the variable.
    """
    return delivery.env(f"TRACING_OTLP_TRACES_{name}", f"OTEL_EXPORTER_OTLP_TRACES_{name}",
                        f"TRACING_OTLP_{name}", f"OTEL_EXPORTER_OTLP_{name}")


def _setting(value: Any, option: str, env_name: str, default: str) -> Tuple[Any, str]:
    """The value of ``option`` and where it came from: the argument, a variable, the default."""
    if value is not None:
        return value, option
    found = _env(env_name)
    return (found[1], f"{option} ({found[0]})") if found else (default, option)


def _protobuf_partial(body: bytes) -> Tuple[int, str]:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceResponse,
    )

    partial = ExportTraceServiceResponse.FromString(body).partial_success
    return int(partial.rejected_spans), str(partial.error_message)


def _json_partial(body: bytes) -> Tuple[int, str]:
    import json

    partial = json.loads(body).get("partialSuccess") or {}
    return int(partial.get("rejectedSpans") or 0), str(partial.get("errorMessage") or "")


def parse_headers(text: str, source: str = "OTLP headers") -> Dict[str, str]:
    """``key1=value1,key2=value2`` (values percent-decoded), as in ``OTEL_EXPORTER_OTLP_HEADERS``.

    A member without ``=``, a name that is not an HTTP token, or a value holding CR, LF or NUL
    once decoded raises ``ConfigurationError`` (a ``ValueError``) naming ``source``.
    """
    headers: Dict[str, str] = {}
    for member in text.split(","):
        if not member.strip():
            continue
        key, sep, value = member.partition("=")
        if not sep or not key.strip():
            raise ConfigurationError(
                f"{source}: expected key=value pairs separated by commas, got {member!r}")
        headers[unquote(key.strip())] = unquote(value.strip())
    return delivery.headers_setting(headers, source)


def traces_url(endpoint: Optional[str]) -> str:
    """The URL to POST to: ``endpoint`` + ``/v1/traces``; from the environment, a
    ``*_TRACES_ENDPOINT`` is used as it is and a general ``*_ENDPOINT`` gets ``/v1/traces``.
    A value that is not an http:// or https:// URL with a host raises ``ConfigurationError``
    naming the option or variable it came from.
    """
    source = "endpoint"
    if endpoint is None:
        found = delivery.env("TRACING_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        if found is not None:
            return delivery.url_setting(found[1], f"{_PREFIX}endpoint ({found[0]})")
        general = delivery.env("TRACING_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
        if general is not None:
            source, endpoint = f"endpoint ({general[0]})", general[1]
        else:
            endpoint = DEFAULT_ENDPOINT
    delivery.url_setting(endpoint, _PREFIX + source)
    parts = urlsplit(endpoint)  # the path gets /v1/traces, not a query string after it
    if parts.path.rstrip("/").endswith("/v1/traces"):  # given whole; "/v1/traces/" is a 404
        return urlunsplit(parts._replace(path=parts.path.rstrip("/")))
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/v1/traces"))


class OtlpExporter(delivery.HttpExporter):
    """Sends spans over OTLP/HTTP to ``{endpoint}/v1/traces``.

    Options, each falling back to ``TRACING_OTLP_TRACES_*``, ``OTEL_EXPORTER_OTLP_TRACES_*``,
    ``TRACING_OTLP_*`` and ``OTEL_EXPORTER_OTLP_*`` in that order: ``endpoint`` (default
    ``http://localhost:4318``), ``protocol`` (``"http/protobuf"``, the default, or
    ``"http/json"``), ``headers`` (a mapping; ``key=value,...`` in the environment),
    ``timeout`` (seconds; milliseconds in the environment; default 10 s) and ``compression``
    (``"gzip"`` or ``"none"``). ``retry`` is a ``tracing_api.delivery.RetryPolicy``.

    Every setting is checked here: a bad one raises ``ConfigurationError`` naming the option,
    or the environment variable it came from.
    """

    def __init__(
        self, endpoint: Optional[str] = None, *, protocol: Optional[str] = None,
        headers: Optional[Mapping[str, str]] = None, timeout: Optional[float] = None,
        compression: Optional[str] = None, retry: Optional[delivery.RetryPolicy] = None,
    ) -> None:
        protocol, source = _setting(protocol, "protocol", "PROTOCOL", "http/protobuf")
        if not isinstance(protocol, str) or protocol not in PROTOCOLS:
            hint = (" (gRPC is not supported; use OTLP/HTTP)"
                    if isinstance(protocol, str) and "grpc" in protocol.lower() else "")
            raise ConfigurationError(f"{_PREFIX}{source}: expected one of {sorted(PROTOCOLS)}, "
                                     f"got {protocol!r}{hint}")
        compression, source = _setting(compression, "compression", "COMPRESSION", "none")
        if not isinstance(compression, str) or compression.lower() not in ("gzip", "none"):
            raise ConfigurationError(
                f"{_PREFIX}{source}: expected 'gzip' or 'none', got {compression!r}")
        if headers is None:
            found = _env("HEADERS")
            headers = parse_headers(found[1], f"{_PREFIX}OTLP headers ({found[0]})") if found else {}
        elif isinstance(cast(object, headers), str):  # a common mistake, with its own hint
            raise ConfigurationError(
                f"{_PREFIX}headers: expected a mapping such as {{'api-key': '...'}}; the "
                "'key=value,...' form is for OTEL_EXPORTER_OTLP_HEADERS")
        else:
            headers = delivery.headers_setting(headers, _PREFIX + "headers")
        retry = delivery.retry_setting(retry, _PREFIX + "retry")
        timeout_env = ("TRACING_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
                       "TRACING_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT")
        try:
            seconds = delivery.timeout_setting(timeout, "timeout", timeout_env, 10.0)
        except ValueError as exc:
            raise ConfigurationError(f"{_PREFIX}{exc}") from None
        url = traces_url(endpoint)
        self.protocol = protocol
        self._last_refusal = -60.0
        self.content_type = PROTOCOLS[protocol]
        self._encode = encode_json if protocol == "http/json" else encode_protobuf
        super().__init__(url, headers=headers, gzip=compression.lower() == "gzip", retry=retry,
                         timeout=seconds)

    def encode(self, spans: Sequence[SpanData]) -> bytes:
        """``spans`` as an ``ExportTraceServiceRequest`` in the chosen protocol. A span with an
        invalid context (hand-made: no backend can store it) raises, so the exporter leaves it
        out and counts it as failed (see ``delivery.HttpExporter.export``)."""
        for span in spans:
            if not span.context.is_valid:
                raise ValueError(f"span {span.name!r} has an invalid context")
        return self._encode(spans)

    def rejected(self, reply: delivery.HttpResponse) -> int:
        """The ``rejected_spans`` of the collector's ``partial_success``, if it sent one (its
        ``error_message`` is logged, at most once a minute)."""
        if not reply.body:
            return 0
        rejected, message = (_json_partial(reply.body) if self.protocol == "http/json"
                             else _protobuf_partial(reply.body))
        if rejected or message:
            now = time.monotonic()  # a warning a minute at most: refusals may come every batch
            level = logging.WARNING if now - self._last_refusal >= 60.0 else logging.DEBUG
            if level == logging.WARNING:
                self._last_refusal = now
            _log.log(level, "OtlpExporter: %s refused %d spans of a batch: %s", self.shown_url,
                     rejected, message[:200] or "(no message)")
        return rejected

    def __repr__(self) -> str:
        return f"OtlpExporter({self.shown_url!r}, protocol={self.protocol!r})"
