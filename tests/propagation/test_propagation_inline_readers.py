"""The readers inlined into Jaeger's and W3C baggage's extract give exactly what the reference
parsers give (``jaeger.parse``, the general baggage loop, ``urllib.parse.unquote``), hostile
values included."""

from __future__ import annotations

import os
from typing import List, Tuple
from urllib.parse import unquote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tracing_api_propagation import JaegerPropagator, jaeger

from tracing_api import SpanContext
from tracing_api.context import EMPTY_CONTEXT
from tracing_api.propagation import DICT
from tracing_api.w3c import BaggagePropagator, parse_baggage

EXAMPLES = int(os.environ.get("TRACING_FUZZ_EXAMPLES", "200"))
fuzz = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

HEX = "0123456789abcdefABCDEF"
OTHER = {"host": "example.com", "accept": "*/*"}


def _hex(size: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=HEX, min_size=size, max_size=size)


def _corrupt(args: Tuple[str, int, str]) -> str:
    value, position, char = args
    position %= len(value) + 1
    return value[:position] + char + value[position + 1:]


# The forms read inline (32 or 16 hex trace id, "0" parent, one flags digit), forms next to
# them (other widths, parents, two flags digits, zero ids) and corruptions of all of these.
uber_values = st.builds(
    lambda trace, span, parent, flags: f"{trace}:{span}:{parent}:{flags}",
    st.one_of(_hex(32), _hex(16), _hex(31), st.just("0" * 32), st.just("0" * 16)),
    st.one_of(_hex(16), _hex(15), st.just("0" * 16)),
    st.sampled_from(["0", "00", "1", "a3ce929d0e0e4736"]),
    st.one_of(_hex(1), _hex(2)),
)
hostile_uber_values = st.one_of(
    uber_values,
    st.tuples(uber_values, st.integers(0, 60),
              st.sampled_from([":", " ", "\t", "%", "g", "x", "_", "+", "-", "\u0663", "\xe9", ""]))
    .map(_corrupt),
    uber_values.map(lambda value: value.replace(":", "%3A")),
    uber_values.map(lambda value: " " + value + "\t"),
    st.text(max_size=60),
)


def _extracted(value: str) -> SpanContext:
    carrier = {**OTHER, "uber-trace-id": value}
    return JaegerPropagator().extract(carrier, EMPTY_CONTEXT, DICT).span.context


@fuzz
@given(value=hostile_uber_values)
def test_jaeger_extract_from_a_dict_equals_parse(value: str) -> None:
    expected = jaeger.parse(value)
    assert _extracted(value) == (EMPTY_CONTEXT.span.context if expected is None else expected)


def test_jaeger_extract_reads_a_32_character_trace_id() -> None:
    received = _extracted("4bf92f3577b34da6a3ce929d0e0e4736:00f067aa0ba902b7:0:1")
    assert received == SpanContext(0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7, 0x01,
                                   is_remote=True)


def test_jaeger_extract_reads_a_16_character_trace_id_in_upper_case() -> None:
    received = _extracted("A3CE929D0E0E4736:00F067AA0BA902B7:0:0")
    assert received == SpanContext(0xA3CE929D0E0E4736, 0x00F067AA0BA902B7, 0, is_remote=True)


def test_jaeger_extract_reads_debug_flags_as_debug_and_sampled() -> None:
    received = _extracted("4bf92f3577b34da6a3ce929d0e0e4736:00f067aa0ba902b7:0:3")
    assert (received.sampled, received.debug) == (True, True)


def test_jaeger_extract_of_a_zero_span_id_gives_no_parent() -> None:
    received = _extracted("4bf92f3577b34da6a3ce929d0e0e4736:0000000000000000:0:1")
    assert not received.is_valid


def test_jaeger_extract_refuses_a_0x_prefix_that_int_would_take() -> None:
    received = _extracted("0x00000000000000000000000000000a:00f067aa0ba902b7:0:1")
    assert not received.is_valid


def test_jaeger_extract_reads_baggage_named_in_upper_case_beside_the_trace_id() -> None:
    carrier = {**OTHER, "uber-trace-id": "4bf92f3577b34da6a3ce929d0e0e4736:00f067aa0ba902b7:0:1",
               "UBERCTX-User": "alice"}
    context = JaegerPropagator().extract(carrier, EMPTY_CONTEXT, DICT)
    assert dict(context.baggage) == {"user": "alice"}


# ---------------------------------------------------------------------------------- W3C baggage

BAGGAGE_OCTETS = "".join(
    chr(c) for c in range(0x21, 0x7F) if chr(c) not in '",;\\'
)
TOKEN = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

baggage_values = st.one_of(
    st.text(alphabet=BAGGAGE_OCTETS, max_size=20),
    # Mostly escapes, well formed or not: "%" then hex digits, or not.
    st.lists(st.one_of(st.sampled_from(["%", "%2", "%20", "%e2%82%ac", "%C3", "%zz", "%%", "x"]),
                       _hex(2).map(lambda digits: "%" + digits)), max_size=6).map("".join),
)
members = st.lists(st.tuples(st.text(alphabet=TOKEN, min_size=1, max_size=8), baggage_values),
                   min_size=1, max_size=6)


@fuzz
@given(value=baggage_values)
def test_baggage_value_decodes_as_unquote_does(value: str) -> None:
    assert parse_baggage([f"k={value}"])[0] == {"k": unquote(value, errors="replace")}


def test_baggage_value_ending_in_a_percent_sign_keeps_it() -> None:
    assert parse_baggage(["k=a%,w=%"])[0] == {"k": "a%", "w": "%"}


@fuzz
@given(pairs=members)
def test_baggage_usual_form_reads_as_the_general_form(pairs: List[Tuple[str, str]]) -> None:
    usual = ",".join(f"{key}={value}" for key, value in pairs)
    spaced = " , ".join(f"{key} = {value}" for key, value in pairs)  # read by the general loop
    assert parse_baggage([usual]) == parse_baggage([spaced])


@fuzz
@given(pairs=members)
def test_baggage_extract_from_a_dict_equals_parse_baggage(pairs: List[Tuple[str, str]]) -> None:
    header = ",".join(f"{key}={value}" for key, value in pairs)
    context = BaggagePropagator().extract({**OTHER, "baggage": header}, EMPTY_CONTEXT, DICT)
    entries, properties = parse_baggage([header])
    assert (dict(context.baggage), dict(context.baggage_properties)) == (entries, properties)


def test_baggage_extract_from_a_dict_merges_into_existing_baggage() -> None:
    base = EMPTY_CONTEXT.with_baggage({"a": "1", "b": "2"})
    context = BaggagePropagator().extract({"baggage": "b=3,c=DF%2028"}, base, DICT)
    assert dict(context.baggage) == {"a": "1", "b": "3", "c": "DF 28"}
