"""Jaeger: ``uber-trace-id: {trace-id}:{span-id}:{parent-span-id}:{flags}`` and ``uberctx-*``.

What Jaeger clients (and services still on them) send and read.

- Ids are hex of any width up to 128 bits (trace) and 64 bits (span), any case; shorter ids are
  the same number left-padded with zeros. Zero ids are invalid. ``parent-span-id`` is deprecated:
  it must be hex but is ignored, and ``0`` is written. ``flags`` is one or two hex digits.
- The whole value may arrive URL-encoded (``100%3A7f%3A0%3A1``); it is decoded first.
- A trace id whose high half is zero is written as 16 characters, any other as 32 (the same rule
  as B3), span ids as 16, flags as one hex digit.
- Flags: 0x01 sets the sampled flag; 0x02 is debug, which sets ``debug`` and implies sampled.
  Other bits (firehose 0x08) are ignored. Jaeger has no "no decision": a deferred context is
  written as not sampled.
- ``jaeger-debug-id`` alone (no ``uber-trace-id``) asks for a debug trace: it yields a remote
  sampling-only context (zero ids) with ``debug`` set, so the new trace is sampled.
- Baggage: one ``uberctx-{key}`` header per entry, values URL-encoded; also read from
  ``jaeger-baggage: k1=v1, k2=v2``. Header names are case-insensitive, so keys are written in
  lower case and come back in lower case. Baggage read is merged into the context's and bounded
  like W3C baggage (180 entries, 8,192 bytes, whole entries only); the excess is dropped,
  unread. An entry the context holds already, with the same value or under a name in another
  case (W3C ``baggage`` read before it), is left as it is, W3C properties included.
- Only keys made of ``0-9 a-z _ . -`` (after lower-casing) are written: the characters a gRPC
  metadata name may hold, where one other character fails the whole call. W3C ``baggage``
  still carries the others.
- Written baggage is kept within 4,096 bytes, counting each header as its name, its value and
  32 bytes (what HTTP/2 and gRPC charge per header). The same entries usually travel in W3C
  ``baggage`` too (up to 8,192 bytes), and gRPC refuses a request whose headers pass 16 KiB:
  both together, with the other headers, stay under it. Entries that do not fit are skipped.
"""

from __future__ import annotations

import binascii
import re
from typing import Any, Dict, Optional, Set, Tuple
from urllib.parse import quote, unquote

from tracing_api import SpanContext, TraceState
from tracing_api.context import Context
from tracing_api.propagation import DICT, Getter, Setter, remote_span_context, text

HEADER = "uber-trace-id"
BAGGAGE_PREFIX = "uberctx-"
DEBUG_ID = "jaeger-debug-id"
BAGGAGE_HEADER = "jaeger-baggage"
MAX_BAGGAGE_ENTRIES = 180
MAX_BAGGAGE_BYTES = 8192
# Written: name + value + HEADER_OVERHEAD per uberctx-* header, at most MAX_WRITTEN_BAGGAGE_BYTES.
MAX_WRITTEN_BAGGAGE_BYTES = 4096
HEADER_OVERHEAD = 32

_NO_STATE = TraceState()
_TRACE_ID_MAX = (1 << 128) - 1
_SPAN_ID_MAX = (1 << 64) - 1
_to_bytes = int.to_bytes
_from_bytes = int.from_bytes
_a2b_hex = binascii.a2b_hex
# By the flags digit: the sampled flag and debug (0x02, which implies sampled).
_SAMPLED = tuple(0x01 if flags & 0x03 else 0 for flags in range(16))
_DEBUG = tuple(bool(flags & 0x02) for flags in range(16))
_VALUE = re.compile(r"([0-9a-fA-F]{1,32}):([0-9a-fA-F]{1,16}):[0-9a-fA-F]{1,16}:([0-9a-fA-F]{1,2})")
_MAX_READ = 256  # far more than the longest valid value, even URL-encoded
# What every carrier takes in a header name: gRPC metadata allows no more (HTTP allows more).
_NAME = re.compile(r"uberctx-[0-9a-z_.\-]+")


def parse(value: str) -> Optional[SpanContext]:
    """The remote span context in an ``uber-trace-id`` value, or None when it is malformed."""
    if len(value) > _MAX_READ:
        return None
    if "%" in value:
        value = unquote(value)
    match = _VALUE.fullmatch(value.strip(" \t"))
    if match is None:
        return None
    trace_hex, span_hex, flags_hex = match.groups()
    trace_id = int(trace_hex, 16)
    span_id = int(span_hex, 16)
    if not trace_id or not span_id:
        return None
    flags = int(flags_hex, 16)
    debug = bool(flags & 0x02)  # debug implies sampled
    sampled = 0x01 if debug else flags & 0x01
    return remote_span_context(trace_id, span_id, sampled, _NO_STATE, debug)


