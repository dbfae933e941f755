"""Finished spans as Zipkin v2 JSON (the ``ListOfSpans`` of Zipkin's API).

Choices where Zipkin leaves room, so a trace looks the same whichever tracer reported it:

- Ids are lower-case hex. A trace id whose high 64 bits are zero is written with 16 digits, as
  a 64-bit B3 system sends it and as Zipkin itself stores it (it drops the zero half), so spans
  from 64-bit and 128-bit tracers of one trace join.
- Tags are strings: booleans ``true``/``false``, numbers in their shortest form (``NaN``,
  ``Infinity``), sequences as a JSON array. An ERROR status adds the ``error`` tag (the
  description, empty if none) and ``otel.status_code``; the tracer's scope and dropped counts go
  in ``otel.scope.*`` and ``otel.dropped_*_count`` tags. Links have no Zipkin form: they are
  counted in ``otel.dropped_links_count``.
- An event becomes an annotation whose value is its name, followed by its attributes as a JSON
  object when it has any.
- ``shared`` marks a SERVER span that joined its caller's span (the same span id as the remote
  parent, as B3 allows); a SERVER span with its own id is an ordinary child of the client span.
- ``debug`` is set only for a debug trace (``SpanContext.debug``), never merely because a span
  is sampled.
- ``remoteEndpoint`` comes from the peer's semantic attributes (``peer.service``, the
  ``server.*`` attributes for clients and producers, ``client.*`` for servers, then the
  ``network.peer.*`` and older ``net.*`` names); an address that is an IP literal fills ``ipv4``
  or ``ipv6``, a host name the ``serviceName`` when ``peer.service`` is absent.
"""

from __future__ import annotations

import ipaddress
import json
import json.encoder
import math
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

from tracing_api import SpanKind, StatusCode
from tracing_api.export import InstrumentationScope, SpanData

_KIND = {SpanKind.SERVER: "SERVER", SpanKind.CLIENT: "CLIENT", SpanKind.PRODUCER: "PRODUCER",
         SpanKind.CONSUMER: "CONSUMER"}
_LOW64 = (1 << 64) - 1
_compact = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_quote: Callable[[str], str] = json.encoder.encode_basestring  # JSON string literal, in C

# Where the other side of a span is named, most specific first.
_PEER_ADDRESS = {
    SpanKind.SERVER: ("client.address", "network.peer.address", "net.sock.peer.addr",
                      "net.peer.ip"),
}
_DEFAULT_ADDRESS = ("server.address", "network.peer.address", "net.peer.name",
                    "net.sock.peer.addr", "net.peer.ip", "peer.hostname")
_PEER_PORT = {SpanKind.SERVER: ("client.port", "network.peer.port", "net.sock.peer.port")}
_DEFAULT_PORT = ("server.port", "network.peer.port", "net.peer.port", "net.sock.peer.port")
_PEER_KEYS = frozenset(("peer.service", *_DEFAULT_ADDRESS, *_PEER_ADDRESS[SpanKind.SERVER]))
# Tags the encoder adds itself; an attribute of the same name takes the slow, merging path.
_RESERVED = frozenset(("error", "otel.status_code", "otel.scope.name", "otel.scope.version",
                       "otel.dropped_attributes_count", "otel.dropped_events_count",
                       "otel.dropped_links_count"))


_INF = float("inf")


