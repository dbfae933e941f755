"""W3C Trace Context (``traceparent``, ``tracestate``) and W3C Baggage: the default propagators.

Followed to the letter of the W3C Trace Context Level 2 draft and the Baggage specification:
an invalid ``traceparent`` restarts the trace and drops ``tracestate``; an invalid ``tracestate``
never affects ``traceparent``; baggage values are percent-encoded (a space is ``%20``, ``+`` is a
plus). What is read is bounded: at most 32 ``tracestate`` members, baggage within 8,192 bytes and
180 members; the excess is dropped, never parsed.
"""

from __future__ import annotations

import binascii
import codecs
import re
from types import MappingProxyType
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import quote

from ._types import TRACESTATE_MAX_MEMBERS, SpanContext, TraceState
from .context import EMPTY_BAGGAGE, Context
from .propagation import DICT, Getter, Setter, Value, lower_case_names, remote_span_context, text

_a2b_hex = binascii.a2b_hex
# Not in the documented codecs API, but what pickle itself calls to read protocol-0 strings:
# decodes backslash escapes in bytes to bytes, in C. Should a Python lack it, values are
# decoded piece by piece (see _percent_decode).
_escape_decode: Optional[Callable[[bytes], Tuple[bytes, int]]] = getattr(
    codecs, "escape_decode", None
)
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
    it is invalid.

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
    return context.with_span_context(remote_span_context(trace_id, span_id, flags, state))


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


# ------------------------------------------------------------------------------------- baggage

BAGGAGE_MAX_BYTES = 8192
BAGGAGE_MAX_MEMBERS = 180
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_BAGGAGE_VALUE = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*\Z")
_PAIR = re.compile(r"([!#$%&'*+\-.^_`|~0-9A-Za-z]+)=([\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*)")
# Members that are exactly key=value, separated by bare commas. Keys hold no "=" or ",", values
# no ",": each run has one place to end, so hostile input cannot make the match backtrack far.
_SIMPLE_BAGGAGE = re.compile(r"(?:{p},)*{p}".format(p=_PAIR.pattern.replace("(", "(?:")))
# One member with surrounding whitespace stripped: key OWS "=" OWS value OWS [";" properties].
# Keys hold no "=" or whitespace, so the key ends where the first "=" or blank is, as with
# partition; properties are checked one by one (_valid_property).
_MEMBER_PARTS = re.compile(
    r"([!#$%&'*+\-.^_`|~0-9A-Za-z]+)[ \t]*=[ \t]*([\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*)"
    r"[ \t]*(?:;(.*))?\Z", re.DOTALL)
# Every baggage-octet but "%" may stay as it is; quote() encodes the rest, "%" included.
_SAFE = "".join(
    chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"%,;\\' and not chr(c).isalnum()
    and chr(c) not in "_.-~"
)


def _valid_property(prop: str) -> bool:
    key, sep, value = prop.partition("=")
    key = key.rstrip(_OWS)
    if not _TOKEN.match(key):
        return False
    return not sep or bool(_BAGGAGE_VALUE.match(value.lstrip(_OWS)))


def _percent_decode(value: str) -> str:
    """``value`` (ASCII, as the grammar makes it) with %XX escapes decoded as UTF-8; invalid
    UTF-8 becomes U+FFFD and a malformed escape stays as it is, as ``urllib.parse.unquote``
    does, at a fifth of its cost.
    """
    if "%" not in value:
        return value
    data = value.encode("ascii")
    if b"\\" not in data and _escape_decode is not None:  # (the grammar allows no "\\")
        try:
            # Each "%XX" as "\xXX", decoded in one C call; a malformed escape raises, and the
            # value is then decoded piece by piece below.
            return _escape_decode(data.replace(b"%", b"\\x"))[0].decode("utf-8", "replace")
        except ValueError:
            pass
    pieces = data.split(b"%")
    decoded = [pieces[0]]
    for piece in pieces[1:]:
        if len(piece) >= 2:  # (a2b_hex takes b"" too: a "%" at the end must stay)
            try:
                decoded.append(_a2b_hex(piece[:2]))  # exactly two hex digits, nothing else
            except ValueError:
                pass
            else:
                decoded.append(piece[2:])
                continue
        decoded.append(b"%" + piece)
    return b"".join(decoded).decode("utf-8", "replace")


def _simple_entries(joined: str) -> Optional[Dict[str, str]]:
    """The entries of the usual form of baggage, "k=v,k=v" with no whitespace, empty members
    or properties, within the limits; None for any other form (``parse_baggage`` reads those).

    Checked by one pattern and split by another, in C: the same result as the general loop.
    """
    if len(joined) > BAGGAGE_MAX_BYTES or _SIMPLE_BAGGAGE.fullmatch(joined) is None:
        return None
    pairs = _PAIR.findall(joined)
    if len(pairs) > BAGGAGE_MAX_MEMBERS:
        return None
    entries = dict(pairs)  # of repeated keys the last wins
    if "%" in joined:
        for key, value in entries.items():
            if "%" in value:
                entries[key] = _percent_decode(value)
    return entries