def format_header(span_context: SpanContext) -> str:
    """The ``uber-trace-id`` value for a valid ``span_context``."""
    trace_id = span_context.trace_id
    # to_bytes().hex(): fixed-width hex at half the cost of "%032x", on every request.
    return "%s:%s:0:%s" % (  # noqa: UP031
        _to_bytes(trace_id, 8 if trace_id <= _SPAN_ID_MAX else 16, "big").hex(),
        _to_bytes(span_context.span_id, 8, "big").hex(),
        "3" if span_context.debug else "1" if span_context.trace_flags & 0x01 else "0")


def _may_hold_baggage(carrier: Dict[Any, Any]) -> bool:
    """False when the ``dict`` ``carrier`` surely has no ``uberctx-*`` or ``jaeger-baggage``
    header (in any case): its names, joined and lower-cased, contain neither. One search in C,
    where reading the baggage lists every name in lower case in Python. (A match across two
    names costs a reading that finds nothing.)
    """
    try:
        names = "".join([*carrier]).lower()  # [*d]: join takes a list faster than a dict
    except TypeError:  # a name that is not text
        return True
    return BAGGAGE_PREFIX in names or BAGGAGE_HEADER in names


def _read_baggage(carrier: Any, getter: Getter) -> Dict[str, str]:
    """The ``uberctx-*`` and ``jaeger-baggage`` entries, within the limits."""
    entries: Dict[str, str] = {}
    used = 0
    adhoc = False
    for name in getter.keys(carrier):
        if not name.startswith(BAGGAGE_PREFIX):
            adhoc = adhoc or name == BAGGAGE_HEADER
            continue
        values = getter.get_all(carrier, name)
        if not values or len(name) == len(BAGGAGE_PREFIX):
            continue
        raw = text(values[0])
        used += len(name) + len(raw)
        if used > MAX_BAGGAGE_BYTES or len(entries) >= MAX_BAGGAGE_ENTRIES:
            return entries
        entries[name[len(BAGGAGE_PREFIX):]] = unquote(raw, errors="replace")
    adhoc_values = getter.get_all(carrier, BAGGAGE_HEADER) if adhoc else None
    if adhoc_values:
        raw = text(adhoc_values[0])
        budget = MAX_BAGGAGE_BYTES - used
        if len(raw) > budget:  # only whole members within the budget, commas counted
            raw = raw[: max(raw.rfind(",", 0, budget + 1), 0)]
        for member in raw.split(","):
            if len(entries) >= MAX_BAGGAGE_ENTRIES:
                break
            key, sep, value = member.partition("=")
            key = key.strip(" \t")
            if sep and key:
                entries[key] = value.strip(" \t")
    return entries


def _with_baggage(context: Context, entries: Dict[str, str]) -> Context:
    """``context`` with the Jaeger baggage ``entries`` merged in.

    An entry the baggage holds already with the same value is not set again, which would drop
    its W3C properties (``with_baggage`` clears them for every key it sets). One it holds under
    a name in another case (``userId``, which Jaeger sends as ``uberctx-userid``) is skipped:
    it is there as the sender wrote it, and must not come back twice.
    """
    baggage = context[1]  # Context.baggage
    if baggage:
        lowered: Optional[Set[str]] = None  # made once, when first needed
        kept: Dict[str, str] = {}
        for key, value in entries.items():
            present = baggage.get(key)
            if present is not None:
                if present != value:
                    kept[key] = value
                continue
            if lowered is None:
                lowered = {name.lower() for name in baggage if isinstance(name, str)}
            if key.lower() not in lowered:
                kept[key] = value
        entries = kept
    return context.with_baggage(entries) if entries else context


