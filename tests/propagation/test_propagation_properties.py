"""Property tests: inject then extract gives back what each format can say, for every valid
context; extract never raises and never returns an invalid context, whatever arrives."""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, List

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
from tracing_api.propagation import DICT, PAIRS, Propagator
from tracing_api.w3c import BaggagePropagator, TraceContextPropagator

EXAMPLES = int(os.environ.get("TRACING_FUZZ_EXAMPLES", "200"))
fuzz = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

FORMATS: Dict[str, Callable[[], Propagator]] = {
    "b3": B3Propagator, "b3multi": B3MultiPropagator, "cloud_trace": CloudTracePropagator,
    "grpc_binary": GrpcBinaryPropagator, "jaeger": JaegerPropagator,
    "tracecontext": TraceContextPropagator,
}
NO_STATE = TraceState()

# Ids of every width: small numbers, 64-bit (high half zero), full 128-bit, and the edges.
trace_ids = st.one_of(st.integers(1, 2**64 - 1), st.integers(1, 2**128 - 1), st.integers(1, 300),
                      st.sampled_from([1, 2**64 - 1, 2**64, 2**128 - 1]))
span_ids = st.one_of(st.integers(1, 2**64 - 1), st.integers(1, 300),
                     st.sampled_from([1, 2**64 - 1]))
decisions = st.sampled_from(["sampled", "not sampled", "debug", "deferred"])
state_keys = st.from_regex(r"[a-z][a-z0-9_\-*/]{0,15}(@[a-z][a-z0-9_\-*/]{0,5})?", fullmatch=True)
state_values = st.from_regex(r"[\x21-\x2b\x2d-\x3c\x3e-\x7e]([\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,20}"
                             r"[\x21-\x2b\x2d-\x3c\x3e-\x7e])?", fullmatch=True)
trace_states = st.lists(st.tuples(state_keys, state_values), max_size=6,
                        unique_by=lambda kv: kv[0]).map(TraceState)


@st.composite
def span_contexts(draw: Any) -> SpanContext:
    decision = draw(decisions)
    random_flag = draw(st.sampled_from([0, 0x02]))
    sampled = 0x01 if decision in ("sampled", "debug") else 0
    return SpanContext(draw(trace_ids), draw(span_ids), sampled | random_flag,
                       draw(trace_states), True, decision == "debug", decision == "deferred")


def expressible(name: str, sent: SpanContext) -> SpanContext:
    """What ``name`` can carry of ``sent``: the documented cross-format choices."""
    sampled = sent.trace_flags & 0x01
    if name == "tracecontext":  # flags and trace state; no debug, no "no decision"
        return sent._replace(debug=False, deferred=False)
    if name in ("b3", "b3multi"):  # every decision; no random flag, no trace state
        return sent._replace(trace_flags=sampled, trace_state=NO_STATE)
    if name == "jaeger":  # debug kept; "no decision" is written as not sampled
        return sent._replace(trace_flags=sampled, trace_state=NO_STATE, deferred=False)
    if name == "cloud_trace":  # "no decision" kept; debug is written as sampled
        return sent._replace(trace_flags=sampled, trace_state=NO_STATE, debug=False)
    return sent._replace(trace_flags=sampled, trace_state=NO_STATE, debug=False, deferred=False)


def _round_trip(name: str, sent: SpanContext, carrier: Any, getter: Any) -> SpanContext:
    propagator = FORMATS[name]()
    propagator.inject(EMPTY_CONTEXT.with_span_context(sent), carrier, getter)
    return propagator.extract(carrier, EMPTY_CONTEXT, getter).span.context


def _check_round_trip(name: str, sent: SpanContext) -> None:
    assert _round_trip(name, sent, {}, DICT) == expressible(name, sent)
    assert _round_trip(name, sent, [(b"host", b"x")], PAIRS) == expressible(name, sent)


@fuzz
@given(span_contexts())
def test_b3_round_trip(sent: SpanContext) -> None:
    _check_round_trip("b3", sent)


@fuzz
@given(span_contexts())
def test_b3multi_round_trip(sent: SpanContext) -> None:
    _check_round_trip("b3multi", sent)


@fuzz
@given(span_contexts())
def test_cloud_trace_round_trip(sent: SpanContext) -> None:
    _check_round_trip("cloud_trace", sent)


@fuzz
@given(span_contexts())
def test_grpc_binary_round_trip(sent: SpanContext) -> None:
    _check_round_trip("grpc_binary", sent)


@fuzz
@given(span_contexts())
def test_jaeger_round_trip(sent: SpanContext) -> None:
    _check_round_trip("jaeger", sent)


@fuzz
@given(span_contexts())
def test_tracecontext_round_trip(sent: SpanContext) -> None:
    _check_round_trip("tracecontext", sent)


@fuzz
@given(st.sampled_from(["0", "1", "d"]))
def test_b3_sampling_only_round_trip(value: str) -> None:
    for name in ("b3", "b3multi"):
        received = FORMATS[name]().extract({"b3": value}, EMPTY_CONTEXT, DICT)
        assert _round_trip(name, received.span.context, {}, DICT) == received.span.context


printable_values = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
tokens = st.from_regex(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,20}", fullmatch=True)
jaeger_keys = st.from_regex(r"[a-z0-9][a-z0-9\-_]{0,19}", fullmatch=True)


@fuzz
@given(st.dictionaries(tokens, printable_values, max_size=8))
def test_w3c_baggage_round_trip(entries: Dict[str, str]) -> None:
    carrier: Dict[str, Any] = {}
    BaggagePropagator().inject(EMPTY_CONTEXT.with_baggage(entries), carrier, DICT)
    received = BaggagePropagator().extract(carrier, EMPTY_CONTEXT, DICT)
    assert dict(received.baggage) == entries