def parse_baggage(values: List[str]) -> Tuple[Dict[str, str], Dict[str, str]]:
    """Baggage entries and their properties from ``baggage`` header values.

    Only the first 8,192 bytes of the headers (combined as one list) are read, and only whole
    members within them: the rest, and members past the 180th, are dropped unread. Invalid
    members are dropped one by one. Of repeated keys the last wins.
    """
    joined = values[0] if len(values) == 1 else ",".join(v[: BAGGAGE_MAX_BYTES + 1] for v in values)
    if len(joined) > BAGGAGE_MAX_BYTES:
        # Keep whole members only: cut at the last comma within the limit.
        joined = joined[: max(0, joined.rfind(",", 0, BAGGAGE_MAX_BYTES + 1))]
    simple = _simple_entries(joined)
    if simple is not None:
        return simple, {}
    entries: Dict[str, str] = {}
    properties: Dict[str, str] = {}
    count = 0
    for member in joined.split(","):
        member = member.strip(_OWS)
        if not member:
            continue
        count += 1
        if count > BAGGAGE_MAX_MEMBERS:
            break
        match = _MEMBER_PARTS.match(member)  # one pattern checks key and value and splits them
        if match is None:
            continue
        key, value, props = match.groups()
        if props:  # ("k=v;" has none)
            prop_list = [p.strip(_OWS) for p in props.split(";")]
            if not all(_valid_property(p) for p in prop_list):
                continue
            properties[key] = ";".join(prop_list)
        elif properties:
            properties.pop(key, None)  # an earlier entry's properties go with it: the last wins
        # The value matched the grammar, so it is ASCII, as the fast decoder needs.
        entries[key] = _percent_decode(value)
    return entries, properties


def format_baggage(entries: Dict[str, str], properties: Dict[str, str]) -> str:
    """The ``baggage`` header for ``entries``; invalid keys and members past the limits are left out."""
    members: List[str] = []
    used = 0
    for key, value in entries.items():
        if not isinstance(key, str) or not _TOKEN.match(key) or not isinstance(value, str):
            continue
        # errors="replace": a lone surrogate has no UTF-8 form and must not raise here.
        member = key + "=" + quote(value, safe=_SAFE, errors="replace")
        props = properties.get(key)
        if props and isinstance(props, str):
            prop_list = [p.strip(_OWS) for p in props.split(";")]
            if all(_valid_property(p) for p in prop_list):  # else the entry goes without them
                member += ";" + ";".join(prop_list)
        size = len(member.encode("utf-8")) + (1 if members else 0)
        if used + size > BAGGAGE_MAX_BYTES or len(members) >= BAGGAGE_MAX_MEMBERS:
            continue
        used += size
        members.append(member)
    return ",".join(members)


class BaggagePropagator:
    """W3C ``baggage``."""

    fields: Tuple[str, ...] = ("baggage",)

    def inject(self, context: Context, carrier: Any, setter: Setter) -> None:
        """Write ``baggage`` when there is any."""
        if context.baggage:
            header = format_baggage(dict(context.baggage), dict(context.baggage_properties))
            if header:
                setter.set(carrier, "baggage", header)

    def extract(self, carrier: Any, context: Context, getter: Getter) -> Context:
        """``context`` with the baggage ``carrier`` holds merged into its own (as every format
        that carries baggage does, so the order of propagators does not lose entries).
        """
        if getter is DICT and type(carrier) is dict:
            # A plain dict, read directly, as in TraceContextPropagator.extract.
            value = carrier.get("baggage")
            if type(value) is str:
                simple = _simple_entries(value)  # the usual form, without parse_baggage's lists
                if simple is not None:  # never empty: the form has at least one member
                    if not context.baggage:
                        # Context(...) without its __new__ (a Python frame), as with_remote_parent
                        # does: nothing to merge with, and no properties in this form.
                        return _tuple_new(Context, (context.span, MappingProxyType(simple),
                                                    EMPTY_BAGGAGE))
                    return context.with_baggage(simple)
                values: List[Value] = [value]
            elif value is None and lower_case_names(carrier):
                return context
            else:
                values = getter.get_all(carrier, "baggage")
        else:
            values = getter.get_all(carrier, "baggage")
        if not values:
            return context
        entries, properties = parse_baggage([text(v) for v in values])
        if not entries:
            return context
        if not context.baggage:  # the usual case: nothing to merge with
            return Context(context.span, MappingProxyType(entries), MappingProxyType(properties))
        return context.with_baggage(entries, properties)

    def __repr__(self) -> str:
        return "BaggagePropagator()"


__all__ = [
    "BaggagePropagator",
    "TraceContextPropagator",
    "format_baggage",
    "format_traceparent",
    "parse_baggage",
    "parse_traceparent",
    "parse_tracestate",
    "tracestate_entries",
]
