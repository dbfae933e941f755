"""The propagator contract, the carriers it reads and writes, and ``inject``/``extract``.

A propagator writes the current trace context into a carrier (HTTP headers, gRPC metadata) and
reads it back on the other side. It touches carriers only through a ``Getter`` and a ``Setter``,
so one propagator serves every kind of carrier. Header names are given in lower case.

Incoming headers are data from strangers: ``extract`` never raises, and a value it cannot parse
yields no context.
"""

from __future__ import annotations

from typing import (
    Any,
    Dict,
    Iterable,
    List,
    Optional,
    Protocol,
    Sequence,
    Tuple,
    Union,
    runtime_checkable,
)

from . import _log
from ._types import EMPTY_TRACE_STATE, SpanContext, TraceState
from .context import EMPTY_CONTEXT, Context, current_context

Value = Union[str, bytes]
_tuple_new = tuple.__new__
_TRACE_ID_MAX = (1 << 128) - 1
_SPAN_ID_MAX = (1 << 64) - 1


def remote_span_context(
    trace_id: int, span_id: int, trace_flags: int = 0, trace_state: TraceState = EMPTY_TRACE_STATE,
    debug: bool = False, deferred: bool = False,
) -> SpanContext:
    """The ``SpanContext`` of a remote parent, as a propagator's ``extract`` makes it.

    The same as ``SpanContext(..., is_remote=True)`` at half the cost (extract runs on every
    request). The arguments are not checked: pass ids already known to be valid.
    """
    return _tuple_new(
        SpanContext, (trace_id, span_id, trace_flags, trace_state, True, debug, deferred)
    )


@runtime_checkable
class Getter(Protocol):
    """Reads values out of one kind of carrier."""

    def get_all(self, carrier: Any, key: str) -> List[Value]:
        """Every value of ``key`` (lower case) in order; empty when absent."""

    def keys(self, carrier: Any) -> Iterable[str]:
        """The keys present, in lower case (for prefixes such as ``uberctx-``)."""


@runtime_checkable
class Setter(Protocol):
    """Writes values into one kind of carrier."""

    def set(self, carrier: Any, key: str, value: Value) -> None:
        """Set ``key`` (lower case) to ``value``, replacing what a previous inject wrote."""


@runtime_checkable
class Propagator(Protocol):
    """Reads and writes one trace-context format.

    ``fields``: the keys of its format in lower case, those it writes and those it only reads
    (B3's ``x-b3-parentspanid``): what a request being forwarded must lose before a new context
    is written into it. A format that also owns a family of keys (Jaeger's ``uberctx-*``) names
    their prefixes in an optional ``field_prefixes`` attribute, a tuple of lower-case strings;
    a propagator without one owns no prefixes.
    """

    fields: Tuple[str, ...]

    def inject(self, context: Context, carrier: Any, setter: Setter) -> None:
        """Write ``context`` into ``carrier``. Writes nothing for an invalid span context, except
        a sampling decision alone where the format can say it (B3's ``b3: 0``).
        """

    def extract(self, carrier: Any, context: Context, getter: Getter) -> Context:
        """``context`` updated with what ``carrier`` holds; ``context`` itself when nothing valid."""


def text(value: Value) -> str:
    """A header value as text (bytes are read as Latin-1, as HTTP does)."""
    return value if isinstance(value, str) else value.decode("latin-1")


def first_value(getter: Getter, carrier: Any, key: str) -> Optional[Value]:
    """The first value of ``key``, or None. A text value of a plain ``dict`` read through
    ``DICT`` is taken directly (no call, no list); anything else goes through ``getter``."""
    if getter is DICT and type(carrier) is dict:
        value = carrier.get(key)
        if type(value) is str:
            return value
    values = getter.get_all(carrier, key)
    return values[0] if values else None


def first_text(getter: Getter, carrier: Any, key: str) -> Optional[str]:
    """The first value of ``key`` as text, or None."""
    value = first_value(getter, carrier, key)
    return None if value is None else text(value)


# ---------------------------------------------------------------------------------------- carriers


