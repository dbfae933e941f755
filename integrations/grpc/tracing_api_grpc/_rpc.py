"""What every gRPC span shares: its name and attributes, status mapping, message events, metadata.

Attribute names follow OpenTelemetry's semantic conventions for RPC, so every backend reads them:
``rpc.system``, ``rpc.service``, ``rpc.method``, ``rpc.grpc.status_code``, ``server.address``,
``server.port``, ``network.peer.address``, ``network.peer.port``, and ``rpc.message`` events.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any, AsyncIterator, Dict, Iterator, List, Mapping, Optional, Sequence, Set, Tuple, Union
from urllib.parse import unquote

import grpc

import tracing_api
from tracing_api import Context, Propagator, StatusCode
from tracing_api.context import current_context
from tracing_api.propagation import PAIRS

log = logging.getLogger("tracing_api_grpc")
tracer = tracing_api.get_tracer("tracing_api_grpc", "0.1.0")

MetadataValue = Union[str, bytes]
Pairs = List[Tuple[str, MetadataValue]]
AnySpan = Union[tracing_api.Span, tracing_api.NonRecordingSpan]

# Codes a server reports as its own failure; the others (NOT_FOUND, INVALID_ARGUMENT, ...) are
# the caller's, so a server span keeps an unset status for them (semantic conventions for gRPC).
_SERVER_FAULTS = frozenset({
    grpc.StatusCode.UNKNOWN, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DATA_LOSS,
})

_METHODS: Dict[Union[str, bytes], Tuple[str, Mapping[str, object]]] = {}
_METHODS_MAX = 1024  # method names come from the wire on a server: keep the cache bounded


def describe_method(full_method: Union[str, bytes]) -> Tuple[str, Mapping[str, object]]:
    """The span name (``helloworld.Greeter/SayHello``) and rpc attributes of ``/pkg.Svc/Method``."""
    found = _METHODS.get(full_method)
    if found is not None:
        return found
    text = full_method.decode("utf-8", "replace") if isinstance(full_method, bytes) else str(full_method)
    name = text[1:] if text.startswith("/") else text
    service, _, method = name.rpartition("/")
    attributes: Dict[str, object] = {"rpc.system": "grpc"}
    if service:
        attributes["rpc.service"] = service
    if method:
        attributes["rpc.method"] = method
    found = (name or "grpc", attributes)
    if len(_METHODS) < _METHODS_MAX:
        _METHODS[full_method] = found
    return found


_HOST_PORT = re.compile(r"\A(?:\[(?P<v6>[^\]]*)\]|(?P<host>[^:\[\]]*))(?::(?P<port>\d{1,5}))?\Z")


def split_address(address: str) -> Tuple[str, Optional[int]]:
    """``host:port``, ``[v6]:port`` or a bare host as (host, port or None); ('', None) if neither."""
    match = _HOST_PORT.match(address)
    if match is None:  # a bare IPv6 address such as ``::1``
        return (address, None) if address.count(":") >= 2 else ("", None)
    host = match.group("v6") if match.group("v6") is not None else match.group("host")
    port = match.group("port")
    return host or "", int(port) if port is not None and int(port) <= 65535 else None


def server_attributes(target: Optional[str]) -> Mapping[str, object]:
    """``server.address`` and ``server.port`` of a channel target such as ``dns:///host:50051``."""
    if not target:
        return {}
    text = str(target)
    if text.startswith(("unix:", "unix-abstract:")):
        path = text.split(":", 1)[1]
        return {"server.address": path[2:] if path.startswith("//") else path}
    if "://" in text:  # dns:///host:port, dns://resolver/host:port
        text = text.split("://", 1)[1].split("/", 1)[-1]
    elif text.startswith(("dns:", "ipv4:", "ipv6:")):
        text = text.split(":", 1)[1]
    host, port = split_address(text.split(",", 1)[0])
    attributes: Dict[str, object] = {}
    if host:
        attributes["server.address"] = host
    if port is not None:
        attributes["server.port"] = port
    return attributes


