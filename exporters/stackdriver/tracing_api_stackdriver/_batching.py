"""Requests of a size Cloud Trace takes: spans shrunk to fit one request, requests split by span
count and by bytes, and repeated stack traces sent once per request.
"""

from __future__ import annotations

from typing import Any, Callable, List, Sequence

from google.cloud.trace_v2.types import tracing as _tracing

from ._truncate import truncate

REQUEST = _tracing.BatchWriteSpansRequest.pb()
"""The raw protobuf class of a ``BatchWriteSpansRequest``."""

WRAP: Callable[[Any], Any] = _tracing.BatchWriteSpansRequest.wrap
"""Turns a raw request into the client's request type, without copying."""

MAX_SPANS_PER_REQUEST = 1000
"""Spans in one request by default."""

MAX_REQUEST_BYTES = 4_000_000
"""Serialized bytes in one request by default: under gRPC's 4 MiB default message limit."""

STATUS_MESSAGE_KEPT = 4096
"""Bytes of a status message a span too big for a request keeps before it sheds anything else;
only when all else is gone is the message cut shorter."""

_INT32_MAX = (1 << 31) - 1
_AGENT_LABEL = "g.co/agent"


def _varint_length(value: int) -> int:
    length = 1
    while value >= 0x80:
        value >>= 7
        length += 1
    return length


def field_size(payload: int) -> int:
    """Bytes a length-delimited field with a one-byte tag and ``payload`` bytes takes."""
    return 1 + _varint_length(payload) + payload


def _count(target: Any, field: str, more: int) -> None:
    setattr(target, field, min(getattr(target, field) + more, _INT32_MAX))


def _shed_attributes(span: Any, excess: int) -> int:
    attribute_map = span.attributes.attribute_map
    # The biggest values make a span too big: they go first; the agent label stays.
    sizes = sorted(((v.ByteSize() + len(k.encode("utf-8")) + 8, k)
                    for k, v in attribute_map.items() if k != _AGENT_LABEL), reverse=True)
    removed = 0
    for size, key in sizes:
        if excess <= 0:
            break
        del attribute_map[key]
        excess -= size
        removed += 1
    if removed:
        _count(span.attributes, "dropped_attributes_count", removed)
    return excess


def _shed_repeated(items: Any, excess: int) -> int:
    removed = 0
    while excess > 0 and len(items):
        excess -= field_size(items[-1].ByteSize())
        del items[-1]  # the latest go first: the start of a story tells the most
        removed += 1
    return removed


def _shorten_message(status: Any, excess: int, floor: int) -> None:
    message = status.message
    size = len(message.encode("utf-8"))
    if size > floor:
        status.message = truncate(message, max(size - excess, floor))[0]


def fit(span: Any, budget: int) -> bool:
    """Shrink the raw span message ``span`` until it serializes to at most ``budget`` bytes:
    cut a status message over ``STATUS_MESSAGE_KEPT`` bytes down to that; leave out (and count)
    its biggest attributes, then its latest events, then its latest links; drop its stack trace;
    and last, cut its status message further. False when even that is not enough.
    """
    for step in range(6):
        excess = span.ByteSize() - budget
        if excess <= 0:
            return True
        if step == 0:
            # A long error message goes first, down to a readable length: cutting its tail
            # loses less than any attribute, event or link would.
            _shorten_message(span.status, excess, STATUS_MESSAGE_KEPT)
        elif step == 1:
            _shed_attributes(span, excess)
        elif step == 2:
            removed = _shed_repeated(span.time_events.time_event, excess)
            _count(span.time_events, "dropped_annotations_count", removed)
        elif step == 3:
            removed = _shed_repeated(span.links.link, excess)
            _count(span.links, "dropped_links_count", removed)
        elif step == 4:
            span.ClearField("stack_trace")
        else:
            _shorten_message(span.status, excess, 0)
    return bool(span.ByteSize() <= budget)


def split(spans: Sequence[Any], sizes: Sequence[int], name: str, max_spans: int,
          max_bytes: int) -> List[List[int]]:
    """Group the indexes of ``spans`` (of serialized ``sizes``) into requests of at most
    ``max_spans`` spans and ``max_bytes`` bytes each, in order.
    """
    base = field_size(len(name.encode("utf-8")))
    groups: List[List[int]] = []
    current: List[int] = []
    used = base
    for index, size in enumerate(sizes):
        cost = field_size(size)
        if current and (len(current) >= max_spans or used + cost > max_bytes):
            groups.append(current)
            current, used = [], base
        current.append(index)
        used += cost
    if current:
        groups.append(current)
    return groups


def request(name: str, spans: Sequence[Any]) -> Any:
    """A ``BatchWriteSpansRequest`` (client type) for project resource ``name``.

    A stack trace already sent in full in this request for the same trace is sent again as its
    hash id only, as Cloud Trace allows; a hash is never referred to across traces, whose spans
    the backend may store apart. The messages given are left unchanged.
    """
    out = REQUEST(name=name)
    seen = set()
    for span in spans:
        added = out.spans.add()
        added.CopyFrom(span)
        hash_id = span.stack_trace.stack_trace_hash_id
        if hash_id:
            # The span's resource name without its span id: projects/P/traces/T.
            key = (span.name.rpartition("/spans/")[0], hash_id)
            if key in seen:
                added.stack_trace.ClearField("stack_frames")
            seen.add(key)
    return WRAP(out)
