"""OTLP/HTTP exporter for tracing-api: ``tracing.configure(exporter="otlp")``.

Reaches Jaeger, Tempo, the OpenTelemetry Collector and most vendors, in protobuf
(``opentelemetry-proto``) or OTLP/JSON. See ``OtlpExporter`` for the options.
"""

from ._exporter import DEFAULT_ENDPOINT, PROTOCOLS, OtlpExporter, parse_headers, traces_url
from ._json import encode_json
from ._proto import encode_request
from ._wire import encode_protobuf

__all__ = [
    "DEFAULT_ENDPOINT",
    "PROTOCOLS",
    "OtlpExporter",
    "encode_json",
    "encode_protobuf",
    "encode_request",
    "parse_headers",
    "traces_url",
]