def peer_attributes(peer: Optional[str]) -> Dict[str, object]:
    """``network.peer.*`` from a gRPC peer string: ``ipv4:1.2.3.4:5``, ``ipv6:[::1]:5``, ``unix:p``.

    grpcio writes peers as URIs, percent-encoding the brackets of an IPv6 peer
    (``ipv6:%5B::1%5D:5``); both spellings are read.
    """
    if not peer:
        return {}
    kind, _, rest = peer.partition(":")
    rest = unquote(rest)
    if kind == "unix":
        return {"network.transport": "unix", "network.peer.address": rest}
    if kind not in ("ipv4", "ipv6"):
        return {}
    host, port = split_address(rest)
    attributes: Dict[str, object] = {"network.type": kind}
    if host:
        attributes["network.peer.address"] = host
    if port is not None:
        attributes["network.peer.port"] = port
    return attributes


def message_size(message: Any) -> Optional[int]:
    """The serialized size of a protobuf message or bytes, or None when it cannot be known."""
    if isinstance(message, (bytes, bytearray, memoryview)):
        return len(message)
    byte_size = getattr(message, "ByteSize", None)
    if byte_size is None:
        return None
    try:
        size = byte_size()
    except Exception:
        return None
    return size if type(size) is int else None


def message_event(span: AnySpan, sent: bool, index: int, message: Any) -> None:
    """Add an ``rpc.message`` event for the ``index``-th (from 1) message sent or received."""
    if not span.is_recording:  # no size to compute for a span that keeps nothing
        return
    try:
        attributes: Dict[str, object] = {
            "rpc.message.type": "SENT" if sent else "RECEIVED",
            "rpc.message.id": index,
        }
        size = message_size(message)
        if size is not None:
            attributes["rpc.message.uncompressed_size"] = size
        span.add_event("rpc.message", attributes)
    except Exception:
        log.debug("message event not recorded", exc_info=True)


class Counted:
    """``messages`` (an iterable), with an ``rpc.message`` event as each one passes.

    An iterator with ``next()`` beside ``__next__``, as grpc's request iterators have, so a
    handler that calls ``request_iterator.next()`` works the same traced.
    """

    __slots__ = ("_index", "_iterator", "_messages", "_sent", "_span")

    def __init__(self, span: AnySpan, messages: Any, sent: bool) -> None:
        self._span = span
        self._messages = messages
        self._iterator: Optional[Iterator[Any]] = None  # made on the first read, where grpc reads
        self._sent = sent
        self._index = 0

    def __iter__(self) -> Counted:
        return self

    def __next__(self) -> Any:
        iterator = self._iterator
        if iterator is None:
            iterator = self._iterator = iter(self._messages)
        message = next(iterator)
        self._index += 1
        message_event(self._span, self._sent, self._index, message)
        return message

    def next(self) -> Any:
        """The next message (grpc's request iterators offer this spelling too)."""
        return self.__next__()


async def counted_async(span: AnySpan, messages: Any, sent: bool) -> AsyncIterator[Any]:
    """``messages`` (an async iterable), with an ``rpc.message`` event as each one passes."""
    index = 0
    async for message in messages:
        index += 1
        message_event(span, sent, index, message)
        yield message


class Reader:
    """Who ends a streaming call's span: the termination callback, unless the caller is reading a
    response at that moment; then the reader does, once it has recorded that response (grpc runs
    the callback on its own thread, and it would otherwise end the span first).
    """

    __slots__ = ("_lock", "_reading", "_terminated")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reading = False
        self._terminated = False

    def leave_to_reader(self) -> bool:
        """Called on termination: whether a read in progress will end the span."""
        with self._lock:
            self._terminated = True
            return self._reading

    def start(self) -> None:
        """A read begins."""
        with self._lock:
            self._reading = True

    def stop(self) -> bool:
        """A read ended: whether the call terminated meanwhile (the reader ends the span)."""
        with self._lock:
            self._reading = False
            return self._terminated


def status_code_of(value: Any) -> Optional[grpc.StatusCode]:
    """``value`` as a ``grpc.StatusCode``, or None (handlers may set odd things)."""
    if isinstance(value, grpc.StatusCode):
        return value
    return None