def _float(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


def _json_value(value: Any) -> Any:
    """A value JSON can hold exactly: non-finite floats become their names."""
    if isinstance(value, float) and not math.isfinite(value):
        return _float(value)
    if isinstance(value, (str, bool, int, float)):
        return value
    try:
        return [_json_value(item) for item in value]
    except TypeError:
        return str(value)


def tag_value(value: Any) -> str:
    """An attribute value as a Zipkin tag string."""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return _float(float(value))
    return _compact(_json_value(value))


_TAG_JSON: Dict[type, Callable[[Any], str]] = {
    bool: lambda v: '"true"' if v else '"false"',
    int: lambda v: f'"{v}"',
    float: lambda v: f'"{_float(v)}"',
}


def _tag_json(value: Any) -> str:
    """A tag value as a JSON string literal."""
    convert = _TAG_JSON.get(type(value))
    return convert(value) if convert is not None else _quote(tag_value(value))


def _trace_id(trace_id: int) -> str:
    if trace_id >> 64 == 0:
        return format(trace_id & _LOW64, "016x")
    return format(trace_id, "032x")


def _ip(text: str) -> Optional[Tuple[str, str]]:
    try:
        address = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped
        if mapped is not None:
            return "ipv4", str(mapped)
        # Without its zone ("fe80::1%eth0", as link-local peers come): the schema's ipv6
        # format has none, and it means nothing outside the host that saw it.
        return "ipv6", str(address).partition("%")[0]
    return "ipv4", str(address)


def _first(attributes: Mapping[str, Any], keys: Sequence[str]) -> Any:
    for key in keys:
        value = attributes.get(key)
        if value is not None and value != "":
            return value
    return None


def remote_endpoint(span: SpanData) -> Optional[Dict[str, Any]]:
    """The ``remoteEndpoint`` for ``span`` from its peer attributes, or None if they name none."""
    attributes = span.attributes
    if _PEER_KEYS.isdisjoint(attributes):
        return None
    endpoint: Dict[str, Any] = {}
    service = attributes.get("peer.service")
    if isinstance(service, str) and service:
        endpoint["serviceName"] = service
    # The first IP literal fills ipv4/ipv6; the first host name, the service name if unknown.
    for key in _PEER_ADDRESS.get(span.kind, _DEFAULT_ADDRESS):
        address = attributes.get(key)
        if not isinstance(address, str) or not address:
            continue
        ip = _ip(address)
        if ip is None:
            endpoint.setdefault("serviceName", address)
        elif "ipv4" not in endpoint and "ipv6" not in endpoint:
            endpoint[ip[0]] = ip[1]
    port = _first(attributes, _PEER_PORT.get(span.kind, _DEFAULT_PORT))
    if isinstance(port, str) and port.isascii() and port.isdigit():
        port = int(port)
    if type(port) is int and 0 < port < 65536:
        endpoint["port"] = port
    return endpoint or None


def _value_json(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return _quote(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    return _compact(_json_value(value))


def _event_value(name: str, attributes: Mapping[str, Any]) -> str:
    if not attributes:
        return name
    text = "{" + ",".join(
        _quote(str(k)) + ":" + _value_json(v) for k, v in attributes.items()) + "}"
    return f"{name} {text}" if name else text


def _extra_tags(span: SpanData) -> Dict[str, str]:
    tags: Dict[str, str] = {}
    status = span.status.code
    if status is StatusCode.ERROR:
        tags["otel.status_code"] = "ERROR"
        tags["error"] = span.status.description or ""
    elif status is StatusCode.OK:
        tags["otel.status_code"] = "OK"
    if span.dropped_attributes:
        tags["otel.dropped_attributes_count"] = str(span.dropped_attributes)
    if span.dropped_events:
        tags["otel.dropped_events_count"] = str(span.dropped_events)
    links = span.dropped_links + len(span.links)
    if links:
        tags["otel.dropped_links_count"] = str(links)
    return tags


def _scope_tags(scope: InstrumentationScope) -> Dict[str, str]:
    tags: Dict[str, str] = {}
    if scope.name:
        tags["otel.scope.name"] = scope.name
    if scope.version:
        tags["otel.scope.version"] = scope.version
    return tags


def _tags_json(tags: Mapping[str, str]) -> str:
    return ",".join(_quote(str(k)) + ":" + _quote(v) for k, v in tags.items())


def _span_json(span: SpanData, local: str, scope_tags: Dict[str, str], scope_json: str,
               trace_ids: Dict[int, str]) -> str:
    # Written as text piece by piece: no intermediate dicts, C-level string escaping. The
    # property tests check every payload against the strict schema.
    context = span.context
    trace = trace_ids.get(context.trace_id)
    if trace is None:
        trace = trace_ids[context.trace_id] = _trace_id(context.trace_id)
    parent = span.parent
    kind = _KIND.get(span.kind)
    start = span.start_time
    if type(start) is not int or type(span.end_time) is not int or start < 0:
        # A hand-made record: Zipkin's int64 microseconds cannot say it. The exporter leaves
        # the span out and sends the rest (see delivery.HttpExporter).
        raise ValueError(f"span times {start!r}, {span.end_time!r} are not ns since the epoch")
    duration = max(1, -(-(span.end_time - start) // 1000))
    parts = [
        f'{{"traceId":"{trace}","id":"{context.span_id:016x}"',
        f',"parentId":"{parent.span_id:016x}"' if parent is not None and parent.span_id else "",
        f',"name":{_quote(span.name)}' if span.name else "",
        f',"kind":"{kind}"' if kind is not None else "",
        f',"timestamp":{start // 1000},"duration":{duration}',
    ]
    if context.debug:
        parts.append(',"debug":true')
    if (kind == "SERVER" and parent is not None and parent.is_remote
            and parent.span_id == context.span_id):
        parts.append(',"shared":true')
    parts += (',"localEndpoint":', local)
    if kind is not None:
        remote = remote_endpoint(span)
        if remote is not None:
            parts += (',"remoteEndpoint":', _compact(remote))
    if span.events:
        seen = set()
        annotations = []
        for event in span.events:
            if type(event.timestamp) is not int:
                raise ValueError(f"event time {event.timestamp!r} is not ns since the epoch")
            annotation = (event.timestamp // 1000, _event_value(event.name, event.attributes))
            if annotation not in seen:  # Zipkin's schema wants them unique
                seen.add(annotation)
                annotations.append(
                    f'{{"timestamp":{annotation[0]},"value":{_quote(annotation[1])}}}')
        parts += (',"annotations":[', ",".join(annotations), "]")
    attributes = span.attributes
    extra = _extra_tags(span) if (span.status.code or span.dropped_attributes or span.links
                                  or span.dropped_events or span.dropped_links) else None
    if not _RESERVED.isdisjoint(attributes):
        merged = {k: tag_value(v) for k, v in attributes.items()}  # ours win on a clash
        merged.update(scope_tags)
        merged.update(extra or {})
        parts += (',"tags":{', _tags_json(merged), "}}")
    else:
        tags = [_quote(k) + ":" + (_quote(v) if type(v) is str else _tag_json(v))
                for k, v in attributes.items()]
        if scope_json:
            tags.append(scope_json)
        if extra:
            tags.append(_tags_json(extra))
        parts += (',"tags":{', ",".join(tags), "}}") if tags else ("}",)
    return "".join(parts)


def _local_endpoint(resource: Mapping[str, object]) -> Dict[str, Any]:
    service = resource.get("service.name")
    return {"serviceName": service if isinstance(service, str) and service
            else "unknown_service:python"}


def encode_spans(spans: Sequence[SpanData], service_name: Optional[str] = None) -> bytes:
    """``spans`` as a Zipkin v2 JSON body (UTF-8). Spans with an invalid context are left out.

    ``service_name`` overrides the resource's ``service.name`` in ``localEndpoint``.
    """
    fixed = _compact({"serviceName": service_name}) if service_name else None
    # Resources and scopes are shared between spans: encode each once per batch.
    endpoints: Dict[int, str] = {}
    scopes: Dict[int, Tuple[Dict[str, str], str]] = {}  # spans hold them alive: ids stay unique
    trace_ids: Dict[int, str] = {}
    out = []
    for span in spans:
        if not span.context.is_valid:
            continue
        local = fixed
        if local is None:
            local = endpoints.get(id(span.resource))
            if local is None:
                local = endpoints[id(span.resource)] = _compact(_local_endpoint(span.resource))
        scope = scopes.get(id(span.scope))
        if scope is None:
            tags = _scope_tags(span.scope)
            scope = scopes[id(span.scope)] = (tags, _tags_json(tags))
        out.append(_span_json(span, local, scope[0], scope[1], trace_ids))
    return ("[" + ",".join(out) + "]").encode("utf-8", "replace")
