"""Zipkin exporter for tracing-api: ``tracing.configure(exporter="zipkin")``.

Spans go as Zipkin v2 JSON to ``POST /api/v2/spans`` (standard library only). See
``ZipkinExporter`` for the options and ``tracing_api_zipkin._encode`` for how fields map.
"""

from ._encode import encode_spans, remote_endpoint, tag_value
from ._exporter import DEFAULT_ENDPOINT, ZipkinExporter

__all__ = ["DEFAULT_ENDPOINT", "ZipkinExporter", "encode_spans", "remote_endpoint",
           "tag_value"]
