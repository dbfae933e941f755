"""Finished spans as OTLP protobuf bytes, written directly in the protobuf wire format.

The same bytes ``_proto.encode_request(spans).SerializeToString()`` gives (the tests check it
for any spans), without building a message object per field: encoding is the exporter's hot
path. Field numbers are those of ``opentelemetry/proto/trace/v1/trace.proto``.
"""

from __future__ import annotations

import struct
from typing import Any, Callable, Dict, List, Mapping, Sequence

from tracing_api.export import SpanData

from ._group import INT64_MAX, INT64_MIN, group, span_flags

_fixed64 = struct.Struct("<Q").pack
_fixed32 = struct.Struct("<I").pack
_double = struct.Struct("<d").pack
_SMALL = [bytes([n]) for n in range(128)]


def _varint(value: int) -> bytes:
    if value < 128:
        return _SMALL[value]
    out = bytearray()
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: tag, length, payload."""
    length = len(payload)
    return tag + (_SMALL[length] if length < 128 else _varint(length)) + payload


def _str(tag: bytes, text: str) -> bytes:
    # A lone surrogate cannot be UTF-8: replace it rather than send a string receivers reject.
    return _field(tag, text.encode("utf-8", "replace"))


def _any(value: Any) -> bytes:
    """An ``AnyValue`` message body."""
    kind = type(value)
    if kind is str:
        return _str(b"\x0a", value)
    if kind is bool:
        return b"\x10\x01" if value else b"\x10\x00"
    if kind is int:
        if 0 <= value <= INT64_MAX:
            return b"\x18" + _varint(value)
        if INT64_MIN <= value < 0:
            return b"\x18" + _varint(value + (1 << 64))  # two's complement, ten bytes
        return _str(b"\x0a", str(value))
    if kind is float:
        return b"\x21" + _double(value)
    for base in (str, bool, int, float):
        if isinstance(value, base):  # subclasses, e.g. enums
            return _any(base(value))
    try:
        items = b"".join([_field(b"\x0a", _any(item)) for item in value])
    except TypeError:
        return _str(b"\x0a", str(value))
    return _field(b"\x2a", items)


def _attributes(tag: bytes, attributes: Mapping[str, Any], cache: Dict[Any, bytes]) -> bytes:
    """Repeated ``KeyValue`` fields. Scalar pairs repeat across a batch: encode each once."""
    out = []
    for key, value in attributes.items():
        memo = (tag, key, type(value), value) if type(value) in (str, int, bool) else None
        encoded = cache.get(memo) if memo is not None else None
        if encoded is None:
            encoded = _field(tag, _str(b"\x0a", str(key)) + _field(b"\x12", _any(value)))
            if memo is not None and len(cache) < 4096:
                cache[memo] = encoded
        out.append(encoded)
    return b"".join(out)


def _span(span: SpanData, cache: Dict[Any, bytes], ids: Callable[[int], bytes]) -> bytes:
    context = span.context
    parent = span.parent
    parts: List[bytes] = [b"\x0a\x10", ids(context.trace_id),
                          b"\x12\x08", context.span_id.to_bytes(8, "big")]
    if context.trace_state:
        parts.append(_str(b"\x1a", context.trace_state.header()))
    if parent is not None and parent.span_id:
        parts += (b"\x22\x08", parent.span_id.to_bytes(8, "big"))
    if span.name:
        parts.append(_str(b"\x2a", span.name))
    parts += (b"\x30", _SMALL[int(span.kind)], b"\x39", _fixed64(span.start_time),
              b"\x41", _fixed64(span.end_time))
    if span.attributes:
        parts.append(_attributes(b"\x4a", span.attributes, cache))
    if span.dropped_attributes:
        parts += (b"\x50", _varint(span.dropped_attributes))
    for event in span.events:
        body = b"\x09" + _fixed64(event.timestamp)
        if event.name:
            body += _str(b"\x12", event.name)
        if event.attributes:
            body += _attributes(b"\x1a", event.attributes, cache)
        if event.dropped_attributes:
            body += b"\x20" + _varint(event.dropped_attributes)
        parts.append(_field(b"\x5a", body))
    if span.dropped_events:
        parts += (b"\x60", _varint(span.dropped_events))
    for link in span.links:
        linked = link.context
        body = b"\x0a\x10" + ids(linked.trace_id) + b"\x12\x08" + linked.span_id.to_bytes(8, "big")
        if linked.trace_state:
            body += _str(b"\x1a", linked.trace_state.header())
        if link.attributes:
            body += _attributes(b"\x22", link.attributes, cache)
        if link.dropped_attributes:
            body += b"\x28" + _varint(link.dropped_attributes)
        body += b"\x35" + _fixed32(span_flags(linked.trace_flags, linked.is_remote))
        parts.append(_field(b"\x6a", body))
    if span.dropped_links:
        parts += (b"\x70", _varint(span.dropped_links))
    status = span.status
    if status.code:
        body = _str(b"\x12", status.description) if status.description else b""
        parts.append(_field(b"\x7a", body + b"\x18" + _SMALL[int(status.code)]))
    parts += (b"\x85\x01", _fixed32(span_flags(context.trace_flags,
                                                parent is not None and parent.is_remote)))
    return _field(b"\x12", b"".join(parts))  # as ScopeSpans.spans (field 2)


def encode_protobuf(spans: Sequence[SpanData]) -> bytes:
    """``spans`` as a serialized ``ExportTraceServiceRequest`` (``application/x-protobuf``)."""
    cache: Dict[Any, bytes] = {}
    trace_ids: Dict[int, bytes] = {}

    def ids(trace_id: int) -> bytes:
        found = trace_ids.get(trace_id)
        if found is None:
            found = trace_ids[trace_id] = trace_id.to_bytes(16, "big")
        return found

    out = []
    for resource, scopes in group(spans):
        scope_spans = []
        for scope, items in scopes:
            encoded_scope = (_str(b"\x0a", str(scope.name)) if scope.name else b"") + (
                _str(b"\x12", str(scope.version)) if scope.version else b"")
            scope_spans.append(_field(b"\x12", _field(b"\x0a", encoded_scope) + b"".join(
                [_span(span, cache, ids) for span in items])))
        encoded_resource = _field(b"\x0a", _attributes(b"\x0a", resource, cache))
        out.append(_field(b"\x0a", encoded_resource + b"".join(scope_spans)))
    return b"".join(out)


__all__ = ["encode_protobuf"]
