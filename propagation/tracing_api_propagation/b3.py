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

import binascii
import re
from typing import Any, Optional, Tuple

from tracing_api import SpanContext, TraceState
from tracing_api.context import Context
from tracing_api.propagation import (
    DICT,
    Getter,
    Setter,
    first_text,
    lower_case_names,
    remote_span_context,
    text,
)

_NO_STATE = TraceState()
_OWS = " \t"
_SPAN_ID_MAX = (1 << 64) - 1
# Hex ids are checked and read with a2b_hex (which refuses all but hex digits, either case) and
# int.from_bytes: a third of the time of a pattern and int(s, 16), which also takes whitespace,
# signs, underscores and "0x". Upper case is refused separately (s == s.lower()).
_a2b_hex = binascii.a2b_hex
_from_bytes = int.from_bytes
_to_bytes = int.to_bytes
# Sampling state -> (trace_flags, debug, deferred); "" is no decision.
_STATES = {"1": (0x01, False, False), "0": (0x00, False, False), "d": (0x01, True, False),
           "": (0x00, False, True)}

# {trace}-{span}[-{state}[-{parent}]] or {state} alone, with optional surrounding whitespace.
_SINGLE = re.compile(
    r"[ \t]*(?:([0-9a-f]{32}|[0-9a-f]{16})-([0-9a-f]{16})(?:-([01d])(?:-([0-9a-f]{16}))?)?"
    r"|([01d]))[ \t]*"
)
_MAX_READ = 256  # far longer than any valid value, whitespace included
_ZERO_ID = "0" * 16
_DECISIONS = ("1", "0", "d")
_TEXT_OR_NONE = frozenset((str, type(None)))
# X-B3-Sampled: "1"/"0", and the legacy "true"/"false" some old clients still send.
_SAMPLED = {"1": True, "0": False, "true": True, "false": False}

SINGLE = "b3"
TRACE_ID = "x-b3-traceid"
SPAN_ID = "x-b3-spanid"
PARENT_SPAN_ID = "x-b3-parentspanid"
SAMPLED = "x-b3-sampled"
FLAGS = "x-b3-flags"
# The fields of both propagators: every B3 header, of either form. Each reads both forms, so a
# request being forwarded loses all of them, what it would not write included (another hop's
# X-B3-ParentSpanId beside new ids would name a wrong parent; a stale b3 beside new X-B3-*
# would win, as B3 readers take b3 first).
_FIELDS = (SINGLE, TRACE_ID, SPAN_ID, PARENT_SPAN_ID, SAMPLED, FLAGS)


def _remote(trace_id: int, span_id: int, state: str) -> SpanContext:
    """A remote span context for sampling state ``state`` ("" when deferred)."""
    flags, debug, deferred = _STATES[state]
    return remote_span_context(trace_id, span_id, flags, _NO_STATE, debug, deferred)


def _first(value: str) -> str:
    """The first of comma-joined values (a WSGI server joins a repeated header so); no valid
    B3 value contains a comma."""
    return value[: value.index(",")] if "," in value else value


def parse_single(value: str) -> Optional[SpanContext]:
    """The span context in a ``b3`` header value, or None when it is malformed. Of
    comma-joined values (a repeated header) the first is read."""
    if "," in value:
        value = value[: value.index(",")]
    size = len(value)
    if size in (51, 35):
        # The usual {trace}-{span}-{state} (128- or 64-bit trace id), checked without the
        # pattern; every other form goes the general way below.
        cut = size - 19
        state = value[-1]
        if value[cut] == value[-2] == "-" and state in _DECISIONS and value == value.lower():
            try:
                trace_id = _from_bytes(_a2b_hex(value[:cut]), "big")
                span_id = _from_bytes(_a2b_hex(value[cut + 1:-2]), "big")
            except ValueError:
                return None
            return _remote(trace_id, span_id, state) if trace_id and span_id else None
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


def _hex_id(value: str, long: bool) -> int:
    """The id in ``value``: 16 lower-case hex digits (or 32 when ``long``); 0 when malformed."""
    size = len(value)
    if (size == 16 or (long and size == 32)) and value == value.lower():
        try:
            return _from_bytes(_a2b_hex(value), "big")
        except ValueError:
            pass
    return 0


