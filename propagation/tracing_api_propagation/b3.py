"""B3 (Zipkin): the single ``b3`` header and the multi-header ``X-B3-*`` form.

Grammar (openzipkin/b3-propagation)::

    b3: {TraceId}-{SpanId}-{SamplingState}-{ParentSpanId}    last two optional
    b3: {SamplingState}                                      sampling decision only
    X-B3-TraceId, X-B3-SpanId, X-B3-ParentSpanId, X-B3-Sampled, X-B3-Flags

Ids are lower-case hex: trace ids 16 or 32 characters, span ids 16. Anything else (upper case,
other widths, zero ids, an unknown sampling state, a trailing ``-``) is malformed and yields no
context. Both propagators read both forms, ``b3`` first (it takes precedence when both are sent
and it parses); they differ in what they write.

How B3's notions map onto a ``SpanContext`` (the same choices as Jaeger's and Cloud Trace's):

- 64-bit trace ids are the same number as a 128-bit id whose high half is zero. A trace id whose
  high half is zero is written back as 16 characters, any other as 32, so a 64-bit trace stays
  64-bit and every B3 reader (16 is always allowed) understands it.
- Sampling state ``1`` sets the sampled flag; ``0`` clears it; absent means "defer": the ids are
  kept, ``deferred`` is set, and the local sampler decides. ``d`` (or ``X-B3-Flags: 1``) is
  debug: ``debug`` is set and so is the sampled flag, since debug implies accept. Each is written
  back as it was read (``d`` without ``X-B3-Sampled``, nothing for deferred).
- A sampling-only header (``b3: 0``, ``b3: 1``, ``b3: d``, or ``X-B3-Sampled``/``X-B3-Flags``
  alone) yields a remote span context with zero ids that carries only the decision; the
  parent-based sampler honours it and a new trace id is made. Injecting such a context (a proxy
  forwarding what it got) writes the sampling-only form again.
- ``ParentSpanId`` is validated when present but not kept: a span context knows its own span,
  not its parent's, so it is never written.
"""

from __future__ import annotations

import re
from typing import Any, Optional, Tuple

from tracing_api import NonRecordingSpan, SpanContext, TraceState
from tracing_api.context import Context
from tracing_api.propagation import Getter, Setter, text

_NO_STATE = TraceState()
_OWS = " \t"
_TRACE_ID_MAX = (1 << 128) - 1
_SPAN_ID_MAX = (1 << 64) - 1
# tuple.__new__ skips NamedTuple's argument handling, which costs as much as the parsing: these
# run once per request. Field order: see SpanContext and Context.
_tuple_new = tuple.__new__
# Sampling state -> (trace_flags, debug, deferred); "" is no decision.
_STATES = {"1": (0x01, False, False), "0": (0x00, False, False), "d": (0x01, True, False),
           "": (0x00, False, True)}

# {trace}-{span}[-{state}[-{parent}]] or {state} alone, with optional surrounding whitespace.
_SINGLE = re.compile(
    r"[ \t]*(?:([0-9a-f]{32}|[0-9a-f]{16})-([0-9a-f]{16})(?:-([01d])(?:-([0-9a-f]{16}))?)?"
    r"|([01d]))[ \t]*"
)
_MAX_READ = 256  # far longer than any valid value, whitespace included
_TRACE_ID = re.compile(r"[0-9a-f]{32}|[0-9a-f]{16}")
_SPAN_ID = re.compile(r"[0-9a-f]{16}")
_ZERO_ID = "0" * 16
# X-B3-Sampled: "1"/"0", and the legacy "true"/"false" some old clients still send.
_SAMPLED = {"1": True, "0": False, "true": True, "false": False}

SINGLE = "b3"
TRACE_ID = "x-b3-traceid"
SPAN_ID = "x-b3-spanid"
PARENT_SPAN_ID = "x-b3-parentspanid"
SAMPLED = "x-b3-sampled"
FLAGS = "x-b3-flags"


def _remote(trace_id: int, span_id: int, state: str) -> SpanContext:
    """A remote span context for sampling state ``state`` ("" when deferred)."""
    flags, debug, deferred = _STATES[state]
    return _tuple_new(SpanContext, (trace_id, span_id, flags, _NO_STATE, True, debug, deferred))


def parse_single(value: str) -> Optional[SpanContext]:
    """The span context in a ``b3`` header value, or None when it is malformed."""
    match = _SINGLE.fullmatch(value) if len(value) <= _MAX_READ else None
    if match is None:
        return None
    trace_hex, span_hex, state, parent_hex, decision_only = match.groups()
    if decision_only:
        return _remote(0, 0, decision_only)
    trace_id = int(trace_hex, 16)
    span_id = int(span_hex, 16)
    if not trace_id or not span_id or parent_hex == _ZERO_ID:  # zero ids are invalid everywhere
        return None
    return _remote(trace_id, span_id, state or "")


def _first(getter: Getter, carrier: Any, key: str) -> Optional[str]:
    values = getter.get_all(carrier, key)
    return text(values[0]).strip(_OWS) if values else None