class JaegerPropagator:
    """Jaeger's ``uber-trace-id`` and ``uberctx-*`` baggage headers."""

    # What a forwarded request loses: every Jaeger header, those only read included.
    fields: Tuple[str, ...] = (HEADER, DEBUG_ID, BAGGAGE_HEADER)
    field_prefixes: Tuple[str, ...] = (BAGGAGE_PREFIX,)

    def inject(self, context: Context, carrier: Any, setter: Setter) -> None:
        """Write ``uber-trace-id`` for a valid span context, and one ``uberctx-*`` per entry."""
        span_context = context[0].context  # Context.span
        # As B3Propagator.inject: SpanContext fields by index (0 trace_id, 1 span_id,
        # 2 trace_flags, 5 debug), format_header and is_valid inlined, the range checks left
        # to to_bytes() (OverflowError: an id negative or wider than its field, invalid).
        trace_id = span_context[0]
        span_id = span_context[1]
        if trace_id and span_id:
            try:
                trace_hex = _to_bytes(trace_id, 8 if trace_id <= _SPAN_ID_MAX else 16, "big").hex()
                span_hex = _to_bytes(span_id, 8, "big").hex()
            except OverflowError:
                pass
            else:
                flags = "3" if span_context[5] else "1" if span_context[2] & 0x01 else "0"
                value = f"{trace_hex}:{span_hex}:0:{flags}"
                if setter is DICT and type(carrier) is dict and not carrier:
                    carrier[HEADER] = value  # DICT.set, without the call
                else:
                    setter.set(carrier, HEADER, value)
        if context[1]:  # Context.baggage
            used = 0
            written = 0
            for key, value in context.baggage.items():
                if not isinstance(key, str) or not isinstance(value, str) or not key.isascii():
                    continue  # isascii: U+212A (Kelvin) lowers to "k", another key
                name = BAGGAGE_PREFIX + key.lower()
                if _NAME.fullmatch(name) is None:
                    continue  # not a name every carrier takes: W3C baggage can still carry it
                # errors="replace": a lone surrogate has no UTF-8 form and must not raise here.
                encoded = quote(value, safe="", errors="replace")
                size = len(name) + len(encoded) + HEADER_OVERHEAD
                if used + size > MAX_WRITTEN_BAGGAGE_BYTES or written >= MAX_BAGGAGE_ENTRIES:
                    continue  # a smaller entry may still fit
                used += size
                setter.set(carrier, name, encoded)
                written += 1

    def extract(self, carrier: Any, context: Context, getter: Getter) -> Context:
        """``context`` with the span context of ``uber-trace-id`` and the Jaeger baggage merged in.

        Two ``uber-trace-id`` headers are corrupt and give no span context.
        """
        if getter is DICT and type(carrier) is dict:
            value = carrier.get(HEADER)
            if type(value) is str:  # a plain dict, read directly: what DICT.get_all finds
                # Read inline, as extract runs on every request and a call costs as much as the
                # reading: what this module and Jaeger clients write, "{32 or 16 hex}:{16 hex}:
                # 0:{hex}", is without its colons the hex of one number, which a2b_hex checks
                # strictly (no sign, blank or "0x", as int() would take) and from_bytes reads.
                # Anything else goes to parse().
                number = 0
                size = len(value)
                if ((size == 53 and value[32] == ":" and value[49:52] == ":0:")
                        or (size == 37 and value[16] == ":" and value[33:36] == ":0:")):
                    digits = value.replace(":", "")
                    if len(digits) == size - 3:  # exactly the three separators checked above
                        try:
                            number = _from_bytes(_a2b_hex(digits), "big")
                        except ValueError:  # not only hex digits: parse() decides
                            pass
                if number:
                    trace_id = number >> 72  # above the span id and the "0" and flags digits
                    span_id = (number >> 8) & _SPAN_ID_MAX
                    if trace_id and span_id:
                        flags = number & 0x0F
                        context = context.with_remote_parent(
                            trace_id, span_id, _SAMPLED[flags], _NO_STATE, _DEBUG[flags])
                else:
                    parsed = parse(value)
                    if parsed is not None:
                        context = context.with_span_context(parsed)
                # _may_hold_baggage, inlined.
                try:
                    names = "".join([*carrier]).lower()
                except TypeError:  # a name that is not text
                    names = BAGGAGE_PREFIX
                if BAGGAGE_PREFIX not in names and BAGGAGE_HEADER not in names:
                    return context
                return _with_baggage(context, _read_baggage(carrier, getter))
        values = getter.get_all(carrier, HEADER)
        parsed = None
        if len(values) == 1:
            parsed = parse(text(values[0]))
        elif not values and getter.get_all(carrier, DEBUG_ID):
            parsed = remote_span_context(0, 0, 0x01, _NO_STATE, True)
        if parsed is not None:
            context = context.with_span_context(parsed)
        if getter is DICT and type(carrier) is dict and not _may_hold_baggage(carrier):
            return context
        return _with_baggage(context, _read_baggage(carrier, getter))

    def __repr__(self) -> str:
        return "JaegerPropagator()"


__all__ = ["JaegerPropagator", "format_header", "parse"]
