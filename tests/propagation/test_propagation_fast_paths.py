"""The plain-dict fast paths: reading and writing a ``dict`` through ``DICT`` directly gives
exactly what the general Getter/Setter path gives, for every carrier, hostile ones included."""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, Iterable, List, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tracing_api_propagation import (
    B3MultiPropagator,
    B3Propagator,
    CloudTracePropagator,
    GrpcBinaryPropagator,
    JaegerPropagator,
)

from tracing_api import SpanContext, TraceState
from tracing_api.context import EMPTY_CONTEXT, Context
from tracing_api.propagation import DICT, Propagator, Value, lower_case_names
from tracing_api.w3c import BaggagePropagator, TraceContextPropagator

EXAMPLES = int(os.environ.get("TRACING_FUZZ_EXAMPLES", "200"))
fuzz = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

FORMATS: Dict[str, Callable[[], Propagator]] = {
    "b3": B3Propagator, "b3multi": B3MultiPropagator, "cloud_trace": CloudTracePropagator,
    "grpc_binary": GrpcBinaryPropagator, "jaeger": JaegerPropagator,
    "tracecontext": TraceContextPropagator, "baggage": BaggagePropagator,
}
NAMES = ["traceparent", "tracestate", "baggage", "b3", "x-b3-traceid", "x-b3-spanid",
         "x-b3-sampled", "x-b3-flags", "x-b3-parentspanid", "x-cloud-trace-context",
         "grpc-trace-bin", "uber-trace-id", "jaeger-debug-id", "jaeger-baggage", "uberctx-k",
         "host"]
VALID = ["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "congo=t61rcWkgMzE",
         "k=v,w=DF%2028", "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
         "a3ce929d0e0e4736-00f067aa0ba902b7-d", "4bf92f3577b34da6a3ce929d0e0e4736",
         "a3ce929d0e0e4736", "00f067aa0ba902b7", "1", "0", "d", "true",
         "4bf92f3577b34da6a3ce929d0e0e4736/12345;o=1", "AEv5LzV3s02mo86SnQ4ORzYBAPBnqguhArcCAQ",
         "4bf92f3577b34da6a3ce929d0e0e4736:00f067aa0ba902b7:0:1", "0000000000000000", ""]


class GeneralGetter:
    """DICT behind another object: propagators take the general path for it."""

    def get_all(self, carrier: Any, key: str) -> List[Value]:
        return DICT.get_all(carrier, key)

    def keys(self, carrier: Any) -> Iterable[str]:
        return DICT.keys(carrier)

    def set(self, carrier: Any, key: str, value: Value) -> None:
        DICT.set(carrier, key, value)


GENERAL = GeneralGetter()


def _near_valid(value: str) -> st.SearchStrategy[str]:
    """``value`` and small corruptions of it: upper case, whitespace, one character changed."""
    def corrupt(args: Tuple[int, int, str]) -> str:
        kind, position, char = args
        if not value:
            return char
        position %= len(value)
        if kind == 0:
            return value.upper()
        if kind == 1:
            return " " + value + "\t"
        return value[:position] + char + value[position + 1:]
    return st.one_of(st.just(value), st.tuples(st.integers(0, 2), st.integers(0, 80),
                                                st.characters()).map(corrupt))


def _with_separators(args: Tuple[bool, str, List[int]]) -> str:
    """A Jaeger value of a length the fast path reads (37 or 53 characters, separators where it
    looks for them) with more ``:`` put in at ``extra`` positions: one number, hex-wise, in
    more than four fields."""
    long, digits, extra = args
    trace = digits[:32 if long else 16]
    value = list(f"{trace}:{digits[32:48]}:0:{digits[48]}")
    for position in extra:
        value[position % len(value)] = ":"
    return "".join(value)


jaeger_like = st.tuples(
    st.booleans(), st.text("0123456789abcdefABCDEF", min_size=49, max_size=49),
    st.lists(st.integers(0, 52), max_size=3),
).map(_with_separators)

header_values = st.one_of(
    st.sampled_from(VALID).flatmap(_near_valid),
    jaeger_like,
    st.text(max_size=80),
    st.binary(max_size=40),
    st.lists(st.sampled_from(VALID), max_size=2),
    st.none(),
)
header_names = st.sampled_from(NAMES).flatmap(
    lambda name: st.sampled_from([name, name.upper(), name.title()]))
carriers = st.dictionaries(header_names, header_values, max_size=8)


def _same(fast: Context, general: Context) -> None:
    assert fast.span.context == general.span.context
    assert dict(fast.baggage) == dict(general.baggage)
    assert dict(fast.baggage_properties) == dict(general.baggage_properties)