def lower_case_names(carrier: Dict[Any, Any]) -> bool:
    """Whether every name in the ``dict`` ``carrier`` is text already in lower case.

    Then ``carrier.get(key)`` finds exactly what ``DICT.get_all`` finds for a lower-case ``key``,
    and a name that is not there as given is not there in any case: propagators read and write
    such a dict directly, and take the general path (``DICT``, which scans) only otherwise.
    """
    try:
        # One join and one lower() in C: cheaper than a scan of the names in Python for one
        # absent header, let alone several. [*d]: join takes a list faster than a dict. No
        # separator is needed: lower() leaves the whole as it is exactly when it leaves each
        # name as it is.
        names = "".join([*carrier])
    except TypeError:  # a name that is not text
        return False
    return names == names.lower()


class DictCarrier:
    """A ``dict`` of headers (values may be lists). Reads ignore case; writes use lower case."""

    __slots__ = ()

    def get_all(self, carrier: Any, key: str) -> List[Value]:
        """Every value of ``key``, matching names in any case."""
        value = carrier.get(key)
        if value is None:
            size = len(key)
            for name in carrier:  # the length test spares most lower() calls
                if type(name) is str and len(name) == size and name.lower() == key:
                    value = carrier[name]
                    break
            else:
                return []
        if isinstance(value, (str, bytes)):
            return [value]
        if isinstance(value, (list, tuple)):
            return [v for v in value if isinstance(v, (str, bytes))]
        return []

    def keys(self, carrier: Any) -> Iterable[str]:
        """The names, in lower case."""
        return [name.lower() for name in carrier if isinstance(name, str)]

    def set(self, carrier: Any, key: str, value: Value) -> None:
        """``carrier[key] = value``, replacing the same name in another case."""
        if carrier and key not in carrier:  # empty, or the exact name there: nothing to search
            size = len(key)
            stale = None
            for name in carrier:  # the length test spares most lower() calls
                if type(name) is str and len(name) == size and name.lower() == key:
                    stale = name
            if stale is not None:
                del carrier[stale]
        carrier[key] = value


class HeadersCarrier:
    """Case-insensitive header objects: ``email.message.Message``/``http.client.HTTPMessage``,
    ``requests``' ``CaseInsensitiveDict``, ``httpx.Headers``, Starlette's ``Headers``.
    """

    __slots__ = ()

    def get_all(self, carrier: Any, key: str) -> List[Value]:
        """Every value of ``key``, through the object's own multi-value accessor."""
        for accessor in ("get_all", "get_list", "getlist"):
            method = getattr(carrier, accessor, None)
            if method is not None:
                values = method(key)
                return [v for v in values or () if isinstance(v, (str, bytes))]
        value = carrier.get(key)
        return [value] if isinstance(value, (str, bytes)) else []

    def keys(self, carrier: Any) -> Iterable[str]:
        """The names, in lower case: from ``carrier.keys()`` when it has one, since some objects
        (``grpc.aio.Metadata``) iterate ``(name, value)`` pairs; else the names it iterates."""
        keys = getattr(carrier, "keys", None)
        found = []
        for name in list(carrier) if keys is None else list(keys()):
            if type(name) is tuple and name:  # a (name, value) pair
                name = name[0]
            if isinstance(name, bytes):
                name = name.decode("latin-1")
            if isinstance(name, str):
                found.append(name.lower())
        return found

    def set(self, carrier: Any, key: str, value: Value) -> None:
        """Replace ``key``'s value."""
        if hasattr(carrier, "replace_header") and hasattr(carrier, "get_all"):  # email.message
            del carrier[key]
            carrier[key] = text(value)
        else:
            carrier[key] = value


class EnvironCarrier:
    """A WSGI ``environ``: ``traceparent`` is read from ``HTTP_TRACEPARENT``. Read only."""

    __slots__ = ()

    def get_all(self, carrier: Any, key: str) -> List[Value]:
        """The value of ``key``; WSGI servers join repeated headers with commas."""
        value = carrier.get("HTTP_" + key.upper().replace("-", "_"))
        return [value] if isinstance(value, (str, bytes)) else []

    def keys(self, carrier: Any) -> Iterable[str]:
        """The HTTP header names, in lower case."""
        return [
            name[5:].lower().replace("_", "-")
            for name in carrier
            if isinstance(name, str) and name.startswith("HTTP_")
        ]


