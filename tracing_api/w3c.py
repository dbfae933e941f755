"""W3C Trace Context (``traceparent``, ``tracestate``) and W3C Baggage: the default propagators.

Followed to the letter of the W3C Trace Context Level 2 draft and the Baggage specification:
an invalid ``traceparent`` restarts the trace and drops ``tracestate``; an invalid ``tracestate``
never affects ``traceparent``; baggage values are percent-encoded (a space is ``%20``, ``+`` is a
plus). What is read is bounded: at most 32 ``tracestate`` members, baggage within 8,192 bytes and
180 members; the excess is dropped, never parsed. (Baggage is written in ``_baggage``; its
public names are here.)
"""

from __future__ import annotations

import binascii
import re
from typing import Any, Dict, List, Optional, Tuple

from ._types import TRACESTATE_MAX_MEMBERS, SpanContext, TraceState
from .context import Context
from .propagation import DICT, Getter, Setter, lower_case_names, remote_span_context, text

_a2b_hex = binascii.a2b_hex
_tuple_new = tuple.__new__
_from_bytes = int.from_bytes
_to_bytes = int.to_bytes
_FLAGS_SUFFIX = ("-00", "-01", "-02", "-03")
_OWS = " \t"
_TRACE_ID_MAX = (1 << 128) - 1
_SPAN_ID_MAX = (1 << 64) - 1

_TRACEPARENT = re.compile(r"(?!ff)[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]([0-9a-f])")
# Only the sampled (0x01) and random (0x02) bits are defined, and both are in the last hex digit.
_FLAG_BITS = {digit: int(digit, 16) & 0x03 for digit in "0123456789abcdef"}
# One tracestate list-member (editor's draft key grammar, a superset of Level 1).
_MEMBER = (r"([a-z0-9][_0-9a-z\-*/@]{0,255})"
           r"=([\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e])")
_TRACESTATE_MEMBERS = re.compile(_MEMBER)
# The whole header: members (or nothing) separated by commas, with optional whitespace. Keys and
# values contain no comma, so a valid header splits into members exactly where findall finds them.
# Each run of whitespace has one place to go (never two adjacent [ \t]*), so hostile input cannot
# make the match backtrack.
_TRACESTATE = re.compile(r"[ \t]*(?:{m}[ \t]*)?(?:,[ \t]*(?:{m}[ \t]*)?)*".format(
    m=_MEMBER.replace("(", "(?:")))
TRACESTATE_PROPAGATED_LENGTH = 512
# The longest tracestate the grammar allows (32 members of 256 + 1 + 256 characters, and commas,
# with a little room for whitespace): anything longer is hostile and is not parsed.
_TRACESTATE_MAX_READ = 32 * 513 + 31 + 512


def _parse_ids(value: str) -> Optional[Tuple[int, int, int]]:
    """``(trace_id, span_id, trace_flags)`` from a ``traceparent`` value, or None if invalid."""
    if len(value) == 55 and value[2] == value[35] == value[52] == "-":
        # Version 00 as sent, checked and read without the pattern: with the dashes removed
        # exactly 52 lower-case hex digits must remain; a2b_hex refuses anything else but upper
        # case (and whitespace, signs, "0x", which int() would take). Half the time of the pattern.
        digits = value.replace("-", "")
        if len(digits) == 52 and digits == digits.lower():
            try:
                data = _a2b_hex(digits)
            except ValueError:
                return None
            if data[0] == 0xFF:
                return None
            trace_id = _from_bytes(data[1:17], "big")
            span_id = _from_bytes(data[17:25], "big")
            if not trace_id or not span_id:
                return None
            return trace_id, span_id, data[25] & 0x03  # other flag bits must not be passed on
        return None
    value = value.strip(_OWS)
    if len(value) != 55 and (len(value) < 56 or value[55] != "-" or value[:2] == "00"):
        return None
    match = _TRACEPARENT.match(value)  # version ff is invalid: the pattern refuses it
    if match is None:
        return None
    trace_hex, span_hex, flags_digit = match.groups()
    trace_id = int(trace_hex, 16)
    span_id = int(span_hex, 16)
    if not trace_id or not span_id:
        return None
    # Other flag bits must not be passed on.
    return trace_id, span_id, _FLAG_BITS[flags_digit]


def parse_traceparent(value: str) -> Optional[SpanContext]:
    """The remote span context a ``traceparent`` value holds, or None when it is invalid."""
    ids = _parse_ids(value)
    if ids is None:
        return None
    trace_id, span_id, flags = ids
    return remote_span_context(trace_id, span_id, flags, _EMPTY_STATE)


def format_traceparent(context: SpanContext) -> str:
    """The ``traceparent`` value for ``context`` (always version 00)."""
    # Fixed-width hex through to_bytes().hex(): a third faster than "%032x" with padding, which
    # is what every outgoing request pays. Ids out of range raise OverflowError: callers check.
    return "00-%s-%s%s" % (  # noqa: UP031
        _to_bytes(context.trace_id, 16, "big").hex(), _to_bytes(context.span_id, 8, "big").hex(),
        _FLAGS_SUFFIX[context.trace_flags & 0x03])


