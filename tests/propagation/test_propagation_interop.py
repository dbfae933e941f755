"""Interop with the reference implementations (OpenTelemetry Python's propagators, test-only):
our inject then their extract, and theirs then ours, agree for every valid context.

Where a peer diverges from its specification (listed in FORMATS.md), an explicit test shows
the specification's behaviour, which is ours, and names the divergence. The property tests
leave those cases out of the comparison and say so.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import baggage as otel_baggage
from opentelemetry import trace as otel
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context as OtelContext
from opentelemetry.propagators.b3 import B3MultiFormat, B3SingleFormat
from opentelemetry.propagators.jaeger import JaegerPropagator as OtelJaeger
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from tracing_api_propagation import B3MultiPropagator, B3Propagator, JaegerPropagator

from tracing_api import SpanContext, TraceState
from tracing_api.context import EMPTY_CONTEXT
from tracing_api.propagation import DICT, Propagator
from tracing_api.w3c import BaggagePropagator, TraceContextPropagator

EXAMPLES = int(os.environ.get("TRACING_FUZZ_EXAMPLES", "200"))
fuzz = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

trace_ids = st.one_of(st.integers(1, 2**64 - 1), st.integers(1, 2**128 - 1),
                      st.sampled_from([1, 2**64 - 1, 2**64, 2**128 - 1]))
span_ids = st.one_of(st.integers(1, 2**64 - 1), st.sampled_from([1, 2**64 - 1]))
state_keys = st.from_regex(r"[a-z][a-z0-9_\-*/]{0,15}(@[a-z][a-z0-9_\-*/]{0,5})?", fullmatch=True)
state_values = st.from_regex(r"[\x21-\x2b\x2d-\x3c\x3e-\x7e]([\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,20}"
                             r"[\x21-\x2b\x2d-\x3c\x3e-\x7e])?", fullmatch=True)
trace_states = st.lists(st.tuples(state_keys, state_values), max_size=6,
                        unique_by=lambda kv: kv[0])
# Keys OpenTelemetry's quote_plus leaves alone; values without "+" and without surrounding
# whitespace: OpenTelemetry's baggage decodes "+" as a space and strips values (see below).
baggage_keys = st.from_regex(r"[A-Za-z0-9_.\-~]{1,16}", fullmatch=True)
baggage_values = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="+"),
                         max_size=30).map(str.strip)
baggages = st.dictionaries(baggage_keys, baggage_values, max_size=6)
# The keys our Jaeger propagator writes: what a gRPC metadata name may hold after "uberctx-".
jaeger_baggages = st.dictionaries(st.from_regex(r"[a-z0-9_.\-]{1,16}", fullmatch=True),
                                  baggage_values, max_size=6)


def _ours(carrier: Dict[str, Any], propagator: Propagator) -> SpanContext:
    return propagator.extract(carrier, EMPTY_CONTEXT, DICT).span.context


def _theirs(carrier: Dict[str, Any], propagator: Any) -> Tuple[int, int, int, Any]:
    context = otel.get_current_span(propagator.extract(carrier)).get_span_context()
    return context.trace_id, context.span_id, int(context.trace_flags), context.trace_state


def _their_context(trace_id: int, span_id: int, flags: int, state: Any = ()) -> OtelContext:
    span_context = otel.SpanContext(trace_id, span_id, True, otel.TraceFlags(flags),
                                    otel.TraceState(list(state)))
    return otel.set_span_in_context(otel.NonRecordingSpan(span_context))


def _inject_ours(propagator: Any, span_context: SpanContext, **baggage: str) -> Dict[str, Any]:
    carrier: Dict[str, Any] = {}
    context = EMPTY_CONTEXT.with_span_context(span_context)
    if baggage:
        context = context.with_baggage(baggage)
    propagator.inject(context, carrier, DICT)
    return carrier


# ------------------------------------------------------------------------------------- W3C


@fuzz
@given(trace_ids, span_ids, st.integers(0, 3), trace_states)
def test_w3c_ours_to_theirs(trace_id: int, span_id: int, flags: int, state: Any) -> None:
    sent = SpanContext(trace_id, span_id, flags, TraceState(state), is_remote=True)
    carrier = _inject_ours(TraceContextPropagator(), sent)
    got = _theirs(carrier, TraceContextTextMapPropagator())
    assert got[:3] == (trace_id, span_id, flags)
    assert list(got[3].items()) == state


@fuzz
@given(trace_ids, span_ids, st.integers(0, 3), trace_states)
def test_w3c_theirs_to_ours(trace_id: int, span_id: int, flags: int, state: Any) -> None:
    carrier: Dict[str, Any] = {}
    TraceContextTextMapPropagator().inject(carrier, _their_context(trace_id, span_id, flags, state))
    assert _ours(carrier, TraceContextPropagator()) == SpanContext(
        trace_id, span_id, flags, TraceState(state), is_remote=True)


@fuzz
@given(baggages)
def test_w3c_baggage_ours_to_theirs(entries: Dict[str, str]) -> None:
    carrier: Dict[str, Any] = {}
    BaggagePropagator().inject(EMPTY_CONTEXT.with_baggage(entries), carrier, DICT)
    assert dict(otel_baggage.get_all(W3CBaggagePropagator().extract(carrier))) == entries


@fuzz
@given(baggages.map(lambda d: {k: v for k, v in d.items() if " " not in v}))
def test_w3c_baggage_theirs_to_ours(entries: Dict[str, str]) -> None:
    """Values without spaces: OpenTelemetry writes a space as "+" (see the divergence test)."""
    context = OtelContext()
    for key, value in entries.items():
        context = otel_baggage.set_baggage(key, value, context)
    carrier: Dict[str, Any] = {}
    W3CBaggagePropagator().inject(carrier, context)
    assert dict(BaggagePropagator().extract(carrier, EMPTY_CONTEXT, DICT).baggage) == entries


def test_w3c_baggage_space_is_percent_20_not_plus_where_opentelemetry_diverges() -> None:
    """Spec: a space is %20 and "+" is a literal plus. OpenTelemetry uses quote_plus."""
    carrier: Dict[str, Any] = {}
    BaggagePropagator().inject(EMPTY_CONTEXT.with_baggage({"serverNode": "DF 28", "op": "a+b"}),
                               carrier, DICT)
    assert carrier["baggage"] == "serverNode=DF%2028,op=a+b"
    theirs = dict(otel_baggage.get_all(W3CBaggagePropagator().extract(carrier)))
    assert theirs == {"serverNode": "DF 28", "op": "a b"}  # divergence: "+" read as a space
    their_carrier: Dict[str, Any] = {}
    W3CBaggagePropagator().inject(their_carrier, otel_baggage.set_baggage("serverNode", "DF 28"))
    assert their_carrier["baggage"] == "serverNode=DF+28"  # divergence: space written as "+"
    ours = BaggagePropagator().extract(their_carrier, EMPTY_CONTEXT, DICT).baggage
    assert dict(ours) == {"serverNode": "DF+28"}


def test_w3c_baggage_properties_are_kept_apart_where_opentelemetry_folds_them_in() -> None:
    carrier = {"baggage": "k=a%20b;prop=1"}
    ours = BaggagePropagator().extract(carrier, EMPTY_CONTEXT, DICT)
    assert dict(ours.baggage) == {"k": "a b"} and dict(ours.baggage_properties) == {"k": "prop=1"}
    theirs = dict(otel_baggage.get_all(W3CBaggagePropagator().extract(carrier)))
    assert theirs == {"k": "a b;prop=1"}  # divergence: the property becomes part of the value


# -------------------------------------------------------------------------------------- B3

decisions = st.sampled_from(["sampled", "not sampled", "debug", "deferred"])


def _b3_context(trace_id: int, span_id: int, decision: str) -> SpanContext:
    return SpanContext(trace_id, span_id, 1 if decision in ("sampled", "debug") else 0,
                       is_remote=True, debug=decision == "debug", deferred=decision == "deferred")


@pytest.mark.parametrize("pair", [(B3Propagator, B3SingleFormat), (B3MultiPropagator, B3MultiFormat)],
                         ids=["b3", "b3multi"])
@fuzz
@given(trace_ids, span_ids, st.sampled_from(["sampled", "not sampled"]))
def test_b3_ours_to_theirs(pair: Any, trace_id: int, span_id: int, decision: str) -> None:
    ours, theirs = pair
    carrier = _inject_ours(ours(), _b3_context(trace_id, span_id, decision))
    assert _theirs(carrier, theirs())[:3] == (trace_id, span_id, int(decision == "sampled"))


@pytest.mark.parametrize("pair", [(B3Propagator, B3SingleFormat), (B3MultiPropagator, B3MultiFormat)],
                         ids=["b3", "b3multi"])
@fuzz
@given(trace_ids, span_ids, st.booleans())
def test_b3_theirs_to_ours(pair: Any, trace_id: int, span_id: int, sampled: bool) -> None:
    ours, theirs = pair
    carrier: Dict[str, Any] = {}
    theirs().inject(carrier, _their_context(trace_id, span_id, int(sampled)))
    assert _ours(carrier, ours()) == SpanContext(trace_id, span_id, int(sampled), is_remote=True)


def test_b3_debug_survives_a_hop_where_opentelemetry_loses_it() -> None:
    carrier = _inject_ours(B3Propagator(), _b3_context(1, 2, "debug"))
    assert carrier == {"b3": "0000000000000001-0000000000000002-d"}
    assert _ours(carrier, B3Propagator()).debug
    relayed: Dict[str, Any] = {}
    B3SingleFormat().inject(relayed, B3SingleFormat().extract(carrier))
    assert relayed["b3"].endswith("-1")  # divergence: OpenTelemetry writes debug as plain sampled


def test_b3_deferred_decision_survives_where_opentelemetry_samples() -> None:
    carrier = {"b3": "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1"}
    assert _ours(carrier, B3Propagator()).deferred
    assert _theirs(carrier, B3SingleFormat())[2] == 1  # divergence: "no decision" becomes sampled


def test_b3_deny_only_header_is_a_decision_where_opentelemetry_sees_nothing() -> None:
    assert _ours({"b3": "0"}, B3Propagator()) == SpanContext(0, 0, 0, is_remote=True)
    assert _theirs({"b3": "0"}, B3SingleFormat())[:2] == (0, 0)  # divergence: no context


@pytest.mark.parametrize("carrier", [
    {"b3": "80F198EE56343BA864FE8B2A57D3EFF7-E457B5A2E4D86BD1-1"},
    {"b3": "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-x"},
], ids=["upper-case hex", "invalid sampling state"])
def test_b3_malformed_header_is_rejected_where_opentelemetry_accepts(carrier: Dict[str, str]) -> None:
    assert _ours(carrier, B3Propagator()) == SpanContext(0, 0)
    assert _theirs(carrier, B3SingleFormat())[0] != 0  # divergence: accepted


# ---------------------------------------------------------------------------------- Jaeger


@fuzz
@given(trace_ids, span_ids, st.sampled_from(["sampled", "not sampled", "debug"]), jaeger_baggages)
def test_jaeger_ours_to_theirs(trace_id: int, span_id: int, decision: str,
                               entries: Dict[str, str]) -> None:
    carrier = _inject_ours(JaegerPropagator(), _b3_context(trace_id, span_id, decision), **entries)
    context = OtelJaeger().extract(carrier)
    span_context = otel.get_current_span(context).get_span_context()
    assert (span_context.trace_id, span_context.span_id) == (trace_id, span_id)
    assert span_context.trace_flags.sampled is (decision != "not sampled")
    assert dict(otel_baggage.get_all(context)) == entries


@fuzz
@given(trace_ids, span_ids, st.booleans(), baggages.map(lambda d: {k.lower(): v for k, v in d.items()}))
def test_jaeger_theirs_to_ours(trace_id: int, span_id: int, sampled: bool,
                               entries: Dict[str, str]) -> None:
    context = _their_context(trace_id, span_id, int(sampled))
    for key, value in entries.items():
        context = otel_baggage.set_baggage(key, value, context)
    carrier: Dict[str, Any] = {}
    OtelJaeger().inject(carrier, context)
    received = JaegerPropagator().extract(carrier, EMPTY_CONTEXT, DICT)
    got = received.span.context
    assert (got.trace_id, got.span_id, got.sampled) == (trace_id, span_id, sampled)
    assert dict(received.baggage) == entries


def test_jaeger_sampled_is_not_debug_where_opentelemetry_sets_the_debug_bit() -> None:
    carrier = _inject_ours(JaegerPropagator(), _b3_context(256, 127, "sampled"))
    assert carrier["uber-trace-id"].endswith(":1")
    theirs: Dict[str, Any] = {}
    OtelJaeger().inject(theirs, _their_context(256, 127, 1))
    assert theirs["uber-trace-id"].endswith(":03")  # divergence: debug on every sampled trace
    assert _ours(theirs, JaegerPropagator()).debug  # so their sampled traces arrive as debug


def test_jaeger_url_encoded_header_is_read_where_opentelemetry_is_not() -> None:
    carrier = {"uber-trace-id": "100%3A7f%3A0%3A1"}
    assert _ours(carrier, JaegerPropagator()) == SpanContext(256, 127, 1, is_remote=True)
    assert _theirs(carrier, OtelJaeger())[:2] == (0, 0)  # divergence: no context


def test_jaeger_debug_is_kept_where_opentelemetry_maps_it_to_sampled() -> None:
    carrier = {"uber-trace-id": "100:7f:0:3"}
    assert _theirs(carrier, OtelJaeger())[2] == 1  # divergence: only the sampled bit is kept
    received = _ours(carrier, JaegerPropagator())
    assert received.debug
    assert _inject_ours(JaegerPropagator(), received)["uber-trace-id"].endswith(":3")
