"""Several formats configured together: one span sent in two formats keeps what only one of them
says, and W3C baggage read beside Jaeger's comes back once, with its properties."""

from __future__ import annotations

from typing import Dict

from tracing_api_propagation import B3MultiPropagator, B3Propagator, JaegerPropagator

from tracing_api import SpanContext
from tracing_api.context import EMPTY_CONTEXT, Context
from tracing_api.propagation import DICT, CompositePropagator
from tracing_api.w3c import BaggagePropagator, TraceContextPropagator

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
STATE = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
# What a service configured with tracecontext and b3multi sends for one sampled span whose
# trace id is random (W3C flags 0x03).
BOTH = {"traceparent": f"00-{TRACE}-{SPAN}-03", "tracestate": STATE,
        "x-b3-traceid": TRACE, "x-b3-spanid": SPAN, "x-b3-sampled": "1"}
DOCUMENTED = CompositePropagator(
    [TraceContextPropagator(), BaggagePropagator(), B3MultiPropagator()]
)


def _extracted(carrier: Dict[str, str], composite: CompositePropagator = DOCUMENTED) -> SpanContext:
    return composite.extract(carrier, EMPTY_CONTEXT, DICT).span.context


def test_same_span_in_w3c_and_b3multi_keeps_the_tracestate() -> None:
    assert dict(_extracted(BOTH).trace_state) == {"congo": "t61rcWkgMzE", "rojo": SPAN}


def test_same_span_in_w3c_and_b3multi_keeps_the_random_flag() -> None:
    assert _extracted(BOTH).trace_flags == 0x03


def test_same_span_in_w3c_and_b3multi_forwards_the_tracestate() -> None:
    forwarded: Dict[str, str] = {}
    DOCUMENTED.inject(DOCUMENTED.extract(BOTH, EMPTY_CONTEXT, DICT), forwarded, DICT)
    assert (forwarded["tracestate"], forwarded["traceparent"]) == (STATE, BOTH["traceparent"])


def test_same_span_takes_the_later_formats_debug_decision() -> None:
    received = _extracted({**BOTH, "x-b3-flags": "1"})
    assert (received.debug, received.sampled, len(received.trace_state)) == (True, True, 2)


def test_same_span_takes_the_later_formats_deferred_decision() -> None:
    carrier = {**BOTH, "traceparent": f"00-{TRACE}-{SPAN}-02"}
    del carrier["x-b3-sampled"]  # ids without a decision: the local sampler decides
    received = _extracted(carrier)
    assert (received.deferred, received.trace_flags, len(received.trace_state)) == (True, 0x02, 2)


def test_same_span_with_b3_first_keeps_the_tracestate_of_w3c_after_it() -> None:
    composite = CompositePropagator([B3Propagator(), TraceContextPropagator()])
    carrier = {"b3": f"{TRACE}-{SPAN}-1", "traceparent": f"00-{TRACE}-{SPAN}-03",
               "tracestate": STATE}
    received = _extracted(carrier, composite)
    assert (received.trace_flags, len(received.trace_state)) == (0x03, 2)


def test_another_span_in_a_later_format_replaces_the_tracestate_with_its_parent() -> None:
    received = _extracted({**BOTH, "x-b3-spanid": "e457b5a2e4d86bd1"})
    assert (received.span_id, len(received.trace_state), received.trace_flags) == (
        0xE457B5A2E4D86BD1, 0, 0x01)


def test_another_trace_in_a_later_format_keeps_no_random_flag() -> None:
    received = _extracted({**BOTH, "x-b3-traceid": "80f198ee56343ba864fe8b2a57d3eff7"})
    assert (received.trace_id, received.trace_flags) == (0x80F198EE56343BA864FE8B2A57D3EFF7, 0x01)


# ------------------------------------------------------------------------ W3C and Jaeger baggage

W3C_THEN_JAEGER = CompositePropagator(
    [TraceContextPropagator(), BaggagePropagator(), JaegerPropagator()]
)


def _hop(context: Context) -> Context:
    """``context`` sent to and read by a service with the same three formats."""
    headers: Dict[str, str] = {}
    W3C_THEN_JAEGER.inject(context, headers, DICT)
    return W3C_THEN_JAEGER.extract(headers, EMPTY_CONTEXT, DICT)


def test_w3c_baggage_properties_survive_jaeger_carrying_the_same_entry() -> None:
    received = _hop(EMPTY_CONTEXT.with_baggage({"tenant": "acme"}, {"tenant": "ttl=30"}))
    assert (dict(received.baggage), dict(received.baggage_properties)) == (
        {"tenant": "acme"}, {"tenant": "ttl=30"})


def test_mixed_case_w3c_baggage_key_comes_back_once_beside_jaeger() -> None:
    context = EMPTY_CONTEXT.with_baggage({"userId": "42"})
    for _ in range(3):
        context = _hop(context)
    assert dict(context.baggage) == {"userId": "42"}


def test_jaeger_entry_with_another_value_than_w3c_baggage_replaces_it() -> None:
    carrier = {"baggage": "tenant=acme;ttl=30", "uberctx-tenant": "other"}
    received = W3C_THEN_JAEGER.extract(carrier, EMPTY_CONTEXT, DICT)
    assert (dict(received.baggage), dict(received.baggage_properties)) == ({"tenant": "other"}, {})


def test_jaeger_entry_absent_from_w3c_baggage_is_added_beside_it() -> None:
    carrier = {"baggage": "userId=42", "uberctx-region": "eu"}
    received = W3C_THEN_JAEGER.extract(carrier, EMPTY_CONTEXT, DICT)
    assert dict(received.baggage) == {"userId": "42", "region": "eu"}


def test_mixed_case_key_comes_back_once_from_headers_named_in_another_case() -> None:
    carrier = {"Baggage": "userId=42", "Uberctx-UserId": "42"}  # read the general way
    received = W3C_THEN_JAEGER.extract(carrier, EMPTY_CONTEXT, DICT)
    assert dict(received.baggage) == {"userId": "42"}


class _Broken:
    """An application's propagator whose extract answers with something else than a Context."""

    fields = ("x-broken",)

    def __init__(self, answer: object) -> None:
        self.answer = answer

    def inject(self, context: Context, carrier: object, setter: object) -> None:
        pass

    def extract(self, carrier: object, context: Context, getter: object) -> object:
        return self.answer


def test_a_propagator_answering_with_something_else_loses_only_its_own_answer() -> None:
    carrier = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
               "baggage": "k=v"}
    for answer in (None, "a context", Context(None, {}, {})):  # type: ignore[arg-type]
        composite = CompositePropagator(
            [TraceContextPropagator(), _Broken(answer), BaggagePropagator()])  # type: ignore[list-item]
        got = composite.extract(carrier, EMPTY_CONTEXT, DICT)
        assert got.span.context.trace_id == 0x4BF92F3577B34DA6A3CE929D0E0E4736, answer
        assert dict(got.baggage) == {"k": "v"}