def _multi(
    trace_hex: Optional[str], span_hex: Optional[str], sampled: Optional[str],
    flags: Optional[str], parent: Optional[str],
) -> Optional[SpanContext]:
    """The span context in the values of the ``X-B3-*`` headers (None when absent), or None.
    Of comma-joined values (a repeated header) the first is read."""
    if sampled is None:
        state = ""
    else:
        decision = _SAMPLED.get(_first(sampled).strip(_OWS).lower())
        if decision is None:
            return None
        state = "1" if decision else "0"
    if flags is not None and _first(flags).strip(_OWS) == "1":  # debug; other values are ignored
        state = "d"
    if trace_hex is None and span_hex is None:
        return _remote(0, 0, state) if state else None
    if trace_hex is None or span_hex is None:
        return None
    if parent is not None:
        parent = _first(parent).strip(_OWS)
        if parent == _ZERO_ID or not _hex_id(parent, False):
            return None
    trace_id = _hex_id(_first(trace_hex).strip(_OWS), True)
    span_id = _hex_id(_first(span_hex).strip(_OWS), False)
    if not trace_id or not span_id:  # malformed, or zero: invalid either way
        return None
    return _remote(trace_id, span_id, state)


def parse_multi(carrier: Any, getter: Getter) -> Optional[SpanContext]:
    """The span context in the ``X-B3-*`` headers of ``carrier``, or None.

    The first value of a repeated header wins.
    """
    return _multi(
        first_text(getter, carrier, TRACE_ID), first_text(getter, carrier, SPAN_ID),
        first_text(getter, carrier, SAMPLED), first_text(getter, carrier, FLAGS),
        first_text(getter, carrier, PARENT_SPAN_ID),
    )


def _extract(self: Any, carrier: Any, context: Context, getter: Getter) -> Context:
    """``context`` with the remote span context ``b3`` (or ``X-B3-*``) holds."""
    if getter is DICT and type(carrier) is dict:
        # A plain dict, read directly: what DICT.get_all finds, without a call and a list per
        # header. A name missing as given is missing in any case when every name is in lower
        # case (checked once, and only then); anything else goes the general way below.
        # The usual values are parsed inline (each call is a tenth of an extract); the property
        # tests check that this path and the general one always agree.
        single = carrier.get(SINGLE)
        if type(single) is str:
            size = len(single)
            if size in {51, 35}:  # {trace}-{span}-{state}, 128- or 64-bit trace id
                cut = size - 19
                state = single[-1]
                if (single[cut] == single[-2] == "-" and state in _DECISIONS
                        and single == single.lower()):
                    try:
                        trace_id = _from_bytes(_a2b_hex(single[:cut]), "big")
                        span_id = _from_bytes(_a2b_hex(single[cut + 1:-2]), "big")
                    except ValueError:
                        trace_id = span_id = 0
                    if trace_id and span_id:
                        flags, debug, deferred = _STATES[state]
                        return context.with_remote_parent(
                            trace_id, span_id, flags, _NO_STATE, debug, deferred
                        )
            parsed = parse_single(single)
            if parsed is not None:
                return context.with_span_context(parsed)
        get = carrier.get
        trace_hex = get(TRACE_ID)
        span_hex = get(SPAN_ID)
        sampled = get(SAMPLED)
        flags_value = get(FLAGS)
        parent = get(PARENT_SPAN_ID)
        if (
            type(trace_hex) is str and type(span_hex) is str
            and flags_value is None and parent is None and single is None
            and (sampled is None or type(sampled) is str)
            and lower_case_names(carrier)
        ):
            # The usual X-B3-* set: ids and a decision, no flags and no parent.
            decision = _SAMPLED.get(sampled) if sampled is not None else None
            size = len(trace_hex)
            if (size in {32, 16} and len(span_hex) == 16
                    and (decision is not None or sampled is None)
                    and trace_hex == trace_hex.lower() and span_hex == span_hex.lower()):
                try:
                    trace_id = _from_bytes(_a2b_hex(trace_hex), "big")
                    span_id = _from_bytes(_a2b_hex(span_hex), "big")
                except ValueError:
                    trace_id = span_id = 0
                if trace_id and span_id:
                    if sampled is None:
                        return context.with_remote_parent(
                            trace_id, span_id, 0x00, _NO_STATE, False, True
                        )
                    return context.with_remote_parent(
                        trace_id, span_id, 0x01 if decision else 0x00, _NO_STATE
                    )
            parsed = _multi(trace_hex, span_hex, sampled, None, None)
            return context if parsed is None else context.with_span_context(parsed)
        values = (trace_hex, span_hex, sampled, flags_value, parent)
        if (
            (single is None or type(single) is str)
            and _TEXT_OR_NONE.issuperset(map(type, values))
            and ((single is not None and None not in values) or lower_case_names(carrier))
        ):
            parsed = _multi(*values)
            return context if parsed is None else context.with_span_context(parsed)
    parsed = None
    single_values = getter.get_all(carrier, SINGLE)
    if single_values:
        parsed = parse_single(text(single_values[0]))
    if parsed is None:
        parsed = parse_multi(carrier, getter)
    if parsed is None:
        return context
    return context.with_span_context(parsed)


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
    # to_bytes().hex(): fixed width at half the cost of "%032x", on every request.
    return _to_bytes(trace_id, 8 if trace_id <= _SPAN_ID_MAX else 16, "big").hex()