class PairsCarrier:
    """A list of ``(name, value)`` pairs: gRPC metadata (``str`` names, ``bytes`` values for
    ``-bin`` keys) or ASGI headers (``bytes`` names and values). Writes append, replacing the
    same name.
    """

    __slots__ = ()

    def get_all(self, carrier: Any, key: str) -> List[Value]:
        """Every value of ``key`` in order; names compared without case."""
        found: List[Value] = []
        key_bytes = None
        for pair in carrier:
            try:
                name, value = pair
            except (TypeError, ValueError):
                continue
            if isinstance(name, bytes):
                if key_bytes is None:
                    key_bytes = key.encode("latin-1")
                if name.lower() != key_bytes:
                    continue
            elif not isinstance(name, str) or name.lower() != key:
                continue
            if isinstance(value, (str, bytes)):
                found.append(value)
        return found

    def keys(self, carrier: Any) -> Iterable[str]:
        """The names, in lower case."""
        names = []
        for pair in carrier:
            try:
                name = pair[0]
            except (TypeError, IndexError, KeyError):
                continue
            if isinstance(name, bytes):
                names.append(name.decode("latin-1").lower())
            elif isinstance(name, str):
                names.append(name.lower())
        return names

    def set(self, carrier: Any, key: str, value: Value) -> None:
        """Append ``(key, value)``, removing earlier pairs of that name; bytes names for ASGI."""
        as_bytes = bool(carrier) and isinstance(carrier[0][0], bytes)
        name: Value = key.encode("latin-1") if as_bytes else key
        carrier[:] = [
            p for p in carrier if not (isinstance(p[0], (str, bytes)) and p[0].lower() == name)
        ]
        if as_bytes and isinstance(value, str):
            value = value.encode("latin-1")
        carrier.append((name, value))


DICT = DictCarrier()
HEADERS = HeadersCarrier()
ENVIRON = EnvironCarrier()
PAIRS = PairsCarrier()


def getter_for(carrier: Any) -> Getter:
    """The getter that suits ``carrier``: a WSGI environ, a dict, header object, or pairs."""
    if type(carrier) is dict:
        if "wsgi.version" in carrier or "REQUEST_METHOD" in carrier:
            return ENVIRON
        return DICT
    if isinstance(carrier, (list, tuple)):
        return PAIRS
    if any(hasattr(carrier, a) for a in ("get_all", "get_list", "getlist")):
        return HEADERS
    return DICT


def setter_for(carrier: Any) -> Setter:
    """The setter that suits ``carrier``."""
    if type(carrier) is dict:
        return DICT
    if isinstance(carrier, list):
        return PAIRS
    return HEADERS


# ---------------------------------------------------------------------------------- composition


def _prefixes(propagator: Any) -> Tuple[str, ...]:
    """``propagator.field_prefixes``, or () when it has none. Never raises: an application's
    propagator may hold anything there, and a prefix that is empty (it would match every header)
    or not text is left out."""
    try:
        prefixes = getattr(propagator, "field_prefixes", ())
        if isinstance(prefixes, str):
            prefixes = (prefixes,)
        return tuple(p.lower() for p in prefixes if isinstance(p, str) and p)
    except Exception:
        return ()


def _joined(earlier: SpanContext, later: SpanContext) -> Optional[SpanContext]:
    """The span context of one span that two formats found: ``later``'s, with what only
    ``earlier`` says (its trace state, when ``later`` has none, and its random-trace-id flag);
    None when the two are different spans or ``earlier`` adds nothing.

    The sampling decision (sampled, debug, deferred) stays ``later``'s as a whole: parts of two
    decisions would not make one.
    """
    if earlier.trace_id != later.trace_id or earlier.span_id != later.span_id:
        return None
    state = later.trace_state
    if not state and earlier.trace_state:  # B3 or Jaeger after W3C: W3C's tracestate is kept
        state = earlier.trace_state
    flags = later.trace_flags | (earlier.trace_flags & 0x02)
    if state is later.trace_state and flags == later.trace_flags:
        return None
    return remote_span_context(
        later.trace_id, later.span_id, flags, state, later.debug, later.deferred
    )