@fuzz
@given(st.dictionaries(jaeger_keys, printable_values, max_size=8), span_contexts())
def test_jaeger_baggage_round_trip(entries: Dict[str, str], sent: SpanContext) -> None:
    carrier: Dict[str, Any] = {}
    context = EMPTY_CONTEXT.with_span_context(sent).with_baggage(entries)
    JaegerPropagator().inject(context, carrier, DICT)
    received = JaegerPropagator().extract(carrier, EMPTY_CONTEXT, DICT)
    assert dict(received.baggage) == entries


# ------------------------------------------------------------------------------------ hostile

HEADER_NAMES = ["traceparent", "tracestate", "baggage", "b3", "x-b3-traceid", "x-b3-spanid",
                "x-b3-parentspanid", "x-b3-sampled", "x-b3-flags", "x-cloud-trace-context",
                "grpc-trace-bin", "uber-trace-id", "uberctx-k", "jaeger-debug-id",
                "jaeger-baggage", "TraceParent", "B3", "Uber-Trace-Id"]


def _near_valid() -> st.SearchStrategy[str]:
    """Mutations of valid values: the inputs most likely to slip through a parser."""
    valid = st.sampled_from([
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90", "d", "0",
        "105445aa7843bc8bf206b12000100000/789;o=1", "100:7f:0:1", "100%3A7f%3A0%3A3",
        "AABL+S81d7NNpqPOkp0ADkc2ATTwZ6oLqQK3AgE", "a=b,c=d;p", "0000000000000000",
        "e457b5a2e4d86bd1", "1", "true",
    ])
    return st.tuples(valid, st.integers(0, 60), st.text(max_size=4), st.integers(0, 3)).map(
        lambda t: _mutate(*t))


def _mutate(value: str, at: int, insert: str, how: int) -> str:
    at = min(at, len(value))
    if how == 0:
        return value[:at] + insert + value[at:]
    if how == 1:
        return value[:at] + insert + value[at + 1:]
    if how == 2:
        return value[:at]
    return value.upper() if at % 2 else " \t" + value + " "


header_values = st.one_of(st.text(max_size=80), st.binary(max_size=80), _near_valid(),
                          st.binary(min_size=27, max_size=40).map(lambda b: b"\x00\x00" + b[2:]),
                          st.just("9" * 100_000), st.just(b"\x00" * 100_000))
hostile_carriers = st.dictionaries(st.sampled_from(HEADER_NAMES),
                                   st.one_of(header_values, st.lists(header_values, max_size=3)),
                                   max_size=6)


def _acceptable(context: Context) -> bool:
    """Valid and remote, or a remote sampling-only decision, or nothing at all."""
    span_context = context.span.context
    if span_context.is_valid:
        return span_context.is_remote
    if span_context.trace_id == 0 and span_context.span_id == 0:
        return not span_context.deferred and (span_context.is_remote or span_context == SpanContext(0, 0))
    return False


@fuzz
@given(hostile_carriers)
def test_extract_never_raises_nor_returns_invalid_context(carrier: Dict[str, Any]) -> None:
    for name, make in FORMATS.items():
        context = make().extract(carrier, EMPTY_CONTEXT, DICT)
        assert _acceptable(context), (name, context)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in context.baggage.items())
    BaggagePropagator().extract(carrier, EMPTY_CONTEXT, DICT)


@fuzz
@given(hostile_carriers)
def test_extract_from_pairs_never_raises(carrier: Dict[str, Any]) -> None:
    pairs: List[Any] = []
    for key, value in carrier.items():
        for one in value if isinstance(value, list) else [value]:
            pairs.append((key.encode("latin-1"), one if isinstance(one, bytes) else
                          one.encode("utf-8", "surrogatepass")))
    for make in FORMATS.values():
        assert _acceptable(make().extract(pairs, EMPTY_CONTEXT, PAIRS))


def test_extract_ignores_huge_values_without_reading_them() -> None:
    huge = "1" * 10_000_000
    carrier = {name: huge for name in HEADER_NAMES}
    for make in [*FORMATS.values(), BaggagePropagator]:
        context = make().extract(carrier, EMPTY_CONTEXT, DICT)
        assert context.span.context == SpanContext(0, 0)


# Ids anywhere an application could put them: negative, zero, in range, one past the widest.
any_ids = st.one_of(st.integers(-(2**129), 2**129), st.sampled_from([-1, 0, 2**64, 2**128]))


@fuzz
@given(trace_id=any_ids, span_id=any_ids, decision=decisions, name=st.sampled_from(sorted(FORMATS)))
def test_inject_writes_ids_only_for_a_valid_context_and_never_raises(
    trace_id: int, span_id: int, decision: str, name: str,
) -> None:
    flags = 0x01 if decision in ("sampled", "debug") else 0
    deferred = decision == "deferred"
    sent = SpanContext(trace_id, span_id, flags, NO_STATE, True, decision == "debug", deferred)
    sampling_only = trace_id == 0 and span_id == 0 and not deferred
    for carrier, getter in (({}, DICT), ([], PAIRS)):
        FORMATS[name]().inject(EMPTY_CONTEXT.with_span_context(sent), carrier, getter)
        got = FORMATS[name]().extract(carrier, EMPTY_CONTEXT, getter).span.context
        if sent.is_valid:
            assert got == expressible(name, sent)
        elif not sampling_only:  # a sampling-only decision may travel (B3, Jaeger debug)
            assert not carrier, (name, carrier)
            assert got == SpanContext(0, 0)
