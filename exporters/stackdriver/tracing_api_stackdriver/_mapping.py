"""Our finished spans as Cloud Trace v2 spans, within Cloud Trace's limits.

Everything that goes over a limit is cut on a UTF-8 character boundary with the bytes cut in
``truncated_byte_count``, or left out and counted in the ``dropped_*`` fields, so the console
shows that something is missing. Messages are built with the raw protobuf classes beneath the
client's types: several times faster than the wrapper classes, and the same bytes on the wire.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, List, Mapping, NamedTuple, Optional, Tuple

from google.cloud.trace_v2.types import trace as _types

from tracing_api import SpanKind, StatusCode, __version__
from tracing_api.export import SpanData

from . import _stacktrace
from ._truncate import clean, truncate

SPAN = _types.Span.pb()
"""The raw protobuf class of a Cloud Trace span."""

_INT32_MAX = (1 << 31) - 1
_GRPC_UNKNOWN = 2

AGENT = f"tracing-api {__version__}"
"""The ``g.co/agent`` label every span carries: what wrote it."""


class Limits(NamedTuple):
    """The limits on one span of the Cloud Trace v2 API (``BatchWriteSpans``), which this
    exporter calls, as its protocol reference gives them. Bytes are UTF-8 bytes.

    These are not the Telemetry (OTLP) API's larger limits. ``CloudTraceExporter(limits=...)``
    takes other values for a backend that allows more.
    """

    name_bytes: int = 128
    attributes: int = 32
    key_bytes: int = 128
    value_bytes: int = 256
    time_events: int = 32
    annotation_attributes: int = 4
    links: int = 128
    link_attributes: int = 32
    description_bytes: int = 256
    function_bytes: int = 1024
    file_bytes: int = 256


LIMITS = Limits()

# Keys the Cloud Trace console shows under its own names. Current semantic conventions first,
# then the older ones; the first present wins a label.
_HTTP_LABELS = {
    "http.request.method": "/http/method",
    "http.method": "/http/method",
    "http.response.status_code": "/http/status_code",
    "http.status_code": "/http/status_code",
    "url.full": "/http/url",
    "http.url": "/http/url",
    "server.address": "/http/host",
    "http.host": "/http/host",
    "user_agent.original": "/http/user_agent",
    "http.user_agent": "/http/user_agent",
    "http.route": "/http/route",
    "http.request.body.size": "/http/request/size",
    "http.request_content_length": "/http/request/size",
    "http.response.body.size": "/http/response/size",
    "http.response_content_length": "/http/response/size",
}
# Keys that mean HTTP only on a span that is an HTTP request (a database client has a
# server.address too, and it is no /http/host).
_HTTP_ONLY_IF_HTTP = frozenset({"url.full", "server.address", "user_agent.original"})
_AGENT_LABEL = "g.co/agent"
_RESOURCE_KEYS = ("service.name",)
# Cloud Trace documents no limit for a status message; this keeps one span's size bounded.
_STATUS_MESSAGE_BYTES = 65_532


def label(key: str, is_http: bool) -> str:
    """The name Cloud Trace shows for attribute ``key``."""
    mapped = _HTTP_LABELS.get(key)
    if mapped is None or (key in _HTTP_ONLY_IF_HTTP and not is_http):
        return key
    return mapped


def _set_string(target: Any, value: str, limit: int) -> None:
    text, cut = truncate(value, limit)
    target.value = text
    if cut:
        target.truncated_byte_count = min(cut, _INT32_MAX)


def _text(value: object) -> str:
    if isinstance(value, float):
        return repr(value)
    try:
        return json.dumps(list(value), ensure_ascii=False)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return str(value)


def _set_value(target: Any, value: object, limits: Limits) -> None:
    if isinstance(value, bool):  # before int: a bool is an int to Python
        target.bool_value = value
    elif isinstance(value, int) and -(1 << 63) <= value < (1 << 63):
        target.int_value = value
    else:  # Cloud Trace has no floats or arrays: send their text
        _set_string(target.string_value, value if isinstance(value, str) else _text(value),
                    limits.value_bytes)


def _key(name: str) -> Tuple[str, int]:
    # A key may hold lone surrogates (bytes decoded with "surrogateescape"): protobuf refuses
    # those, so they become "?" as in values; the size is of what is sent.
    if name.isascii():
        return name, len(name)
    text, data = clean(name)
    return text, len(data)


def fill_attributes(target: Any, items: Iterable[Tuple[str, object]], dropped: int,
                    limits: Limits, most: int) -> None:
    """Put ``items`` (label, value) into the ``Attributes`` message ``target``, at most ``most``
    in all, within the limits; count the ones left out (too many, key too long, or a second key
    for the same label).
    """
    attribute_map = target.attribute_map
    count = len(attribute_map)
    for key, value in items:
        name, size = _key(key)
        if count >= most or size > limits.key_bytes or name in attribute_map:
            dropped += 1
            continue
        _set_value(attribute_map[name], value, limits)
        count += 1
    if dropped:
        target.dropped_attributes_count = min(dropped, _INT32_MAX)


def _labelled(attributes: Mapping[str, object], is_http: bool) -> List[Tuple[str, object]]:
    """The span's attributes under their Cloud Trace names, the console's own ``/http/*``
    labels first: with room for only 32, those are what the console shows a request by.
    """
    console: List[Tuple[str, object]] = []
    others: List[Tuple[str, object]] = []
    for key, value in attributes.items():
        name = label(key, is_http)
        (console if name is not key else others).append((name, value))
    return console + others if console else others


def _timestamp(target: Any, nanoseconds: int) -> None:
    target.seconds, target.nanos = divmod(nanoseconds, 1_000_000_000)


def _status(span: SpanData, target: Any) -> None:
    code = span.status.code
    if code == StatusCode.UNSET:
        return
    target.SetInParent()  # an OK status is an empty message, present
    if code == StatusCode.ERROR:
        # A gRPC span knows the exact code; anything else is UNKNOWN, as google.rpc says.
        grpc_code = span.attributes.get("rpc.grpc.status_code")
        ok = isinstance(grpc_code, int) and not isinstance(grpc_code, bool) \
            and 0 < grpc_code <= 16
        target.code = grpc_code if ok else _GRPC_UNKNOWN
        if span.status.description:
            target.message = truncate(span.status.description, _STATUS_MESSAGE_BYTES)[0]


def _stack_trace(span: SpanData, target: Any, limits: Limits) -> None:
    for event in reversed(span.events):
        if event.name != "exception":
            continue
        text = event.attributes.get("exception.stacktrace")
        found = _stacktrace.parse(text) if isinstance(text, str) else None
        if found is None:
            continue
        for frame in found.frames:
            added = target.stack_frames.frame.add()
            if frame.function:
                _set_string(added.function_name, frame.function, limits.function_bytes)
            _set_string(added.file_name, frame.file, limits.file_bytes)
            added.line_number = frame.line
        if found.dropped:
            target.stack_frames.dropped_frames_count = min(found.dropped, _INT32_MAX)
        target.stack_trace_hash_id = found.hash_id
        return  # the span's last exception is the one that ended it


def to_span(span: SpanData, project_id: str, limits: Limits = LIMITS) -> Any:
    """``span`` as a raw Cloud Trace ``Span`` message for project ``project_id``."""
    trace_hex = format(span.context.trace_id, "032x")
    span_hex = format(span.context.span_id, "016x")
    out = SPAN()
    out.name = f"projects/{project_id}/traces/{trace_hex}/spans/{span_hex}"
    out.span_id = span_hex
    parent = span.parent
    if parent is not None and parent.span_id:
        out.parent_span_id = format(parent.span_id, "016x")
        out.same_process_as_parent_span.SetInParent()
        out.same_process_as_parent_span.value = not parent.is_remote
    _set_string(out.display_name, span.name, limits.name_bytes)
    _timestamp(out.start_time, span.start_time)
    _timestamp(out.end_time, span.end_time)
    kind = int(span.kind)
    out.span_kind = kind if SpanKind.INTERNAL <= kind <= SpanKind.CONSUMER else 0

    attributes: Mapping[str, object] = span.attributes
    is_http = "http.request.method" in attributes or "http.method" in attributes
    # The agent label goes first, so the attribute limit never cuts it.
    out.attributes.attribute_map[_AGENT_LABEL].string_value.value = AGENT
    fill_attributes(out.attributes, _labelled(attributes, is_http), span.dropped_attributes,
                    limits, limits.attributes)
    extra = [(k, span.resource[k]) for k in _RESOURCE_KEYS
             if k in span.resource and k not in attributes]
    if extra and len(out.attributes.attribute_map) < limits.attributes:
        # Resource keys fill free room only; they are not the span's own and never count as
        # dropped from it.
        saved = out.attributes.dropped_attributes_count
        fill_attributes(out.attributes, extra, 0, limits, limits.attributes)
        out.attributes.dropped_attributes_count = saved

    events = span.events[: limits.time_events]
    for event in events:
        added = out.time_events.time_event.add()
        _timestamp(added.time, event.timestamp)
        _set_string(added.annotation.description, event.name, limits.description_bytes)
        fill_attributes(added.annotation.attributes, event.attributes.items(),
                        event.dropped_attributes, limits, limits.annotation_attributes)
    dropped_events = span.dropped_events + len(span.events) - len(events)
    if dropped_events:
        out.time_events.dropped_annotations_count = min(dropped_events, _INT32_MAX)

    links = span.links[: limits.links]
    for link in links:
        added = out.links.link.add()
        added.trace_id = format(link.context.trace_id, "032x")
        added.span_id = format(link.context.span_id, "016x")
        fill_attributes(added.attributes, link.attributes.items(), link.dropped_attributes,
                        limits, limits.link_attributes)
    dropped_links = span.dropped_links + len(span.links) - len(links)
    if dropped_links:
        out.links.dropped_links_count = min(dropped_links, _INT32_MAX)

    _status(span, out.status)
    _stack_trace(span, out.stack_trace, limits)
    return out


def span_id_of(message: Any) -> str:
    """The span id (16 hex digits) of a raw span message, for logs and tests."""
    return str(message.span_id)


def invalid_reason(span: SpanData) -> Optional[str]:
    """Why Cloud Trace would refuse ``span`` whatever else it held, or None."""
    if not span.context.is_valid:
        return "zero or out-of-range trace or span id"
    return None