def format_single(span_context: SpanContext) -> str:
    """The ``b3`` header value for a valid ``span_context``."""
    if span_context.debug:
        state = "-d"
    elif span_context.trace_flags & 0x01:
        state = "-1"
    else:
        state = "" if span_context.deferred else "-0"
    return "%s-%s%s" % (  # noqa: UP031
        format_trace_id(span_context.trace_id), _to_bytes(span_context.span_id, 8, "big").hex(), state)


class B3Propagator:
    """B3 single header (``b3``): the compact form, preferred by Zipkin for new services.

    Reads ``b3`` and, failing that, ``X-B3-*``; writes ``b3``. ``fields``: every B3 header.
    """

    fields: Tuple[str, ...] = _FIELDS

    def inject(self, context: Context, carrier: Any, setter: Setter) -> None:
        """Write ``b3`` for a valid span context or a remote sampling-only decision."""
        # Inject runs on every outgoing request. SpanContext fields by index (0 trace_id,
        # 1 span_id, 2 trace_flags, 5 debug, 6 deferred): no descriptor lookup per field.
        # format_single and is_valid inlined: a function call is a tenth of an inject; the
        # range checks are left to to_bytes(), which raises OverflowError for an id that is
        # negative or wider than its field (invalid: nothing is written).
        span_context = context[0].context  # Context.span
        trace_id = span_context[0]
        span_id = span_context[1]
        if trace_id and span_id:
            try:
                trace_hex = _to_bytes(trace_id, 8 if trace_id <= _SPAN_ID_MAX else 16, "big").hex()
                span_hex = _to_bytes(span_id, 8, "big").hex()
                state = ("-d" if span_context[5] else "-1" if span_context[2] & 0x01
                         else "" if span_context[6] else "-0")
                value = f"{trace_hex}-{span_hex}{state}"
            except OverflowError:
                return
        elif _sampling_only(span_context):
            value = _state(span_context)
        else:
            return
        if setter is DICT and type(carrier) is dict and not carrier:
            carrier[SINGLE] = value  # what DICT.set does in an empty dict, without the call
        else:
            setter.set(carrier, SINGLE, value)

    extract = _extract  # the same for both forms; a function of its own: one call less

    def __repr__(self) -> str:
        return "B3Propagator()"


class B3MultiPropagator:
    """B3 multiple headers (``X-B3-TraceId`` ...): what older Zipkin instrumentation reads.

    Reads ``b3`` and, failing that, ``X-B3-*``; writes ``X-B3-*`` (never ``X-B3-ParentSpanId``).
    ``fields``: every B3 header.
    """

    fields: Tuple[str, ...] = _FIELDS

    def inject(self, context: Context, carrier: Any, setter: Setter) -> None:
        """Write ``X-B3-TraceId``, ``X-B3-SpanId`` and the sampling state."""
        span_context = context[0].context  # Context.span; fields by index, as B3Propagator
        if span_context[5]:  # debug implies accept: X-B3-Sampled is not sent with it
            key, value = FLAGS, "1"
        elif span_context[2] & 0x01:
            key, value = SAMPLED, "1"
        elif not span_context[6]:
            key, value = SAMPLED, "0"
        else:
            key = value = ""  # no decision: nothing is written for it
        trace_id = span_context[0]
        span_id = span_context[1]
        if trace_id and span_id:
            try:
                trace_hex = _to_bytes(trace_id, 8 if trace_id <= _SPAN_ID_MAX else 16, "big").hex()
                span_hex = _to_bytes(span_id, 8, "big").hex()
            except OverflowError:  # negative, or wider than its field: invalid
                return
            if setter is DICT and type(carrier) is dict and not carrier:
                # What DICT.set does in an empty dict, without a call per header.
                carrier[TRACE_ID] = trace_hex
                carrier[SPAN_ID] = span_hex
                if key:
                    carrier[key] = value
                return
            setter.set(carrier, TRACE_ID, trace_hex)
            setter.set(carrier, SPAN_ID, span_hex)
        elif not _sampling_only(span_context):
            return
        if key:
            setter.set(carrier, key, value)

    extract = _extract  # the same for both forms; a function of its own: one call less

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
