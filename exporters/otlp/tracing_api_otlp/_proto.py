"""Finished spans as an OTLP ``ExportTraceServiceRequest`` message (``opentelemetry-proto``).

The message form, for callers who want to inspect or extend it; the exporter sends the same
bytes from ``_wire``, which writes them without building messages.
"""

from __future__ import annotations

from typing import Any, List, Mapping, Sequence, cast

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from tracing_api.export import SpanData

from ._group import INT64_MAX, INT64_MIN, group, span_flags


def any_value(value: Any) -> AnyValue:
    """An attribute value as an ``AnyValue``; an integer beyond 64 bits becomes its decimal text."""
    kind = type(value)
    if kind is str:
        return AnyValue(string_value=_text(value))
    if kind is bool:
        return AnyValue(bool_value=value)
    if kind is int:
        if INT64_MIN <= value <= INT64_MAX:
            return AnyValue(int_value=value)
        return AnyValue(string_value=str(value))
    if kind is float:
        return AnyValue(double_value=value)
    if isinstance(value, (str, bool, int, float)):  # subclasses, e.g. enums
        base = str if isinstance(value, str) else bool if isinstance(value, bool) else (
            int if isinstance(value, int) else float)
        return any_value(base(value))
    try:
        items = [any_value(item) for item in value]
    except TypeError:
        return AnyValue(string_value=str(value))
    return AnyValue(array_value=ArrayValue(values=items))


def key_values(attributes: Mapping[str, Any]) -> List[KeyValue]:
    """Attributes as ``KeyValue`` messages, in their order."""
    return [KeyValue(key=_text(str(k)), value=any_value(v)) for k, v in attributes.items()]


def _text(value: str) -> str:
    """``value`` with any lone surrogate as "?", as the exporter's own encoder writes it
    (protobuf refuses strings that cannot be UTF-8)."""
    return value if value.isascii() else value.encode("utf-8", "replace").decode("utf-8")


def _span(span: SpanData) -> Span:
    context = span.context
    parent = span.parent
    out = Span(
        trace_id=context.trace_id.to_bytes(16, "big"),
        span_id=context.span_id.to_bytes(8, "big"),
        flags=span_flags(context.trace_flags, parent is not None and parent.is_remote),
        name=_text(span.name), kind=cast(Any, int(span.kind)),  # numbered as OTLP's
        start_time_unix_nano=span.start_time, end_time_unix_nano=span.end_time,
        dropped_attributes_count=span.dropped_attributes,
        dropped_events_count=span.dropped_events, dropped_links_count=span.dropped_links,
    )
    if context.trace_state:
        out.trace_state = context.trace_state.header()
    if parent is not None and parent.span_id:
        out.parent_span_id = parent.span_id.to_bytes(8, "big")
    if span.attributes:
        out.attributes.extend(key_values(span.attributes))
    for event in span.events:
        added = out.events.add(time_unix_nano=event.timestamp, name=_text(event.name),
                               dropped_attributes_count=event.dropped_attributes)
        if event.attributes:
            added.attributes.extend(key_values(event.attributes))
    for link in span.links:
        linked = link.context
        added_link = out.links.add(
            trace_id=linked.trace_id.to_bytes(16, "big"), span_id=linked.span_id.to_bytes(8, "big"),
            flags=span_flags(linked.trace_flags, linked.is_remote),
            dropped_attributes_count=link.dropped_attributes)
        if linked.trace_state:
            added_link.trace_state = linked.trace_state.header()
        if link.attributes:
            added_link.attributes.extend(key_values(link.attributes))
    status = span.status
    if status.code:
        out.status.CopyFrom(Status(code=cast(Any, int(status.code)), message=_text(status.description or "")))
    return out


def encode_request(spans: Sequence[SpanData]) -> ExportTraceServiceRequest:
    """``spans`` as an ``ExportTraceServiceRequest``: by resource, then scope."""
    request = ExportTraceServiceRequest()
    for resource, scopes in group(spans):
        resource_spans: ResourceSpans = request.resource_spans.add(
            resource=Resource(attributes=key_values(resource)))
        for scope, items in scopes:
            scope_spans: ScopeSpans = resource_spans.scope_spans.add(
                scope=InstrumentationScope(name=_text(str(scope.name)),
                                           version=_text(str(scope.version or ""))))
            scope_spans.spans.extend([_span(span) for span in items])
    return request