def finish(
    span: AnySpan, code: Optional[grpc.StatusCode], details: Any = None, *, server: bool,
    error: Optional[BaseException] = None, end_time: Optional[int] = None,
) -> None:
    """Record the outcome of an RPC on ``span`` and end it. Never raises."""
    try:
        if code is not None:
            span.set_attribute("rpc.grpc.status_code", code.value[0])
        if error is not None:  # an exception that escaped is an error whatever the code
            span.record_exception(error, escaped=True)
            span.set_status(StatusCode.ERROR, f"{type(error).__name__}: {error}")
        elif code is not None and code is not grpc.StatusCode.OK and (
            not server or code in _SERVER_FAULTS
        ):
            if isinstance(details, bytes):
                details = details.decode("utf-8", "replace")
            span.set_status(StatusCode.ERROR, f"{code.name}: {details}" if details else code.name)
    except Exception:
        log.debug("rpc outcome not recorded", exc_info=True)
    try:
        span.end(end_time)
    except Exception:
        log.debug("span not ended", exc_info=True)


# What grpcio takes in a metadata name; any other character (upper case, ``~``, ``*``) fails
# the whole call with INTERNAL "Invalid metadata".
_METADATA_NAME = re.compile(r"[0-9a-z_.\-]+")


def _valid_pair(key: str, value: MetadataValue) -> bool:
    # grpcio fails the call for a name outside [0-9a-z_.-], a str value for a ``-bin`` key and
    # a non-printable text value; a propagator's mistake (or a header from a stranger that a
    # propagator copied) must not fail the caller's RPC, so such a pair is left out.
    if not isinstance(key, str) or _METADATA_NAME.fullmatch(key) is None:
        return False
    if key.endswith("-bin"):
        return isinstance(value, bytes)
    return isinstance(value, str) and value.isascii() and value.isprintable()


def outgoing_metadata(
    metadata: Optional[Sequence[Any]], span: AnySpan, propagator: Optional[Propagator]
) -> Optional[Pairs]:
    """``metadata`` plus the trace context of ``span`` (or the current one when ``span`` has no
    valid context); None when nothing was injected, so the caller keeps its metadata as it was.
    """
    context: Context = current_context()
    if span.context.is_valid:
        context = context._replace(span=span)
    injected: Pairs = []
    if propagator is None:
        tracing_api.inject(injected, context=context, setter=PAIRS)
    else:
        propagator.inject(context, injected, PAIRS)
    if not injected:
        return None
    # Ours replace what an outer caller wrote for the same names, and every other header of the
    # formats in use goes too: metadata forwarded from another call (its tracestate, baggage,
    # X-B3-ParentSpanId, uberctx-*) must not travel beside the new context.
    names, prefixes = _owned(propagator)
    names.update(key for key, _ in injected)
    result: Pairs = []
    for pair in metadata or ():
        key, value = pair
        if key in names or (prefixes and isinstance(key, str) and key.lower().startswith(prefixes)):
            continue
        result.append((key, value))
    result.extend((key, value) for key, value in injected if _valid_pair(key, value))
    return result


def _owned(propagator: Optional[Propagator]) -> Tuple[Set[str], Tuple[str, ...]]:
    """The header names and name prefixes of ``propagator`` (the configured ones when None):
    what a forwarded call loses before a new context is written. Never raises."""
    if propagator is None:
        return set(tracing_api.propagation.fields()), tracing_api.propagation.field_prefixes()
    try:
        names = {str(name).lower() for name in getattr(propagator, "fields", ())}
    except Exception:  # an application's propagator with a broken ``fields``
        names = set()
    try:
        found = getattr(propagator, "field_prefixes", ())
        found = (found,) if isinstance(found, str) else found
        prefixes = tuple(p.lower() for p in found if isinstance(p, str) and p)
    except Exception:
        prefixes = ()
    return names, prefixes


def incoming_context(metadata: Optional[Sequence[Any]]) -> Context:
    """The caller's context from invocation metadata (an empty one when it has none)."""
    return tracing_api.extract(metadata or (), getter=PAIRS)


def handler_context(parent: Context, span: AnySpan) -> Context:
    """What a handler runs in: the caller's baggage with the server span (or the caller's span
    when tracing is off, so the context still passes through).
    """
    return parent._replace(span=span) if span.context.is_valid else parent