def parse_multi(carrier: Any, getter: Getter) -> Optional[SpanContext]:
    """The span context in the ``X-B3-*`` headers of ``carrier``, or None.

    The first value of a repeated header wins.
    """
    trace_hex = _first(getter, carrier, TRACE_ID)
    span_hex = _first(getter, carrier, SPAN_ID)
    sampled = _first(getter, carrier, SAMPLED)
    flags = _first(getter, carrier, FLAGS)
    if sampled is None:
        state = ""
    else:
        decision = _SAMPLED.get(sampled.lower())
        if decision is None:
            return None
        state = "1" if decision else "0"
    if flags == "1":  # debug; any other value of X-B3-Flags is ignored, as the spec says
        state = "d"
    if trace_hex is None and span_hex is None:
        return _remote(0, 0, state) if state else None
    if trace_hex is None or span_hex is None:
        return None
    if _TRACE_ID.fullmatch(trace_hex) is None or _SPAN_ID.fullmatch(span_hex) is None:
        return None
    parent = _first(getter, carrier, PARENT_SPAN_ID)
    if parent is not None and (_SPAN_ID.fullmatch(parent) is None or parent == _ZERO_ID):
        return None
    trace_id = int(trace_hex, 16)
    span_id = int(span_hex, 16)
    if not trace_id or not span_id:
        return None
    return _remote(trace_id, span_id, state)


def _extract(carrier: Any, context: Context, getter: Getter) -> Context:
    parsed = None
    single = getter.get_all(carrier, SINGLE)
    if single:
        value = single[0]
        parsed = parse_single(value if type(value) is str else text(value))
    if parsed is None:
        parsed = parse_multi(carrier, getter)
    if parsed is None:
        return context
    return _tuple_new(Context, (NonRecordingSpan(parsed), context.baggage,
                                context.baggage_properties))


def _state(span_context: SpanContext) -> str:
    """The B3 sampling state of ``span_context``: "d", "1", "0", or "" when deferred."""
    if span_context.debug:
        return "d"
    if span_context.trace_flags & 0x01:
        return "1"
    return "" if span_context.deferred else "0"


def _sampling_only(span_context: SpanContext) -> bool:
    """Whether ``span_context`` is a remote sampling decision without ids (``b3: 0``)."""
    return (
        span_context.is_remote and not span_context.trace_id and not span_context.span_id
        and not span_context.deferred
    )


def format_trace_id(trace_id: int) -> str:
    """``trace_id`` in 16 hex characters when its high half is zero, else 32."""
    # %-formatting: about twice as fast as format() for these ids, on every request.
    return ("%016x" if trace_id >> 64 == 0 else "%032x") % trace_id


def format_single(span_context: SpanContext) -> str:
    """The ``b3`` header value for a valid ``span_context``."""
    trace_id = span_context.trace_id
    if span_context.debug:
        state = "-d"
    elif span_context.trace_flags & 0x01:
        state = "-1"
    else:
        state = "" if span_context.deferred else "-0"
    form = "%016x-%016x%s" if trace_id >> 64 == 0 else "%032x-%016x%s"
    return form % (trace_id, span_context.span_id, state)


def _valid(span_context: SpanContext) -> bool:
    # SpanContext.is_valid, inlined: the property costs a tenth of an inject.
    return 0 < span_context.trace_id <= _TRACE_ID_MAX and 0 < span_context.span_id <= _SPAN_ID_MAX


class B3Propagator:
    """B3 single header (``b3``): the compact form, preferred by Zipkin for new services.

    Reads ``b3`` and, failing that, ``X-B3-*``; writes ``b3``.
    """

    fields: Tuple[str, ...] = (SINGLE,)

    def inject(self, context: Context, carrier: Any, setter: Setter) -> None:
        """Write ``b3`` for a valid span context or a remote sampling-only decision."""
        span_context = context.span.context
        if _valid(span_context):
            setter.set(carrier, SINGLE, format_single(span_context))
        elif _sampling_only(span_context):
            setter.set(carrier, SINGLE, _state(span_context))

    def extract(self, carrier: Any, context: Context, getter: Getter) -> Context:
        """``context`` with the remote span context ``b3`` (or ``X-B3-*``) holds."""
        return _extract(carrier, context, getter)

    def __repr__(self) -> str:
        return "B3Propagator()"


class B3MultiPropagator:
    """B3 multiple headers (``X-B3-TraceId`` ...): what older Zipkin instrumentation reads.

    Reads ``b3`` and, failing that, ``X-B3-*``; writes ``X-B3-*`` (never ``X-B3-ParentSpanId``).
    """

    fields: Tuple[str, ...] = (TRACE_ID, SPAN_ID, SAMPLED, FLAGS)

    def inject(self, context: Context, carrier: Any, setter: Setter) -> None:
        """Write ``X-B3-TraceId``, ``X-B3-SpanId`` and the sampling state."""
        span_context = context.span.context
        if _valid(span_context):
            setter.set(carrier, TRACE_ID, format_trace_id(span_context.trace_id))
            setter.set(carrier, SPAN_ID, "%016x" % span_context.span_id)  # noqa: UP031
        elif not _sampling_only(span_context):
            return
        if span_context.debug:  # debug implies accept: X-B3-Sampled is not sent with it
            setter.set(carrier, FLAGS, "1")
        elif span_context.trace_flags & 0x01:
            setter.set(carrier, SAMPLED, "1")
        elif not span_context.deferred:
            setter.set(carrier, SAMPLED, "0")

    def extract(self, carrier: Any, context: Context, getter: Getter) -> Context:
        """``context`` with the remote span context ``b3`` (or ``X-B3-*``) holds."""
        return _extract(carrier, context, getter)

    def __repr__(self) -> str:
        return "B3MultiPropagator()"


__all__ = [
    "B3MultiPropagator",
    "B3Propagator",
    "format_single",
    "format_trace_id",
    "parse_multi",
    "parse_single",
]
