"""Finished spans as OTLP/JSON: the protobuf JSON mapping with OTLP's own rules.

OTLP/JSON differs from protobuf's generic JSON mapping: trace and span ids are lower-case hex
(not base64), and enums (``kind``, ``status.code``) are integers (not names). 64-bit integers
are decimal strings, as the mapping says; fields at their default value are left out.
"""

from __future__ import annotations

import json
import math
from typing import Any, Dict, List, Mapping, Sequence

from tracing_api.export import SpanData

from ._group import INT64_MAX, INT64_MIN, group, span_flags

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def any_value(value: Any) -> Dict[str, Any]:
    """An attribute value as an OTLP/JSON ``AnyValue`` object."""
    if isinstance(value, str):
        return {"stringValue": str(value)}
    if isinstance(value, bool):
        return {"boolValue": bool(value)}
    if isinstance(value, int):
        number = int(value)
        if INT64_MIN <= number <= INT64_MAX:
            return {"intValue": str(number)}
        return {"stringValue": str(number)}
    if isinstance(value, float):
        double = float(value)
        if math.isnan(double):
            return {"doubleValue": "NaN"}
        if math.isinf(double):
            return {"doubleValue": "Infinity" if double > 0 else "-Infinity"}
        return {"doubleValue": double}
    try:
        return {"arrayValue": {"values": [any_value(item) for item in value]}}
    except TypeError:
        return {"stringValue": str(value)}


def key_values(attributes: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """Attributes as OTLP/JSON ``KeyValue`` objects."""
    return [{"key": str(k), "value": any_value(v)} for k, v in attributes.items()]


def _nanos(value: int) -> str:
    """A time as OTLP/JSON writes a fixed64: decimal text; a value that is no unsigned 64-bit
    integer raises, as the protobuf encoder does, so the span is left out (see HttpExporter)."""
    if type(value) is not int or not 0 <= value <= 0xFFFF_FFFF_FFFF_FFFF:
        raise ValueError(f"time {value!r} is not an unsigned 64-bit count of nanoseconds")
    return str(value)


def _span(span: SpanData) -> Dict[str, Any]:
    context = span.context
    parent = span.parent
    out: Dict[str, Any] = {
        "traceId": context.trace_id_hex,
        "spanId": context.span_id_hex,
        "flags": span_flags(context.trace_flags, parent is not None and parent.is_remote),
        "name": span.name,
        "kind": int(span.kind),
        "startTimeUnixNano": _nanos(span.start_time),
        "endTimeUnixNano": _nanos(span.end_time),
    }
    if context.trace_state:
        out["traceState"] = context.trace_state.header()
    if parent is not None and parent.span_id:
        out["parentSpanId"] = parent.span_id_hex
    if span.attributes:
        out["attributes"] = key_values(span.attributes)
    if span.dropped_attributes:
        out["droppedAttributesCount"] = span.dropped_attributes
    if span.events:
        out["events"] = [_event(e.name, e.timestamp, e.attributes, e.dropped_attributes)
                         for e in span.events]
    if span.dropped_events:
        out["droppedEventsCount"] = span.dropped_events
    if span.links:
        out["links"] = [_link(link) for link in span.links]
    if span.dropped_links:
        out["droppedLinksCount"] = span.dropped_links
    if span.status.code:
        status: Dict[str, Any] = {"code": int(span.status.code)}
        if span.status.description:
            status["message"] = span.status.description
        out["status"] = status
    return out


def _event(name: str, timestamp: int, attributes: Mapping[str, Any],
           dropped: int) -> Dict[str, Any]:
    out: Dict[str, Any] = {"timeUnixNano": _nanos(timestamp), "name": name}
    if attributes:
        out["attributes"] = key_values(attributes)
    if dropped:
        out["droppedAttributesCount"] = dropped
    return out


def _link(link: Any) -> Dict[str, Any]:
    context = link.context
    out: Dict[str, Any] = {"traceId": context.trace_id_hex, "spanId": context.span_id_hex,
                           "flags": span_flags(context.trace_flags, context.is_remote)}
    if context.trace_state:
        out["traceState"] = context.trace_state.header()
    if link.attributes:
        out["attributes"] = key_values(link.attributes)
    if link.dropped_attributes:
        out["droppedAttributesCount"] = link.dropped_attributes
    return out


def encode_json(spans: Sequence[SpanData]) -> bytes:
    """``spans`` as an OTLP/JSON ``ExportTraceServiceRequest`` (``application/json``)."""
    resource_spans = []
    for resource, scopes in group(spans):
        scope_spans = []
        for scope, items in scopes:
            encoded_scope: Dict[str, Any] = {"name": str(scope.name)}  # strings, as the proto's
            if scope.version:
                encoded_scope["version"] = str(scope.version)
            scope_spans.append({"scope": encoded_scope, "spans": [_span(s) for s in items]})
        resource_spans.append({"resource": {"attributes": key_values(resource)},
                               "scopeSpans": scope_spans})
    return _dumps({"resourceSpans": resource_spans}).encode("utf-8", "replace")