@fuzz
@given(carrier=carriers, name=st.sampled_from(sorted(FORMATS)))
def test_extract_from_a_dict_directly_equals_the_general_path(carrier: Dict[str, Any], name: str) -> None:
    propagator = FORMATS[name]()
    _same(propagator.extract(carrier, EMPTY_CONTEXT, DICT),
          propagator.extract(carrier, EMPTY_CONTEXT, GENERAL))


@fuzz
@given(
    trace_id=st.one_of(st.integers(0, 2**64), st.integers(0, 2**128)),
    span_id=st.integers(0, 2**64 - 1),
    flags=st.integers(0, 3), debug=st.booleans(), deferred=st.booleans(),
    existing=st.dictionaries(header_names, st.text(max_size=5), max_size=3),
    name=st.sampled_from(sorted(FORMATS)),
)
def test_inject_into_a_dict_directly_equals_the_general_path(
    trace_id: int, span_id: int, flags: int, debug: bool, deferred: bool,
    existing: Dict[str, str], name: str,
) -> None:
    state = TraceState([("congo", "t61rcWkgMzE")])
    context = EMPTY_CONTEXT.with_span_context(
        SpanContext(trace_id, span_id, flags, state, True, debug, deferred)
    ).with_baggage({"k": "a b"})
    fast, general = dict(existing), dict(existing)
    FORMATS[name]().inject(context, fast, DICT)
    FORMATS[name]().inject(context, general, GENERAL)
    assert fast == general


@fuzz
@given(value=jaeger_like)
def test_jaeger_extract_from_a_dict_equals_the_general_path_with_extra_separators(value: str) -> None:
    carrier = {"uber-trace-id": value}
    _same(JaegerPropagator().extract(carrier, EMPTY_CONTEXT, DICT),
          JaegerPropagator().extract(carrier, EMPTY_CONTEXT, GENERAL))


@pytest.mark.parametrize("value", ["aaaaaaaaaaaa:1:1:bbbbbbbbbbbbbbbb:0:1",
                                   "a" * 28 + ":1:1:" + "b" * 16 + ":0:1"])
def test_jaeger_extract_from_a_dict_refuses_six_fields_of_a_valid_length(value: str) -> None:
    assert not JaegerPropagator().extract({"uber-trace-id": value}, EMPTY_CONTEXT, DICT).span.context.is_valid


def test_extract_from_a_dict_finds_a_header_in_another_case() -> None:
    carrier = {"Host": "example.com", "X-B3-TraceId": "a3ce929d0e0e4736",
               "X-B3-SpanId": "00f067aa0ba902b7", "X-B3-Flags": "1"}
    received = B3MultiPropagator().extract(carrier, EMPTY_CONTEXT, DICT).span.context
    assert (received.trace_id, received.span_id, received.debug) == (
        0xA3CE929D0E0E4736, 0x00F067AA0BA902B7, True)


def test_extract_from_a_dict_prefers_b3_in_another_case_over_multi_headers() -> None:
    carrier = {"B3": "a3ce929d0e0e4736-00f067aa0ba902b7-0", "x-b3-traceid": "1" * 16,
               "x-b3-spanid": "2" * 16, "x-b3-sampled": "1"}
    received = B3MultiPropagator().extract(carrier, EMPTY_CONTEXT, DICT).span.context
    assert received.trace_id == 0xA3CE929D0E0E4736 and not received.sampled


def test_inject_into_a_dict_replaces_a_header_in_another_case() -> None:
    carrier = {"Traceparent": "stale"}
    TraceContextPropagator().inject(
        EMPTY_CONTEXT.with_span_context(SpanContext(1, 2, 1, is_remote=True)), carrier, DICT)
    assert carrier == {"traceparent": "00-00000000000000000000000000000001-0000000000000002-01"}


def test_lower_case_names_is_true_for_lower_case_text_names() -> None:
    assert lower_case_names({"traceparent": "x", "x-b3-traceid": "y", "": "z"})


def test_lower_case_names_is_false_for_a_name_in_another_case() -> None:
    assert not lower_case_names({"traceparent": "x", "Host": "y"})


def test_lower_case_names_is_false_for_a_name_that_is_not_text() -> None:
    assert not lower_case_names({"traceparent": "x", b"b3": "y"})


def test_lower_case_names_is_false_for_a_kelvin_sign_that_lowers_to_k() -> None:
    assert not lower_case_names({"uberctx-\u212a": "x"})
