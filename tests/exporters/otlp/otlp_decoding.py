"""OTLP test helpers: decode what was sent with the official protos, back into plain values.

Imported by the OTLP tests from this folder (it is not a test module itself).
"""

from __future__ import annotations

import base64
import json
import math
import re
from typing import Any, Dict, List, Tuple

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tracing_api.export import SpanData

_HEX = {"traceId": re.compile(r"[0-9a-f]{32}\Z"), "spanId": re.compile(r"[0-9a-f]{16}\Z"),
        "parentSpanId": re.compile(r"[0-9a-f]{16}\Z")}


def _strict_otlp_json(node: Any, path: str = "") -> Any:
    """OTLP/JSON turned into protobuf's generic JSON mapping, refusing what OTLP forbids:
    ids must be lower-case hex of the right length, enums integers.
    """
    if isinstance(node, list):
        return [_strict_otlp_json(item, path) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key in _HEX:
            assert isinstance(value, str), f"{path}.{key} is not a string"
            assert _HEX[key].match(value), f"{path}.{key} is not lower-case hex: {value!r}"
            value = base64.b64encode(bytes.fromhex(value)).decode()
        elif key in ("kind", "code"):
            assert type(value) is int, f"{path}.{key} must be an integer, got {value!r}"
        out[key] = _strict_otlp_json(value, f"{path}.{key}")
    return out


def parse_json(body: bytes) -> ExportTraceServiceRequest:
    """An OTLP/JSON body as the official message, checked strictly on the way."""
    converted = _strict_otlp_json(json.loads(body))
    return json_format.Parse(json.dumps(converted), ExportTraceServiceRequest(),
                             ignore_unknown_fields=False)


def parse_protobuf(body: bytes) -> ExportTraceServiceRequest:
    """A protobuf body as the official message."""
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    return request


def plain(value: Any) -> Any:
    """An attribute value comparable with ==: NaN as a marker, sequences as tuples."""
    if isinstance(value, float) and math.isnan(value):
        return "<nan>"
    if isinstance(value, (list, tuple)):
        return tuple(plain(v) for v in value)
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
        return str(value)  # beyond int64: sent as text
    return value


def decode_any(value: Any) -> Any:
    field = value.WhichOneof("value")
    if field == "array_value":
        return tuple(decode_any(v) for v in value.array_value.values)
    return plain(getattr(value, field)) if field else None


def decode_attributes(key_values: Any) -> Dict[str, Any]:
    return {kv.key: decode_any(kv.value) for kv in key_values}


def expected_attributes(attributes: Any) -> Dict[str, Any]:
    return {k: plain(v) for k, v in attributes.items()}


def flat(request: ExportTraceServiceRequest) -> List[Tuple[Any, Any, Any]]:
    """Every (resource, scope, span) in the request."""
    return [(rs.resource, ss.scope, span) for rs in request.resource_spans
            for ss in rs.scope_spans for span in ss.spans]


def assert_matches(span: SpanData, resource: Any, scope: Any, sent: Any) -> None:
    """Every field of ``sent`` (a decoded OTLP span) equals what ``span`` says."""
    ctx = span.context
    parent = span.parent
    assert sent.trace_id == ctx.trace_id.to_bytes(16, "big")
    assert sent.span_id == ctx.span_id.to_bytes(8, "big")
    assert sent.parent_span_id == (parent.span_id.to_bytes(8, "big") if parent else b"")
    assert sent.trace_state == ctx.trace_state.header()
    remote = 0x200 if parent is not None and parent.is_remote else 0
    assert sent.flags == (ctx.trace_flags & 0xFF) | 0x100 | remote
    assert (sent.name, sent.kind) == (span.name, int(span.kind))
    assert (sent.start_time_unix_nano, sent.end_time_unix_nano) == (span.start_time, span.end_time)
    assert decode_attributes(sent.attributes) == expected_attributes(span.attributes)
    assert (sent.dropped_attributes_count, sent.dropped_events_count,
            sent.dropped_links_count) == (span.dropped_attributes, span.dropped_events,
                                          span.dropped_links)
    assert [(e.name, e.time_unix_nano, decode_attributes(e.attributes), e.dropped_attributes_count)
            for e in sent.events] == [
        (e.name, e.timestamp, expected_attributes(e.attributes), e.dropped_attributes)
        for e in span.events]
    assert [(link.trace_id, link.span_id, link.trace_state, link.flags,
             decode_attributes(link.attributes), link.dropped_attributes_count)
            for link in sent.links] == [
        (link.context.trace_id.to_bytes(16, "big"), link.context.span_id.to_bytes(8, "big"),
         link.context.trace_state.header(),
         (link.context.trace_flags & 0xFF) | 0x100 | (0x200 if link.context.is_remote else 0),
         expected_attributes(link.attributes), link.dropped_attributes) for link in span.links]
    assert (sent.status.code, sent.status.message) == (
        int(span.status.code), span.status.description or "")
    assert (scope.name, scope.version) == (span.scope.name, span.scope.version or "")
    assert decode_attributes(resource.attributes) == expected_attributes(span.resource)