class CompositePropagator:
    """Several formats at once: extract applies each in order, inject writes them all."""

    def __init__(self, propagators: Sequence[Propagator]) -> None:
        self.propagators = tuple(propagators)
        self.fields: Tuple[str, ...] = tuple(
            dict.fromkeys(f for p in self.propagators for f in p.fields)
        )
        self.field_prefixes: Tuple[str, ...] = tuple(
            dict.fromkeys(f for p in self.propagators for f in _prefixes(p))
        )

    def inject(self, context: Context, carrier: Any, setter: Setter) -> None:
        """Write ``context`` in every format; a failing format is skipped."""
        for propagator in self.propagators:
            try:
                propagator.inject(context, carrier, setter)
            except Exception:
                _log.debug("propagator %r failed to inject", propagator, exc_info=True)

    def extract(self, carrier: Any, context: Context, getter: Getter) -> Context:
        """Apply every format in order; baggage is merged. A later format's span context
        replaces an earlier one's only when it is valid or the earlier one is not: a
        sampling-only header (``b3: 1``, ``jaeger-debug-id``) never discards a parent found
        before it, which would start a new trace. When it is the same span (trace and span id)
        the earlier one's ``tracestate`` and random-trace-id flag are kept (``_joined``): a
        caller sending W3C and B3 for one span does not lose what only W3C carries.
        """
        found = None  # the span of the last valid context a format found
        for propagator in self.propagators:
            # One guard around all that a format's answer goes through: an application's
            # propagator returning something else than a Context loses its own answer only.
            try:
                extracted = propagator.extract(carrier, context, getter)
                if extracted is context:  # the usual answer of a format whose headers are absent
                    continue
                if not isinstance(extracted, Context):
                    raise TypeError(f"extract returned {type(extracted).__name__}, not a Context")
                span = extracted.span
                if span is not context.span:  # this format found a span context
                    sc = span.context
                    # SpanContext.is_valid, inlined: the property costs a tenth of an extract.
                    if 0 < sc.trace_id <= _TRACE_ID_MAX and 0 < sc.span_id <= _SPAN_ID_MAX:
                        if found is not None:  # a second format found a span: the rare case
                            joined = _joined(found.context, sc)
                            if joined is not None:
                                extracted = extracted.with_span_context(joined)
                                span = extracted.span
                        found = span
                    elif found is not None:  # keep the parent, take the rest (baggage)
                        extracted = extracted._replace(span=found)
            except Exception:
                _log.debug("propagator %r failed to extract", propagator, exc_info=True)
                continue
            context = extracted
        return context

    def __repr__(self) -> str:
        return f"CompositePropagator({list(self.propagators)!r})"


def _configured() -> Propagator:
    from . import _config

    return _config.propagator()


def inject(
    carrier: Any, context: Optional[Context] = None, setter: Optional[Setter] = None
) -> None:
    """Write ``context`` (by default the current one) into ``carrier`` with the configured
    propagators (W3C ``traceparent``, ``tracestate`` and ``baggage`` unless configured otherwise).
    """
    try:
        _configured().inject(
            current_context() if context is None else context,
            carrier,
            setter_for(carrier) if setter is None else setter,
        )
    except Exception:
        _log.debug("inject failed", exc_info=True)


def fields() -> Tuple[str, ...]:
    """The header names of the configured formats (lower case; those they write and those they
    only read): what a request being re-sent or forwarded should lose before a new context is
    injected into it. Names by prefix (Jaeger's ``uberctx-*``) are in ``field_prefixes()``."""
    try:
        return tuple(_configured().fields)
    except Exception:  # a propagator of the application's with a broken ``fields``
        return ()


def field_prefixes() -> Tuple[str, ...]:
    """The header name prefixes the configured formats own (lower case; Jaeger's ``uberctx-``):
    a request being re-sent or forwarded should lose every header whose name starts with one,
    beside those named by ``fields()``. Empty when no configured format has ``field_prefixes``.
    """
    try:
        return _prefixes(_configured())
    except Exception:
        return ()


def extract(carrier: Any, getter: Optional[Getter] = None, context: Optional[Context] = None) -> Context:
    """The context ``carrier`` holds (a remote span context and baggage), read with the
    configured propagators; an empty context when it holds nothing valid. Never raises.
    """
    base = EMPTY_CONTEXT if context is None else context
    try:
        return _configured().extract(carrier, base, getter_for(carrier) if getter is None else getter)
    except Exception:
        _log.debug("extract failed", exc_info=True)
        return base


__all__ = [
    "DICT",
    "ENVIRON",
    "HEADERS",
    "PAIRS",
    "CompositePropagator",
    "DictCarrier",
    "EnvironCarrier",
    "Getter",
    "HeadersCarrier",
    "PairsCarrier",
    "Propagator",
    "Setter",
    "extract",
    "field_prefixes",
    "fields",
    "first_text",
    "first_value",
    "getter_for",
    "inject",
    "lower_case_names",
    "remote_span_context",
    "setter_for",
    "text",
]
