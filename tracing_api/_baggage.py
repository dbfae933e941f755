"""W3C Baggage: the ``baggage`` header, read and written to the letter of the specification
(values percent-encoded: a space is ``%20``, ``+`` is a plus; at most 8,192 bytes and 180
members are read, the excess dropped, never parsed). Public names live in ``tracing_api.w3c``.
"""

from __future__ import annotations

import binascii
import codecs
import re
from types import MappingProxyType
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import quote

from .context import EMPTY_BAGGAGE, Context
from .propagation import DICT, Getter, Setter, Value, lower_case_names, text

# Not in the documented codecs API, but what pickle itself calls to read protocol-0 strings:
# decodes backslash escapes in bytes to bytes, in C. Should a Python lack it, values are
# decoded piece by piece (see _percent_decode).
_escape_decode: Optional[Callable[[bytes], Tuple[bytes, int]]] = getattr(
    codecs, "escape_decode", None
)
_tuple_new = tuple.__new__
_a2b_hex = binascii.a2b_hex
_OWS = " \t"

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