def tracestate_entries(joined: str) -> Optional[List[Tuple[str, str]]]:
    """The entries of a ``tracestate`` value (several headers joined with commas), or None when
    it is invalid. Of a repeated key the first entry is kept.

    Longer than 512 characters, whole entries are dropped: those over 128 characters first, then
    from the end, as the specification asks of a vendor that truncates.
    """
    if len(joined) > _TRACESTATE_MAX_READ:
        return None
    if _TRACESTATE.fullmatch(joined) is None:  # any malformed member discards the whole state
        return None
    entries: List[Tuple[str, str]] = _TRACESTATE_MEMBERS.findall(joined)
    if len(entries) > TRACESTATE_MAX_MEMBERS:
        return None
    if len(dict(entries)) != len(entries):  # a key repeated: the first is kept, as TraceState does
        first: Dict[str, str] = {}
        for key, value in entries:
            first.setdefault(key, value)
        entries = list(first.items())
    if len(joined) <= TRACESTATE_PROPAGATED_LENGTH:  # short enough: nothing to truncate
        return entries
    return _truncate(entries)


def parse_tracestate(values: List[str]) -> Optional[TraceState]:
    """The trace state in ``values`` (one header or several, joined in order), or None if invalid."""
    if sum(len(v) for v in values) > _TRACESTATE_MAX_READ:
        return None
    entries = tracestate_entries(values[0] if len(values) == 1 else ",".join(values))
    if entries is None:
        return None
    return TraceState(entries) if entries else _EMPTY_STATE


def _truncate(entries: List[Tuple[str, str]]) -> List[Tuple[str, str]]:
    def length(items: List[Tuple[str, str]]) -> int:
        return sum(len(k) + len(v) + 1 for k, v in items) + max(0, len(items) - 1)

    if length(entries) <= TRACESTATE_PROPAGATED_LENGTH:
        return entries
    kept = list(entries)
    for key, value in reversed(entries):
        if len(key) + len(value) + 1 > 128:
            kept.remove((key, value))
            if length(kept) <= TRACESTATE_PROPAGATED_LENGTH:
                return kept
    while kept and length(kept) > TRACESTATE_PROPAGATED_LENGTH:
        kept.pop()
    return kept


_EMPTY_STATE = TraceState()


def _with_parent(context: Context, traceparent: str, tracestate: Optional[str]) -> Context:
    """``context`` with the parent in ``traceparent`` (and ``tracestate``); itself when invalid."""
    ids = _parse_ids(traceparent)
    if ids is None:  # and tracestate is not even read, as the specification says
        return context
    state = _EMPTY_STATE
    # Checked and parsed when first used (TraceState.from_header): a service that never reads
    # or forwards it pays nothing. Hostile lengths are refused before that.
    if tracestate and len(tracestate) <= _TRACESTATE_MAX_READ:
        state = TraceState.from_header(tracestate)
    trace_id, span_id, flags = ids
    return context.with_remote_parent(trace_id, span_id, flags, state)  # ids checked above


class TraceContextPropagator:
    """W3C ``traceparent`` and ``tracestate``."""

    fields: Tuple[str, ...] = ("traceparent", "tracestate")

    def inject(self, context: Context, carrier: Any, setter: Setter) -> None:
        """Write ``traceparent`` (and ``tracestate`` when not empty)."""
        span_context = context.span.context
        # SpanContext.is_valid, inlined: the property costs a tenth of an inject.
        if not (0 < span_context.trace_id <= _TRACE_ID_MAX and 0 < span_context.span_id <= _SPAN_ID_MAX):
            return
        traceparent = format_traceparent(span_context)
        # header() is "" for an empty state: one call, where truth-testing it takes two. A span
        # context may also hold None for "no trace state".
        state = span_context.trace_state
        tracestate = "" if state is None else state.header()
        if len(tracestate) > TRACESTATE_PROPAGATED_LENGTH:  # built locally: received ones fit
            tracestate = ",".join(f"{k}={v}" for k, v in _truncate(list(state.items())))
        if setter is DICT and type(carrier) is dict and (not carrier or lower_case_names(carrier)):
            # What DICT.set does for a dict with no other-case names, without a call per header.
            carrier["traceparent"] = traceparent
            if tracestate:
                carrier["tracestate"] = tracestate
            return
        setter.set(carrier, "traceparent", traceparent)
        if tracestate:
            setter.set(carrier, "tracestate", tracestate)

    def extract(self, carrier: Any, context: Context, getter: Getter) -> Context:
        """``context`` with the remote parent from ``traceparent``, when there is a valid one."""
        if getter is DICT and type(carrier) is dict:
            # A plain dict, read directly: what DICT.get_all finds, without a call and a list
            # per header. Anything unusual (a list value, a name in another case) goes the
            # general way below.
            value = carrier.get("traceparent")
            if type(value) is str:
                state = carrier.get("tracestate")
                if type(state) is str or (state is None and lower_case_names(carrier)):
                    return _with_parent(context, value, state)
            elif value is None and lower_case_names(carrier):
                return context
        values = getter.get_all(carrier, "traceparent")
        if len(values) != 1:  # absent, or repeated: either way there is no parent
            return context
        states = getter.get_all(carrier, "tracestate")
        if not states:
            joined = None
        else:
            joined = text(states[0]) if len(states) == 1 else ",".join(text(v) for v in states)
        return _with_parent(context, text(values[0]), joined)

    def __repr__(self) -> str:
        return "TraceContextPropagator()"


from ._baggage import (  # noqa: E402  (the second default propagator, re-exported)
    BAGGAGE_MAX_BYTES,
    BAGGAGE_MAX_MEMBERS,
    BaggagePropagator,
    format_baggage,
    parse_baggage,
)

__all__ = [
    "BAGGAGE_MAX_BYTES",
    "BAGGAGE_MAX_MEMBERS",
    "BaggagePropagator",
    "TraceContextPropagator",
    "format_baggage",
    "format_traceparent",
    "parse_baggage",
    "parse_traceparent",
    "parse_tracestate",
    "tracestate_entries",
]
