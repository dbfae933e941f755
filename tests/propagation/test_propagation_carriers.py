"""Every format through every carrier kind, the composite propagator, configuration by name,
and what the sampler makes of each format's sampling decision."""

from __future__ import annotations

import http.client
from typing import Any, Callable, Dict, Iterator, List, Tuple

import grpc.aio
import pytest
from requests.structures import CaseInsensitiveDict
from tracing_api_propagation import (
    B3MultiPropagator,
    B3Propagator,
    CloudTracePropagator,
    GrpcBinaryPropagator,
    JaegerPropagator,
)

import tracing_api as tracing
from tracing_api import SpanContext, TraceState, sampling
from tracing_api.context import EMPTY_CONTEXT, Context
from tracing_api.propagation import (
    DICT,
    ENVIRON,
    HEADERS,
    PAIRS,
    CompositePropagator,
    Propagator,
    getter_for,
    setter_for,
)
from tracing_api.testing import capture
from tracing_api.w3c import BaggagePropagator, TraceContextPropagator

CONTEXT = SpanContext(0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7, 0x01,
                      TraceState([("congo", "t61rcWkgMzE")]), is_remote=True)
FORMATS: Dict[str, Callable[[], Propagator]] = {
    "b3": B3Propagator, "b3multi": B3MultiPropagator, "cloud_trace": CloudTracePropagator,
    "grpc_binary": GrpcBinaryPropagator, "jaeger": JaegerPropagator,
    "tracecontext": TraceContextPropagator,
}


def _sent(name: str) -> Context:
    state = CONTEXT.trace_state if name == "tracecontext" else TraceState()
    return EMPTY_CONTEXT.with_span_context(CONTEXT._replace(trace_state=state))


def _written(propagator: Propagator) -> Dict[str, Any]:
    carrier: Dict[str, Any] = {}
    propagator.inject(EMPTY_CONTEXT.with_span_context(CONTEXT), carrier, DICT)
    return carrier


def _text(value: Any) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


@pytest.fixture(params=sorted(FORMATS))
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _round_trip(name: str, carrier: Any, getter: Any = None, setter: Any = None) -> SpanContext:
    propagator = FORMATS[name]()
    sent = _sent(name)
    propagator.inject(sent, carrier, setter or setter_for(carrier))
    received = propagator.extract(carrier, EMPTY_CONTEXT, getter or getter_for(carrier))
    assert received.span.context == sent.span.context
    return received.span.context


def test_round_trip_through_dict(name: str) -> None:
    _round_trip(name, {"Host": "example.com"})


def test_round_trip_through_http_message(name: str) -> None:
    message = http.client.HTTPMessage()
    message["Host"] = "example.com"
    _round_trip(name, message)


def test_round_trip_through_requests_case_insensitive_dict(name: str) -> None:
    _round_trip(name, CaseInsensitiveDict({"Host": "example.com"}))


def test_round_trip_through_requests_case_insensitive_dict_as_headers(name: str) -> None:
    _round_trip(name, CaseInsensitiveDict({"Host": "example.com"}), HEADERS, HEADERS)


def test_round_trip_through_asgi_header_pairs(name: str) -> None:
    headers: List[Tuple[bytes, bytes]] = [(b"host", b"example.com")]
    _round_trip(name, headers)
    assert all(isinstance(k, bytes) and isinstance(v, bytes) for k, v in headers)


def test_round_trip_through_grpc_metadata(name: str) -> None:
    metadata: List[Tuple[str, Any]] = [("user-agent", "grpc-python")]
    _round_trip(name, metadata, PAIRS, PAIRS)
    for key, value in metadata:
        assert isinstance(value, bytes) if key.endswith("-bin") else isinstance(value, str)


def test_extract_from_wsgi_environ(name: str) -> None:
    environ = {"REQUEST_METHOD": "GET", "wsgi.version": (1, 0)}
    for key, value in _written(FORMATS[name]()).items():
        environ["HTTP_" + key.upper().replace("-", "_")] = _text(value)
    received = FORMATS[name]().extract(environ, EMPTY_CONTEXT, getter_for(environ))
    assert received.span.context == CONTEXT._replace(trace_state=_sent(name).span.context.trace_state)
    assert getter_for(environ) is ENVIRON


def test_extract_from_mixed_case_dict(name: str) -> None:
    carrier = {key.title(): value for key, value in _written(FORMATS[name]()).items()}
    received = FORMATS[name]().extract(carrier, EMPTY_CONTEXT, DICT)
    assert received.span.context.trace_id == CONTEXT.trace_id


def test_grpc_binary_reads_raw_bytes_from_text_header_object() -> None:
    """An email-style header object stores bytes as Latin-1 text; the raw form is still read."""
    message = http.client.HTTPMessage()
    GrpcBinaryPropagator().inject(EMPTY_CONTEXT.with_span_context(CONTEXT), message, HEADERS)
    received = GrpcBinaryPropagator().extract(message, EMPTY_CONTEXT, HEADERS)
    assert received.span.context == CONTEXT._replace(trace_state=TraceState())


def test_jaeger_baggage_round_trips_through_asgi_pairs() -> None:
    headers: List[Tuple[bytes, bytes]] = [(b"host", b"example.com")]
    sent = EMPTY_CONTEXT.with_span_context(CONTEXT).with_baggage({"user": "ann é"})
    JaegerPropagator().inject(sent, headers, PAIRS)
    received = JaegerPropagator().extract(headers, EMPTY_CONTEXT, PAIRS)
    assert dict(received.baggage) == {"user": "ann é"}


AIO_METADATA = (("uber-trace-id", "100:7f:0:1"), ("uberctx-tenant", "acme"))


def test_headers_getter_lists_the_names_of_grpc_aio_metadata() -> None:
    """``grpc.aio.Metadata`` iterates ``(name, value)`` pairs; its ``keys()`` are the names."""
    assert list(HEADERS.keys(grpc.aio.Metadata(*AIO_METADATA))) == ["uber-trace-id", "uberctx-tenant"]


def test_jaeger_baggage_is_read_from_grpc_aio_metadata() -> None:
    metadata = grpc.aio.Metadata(*AIO_METADATA)
    received = JaegerPropagator().extract(metadata, EMPTY_CONTEXT, getter_for(metadata))
    assert dict(received.baggage) == {"tenant": "acme"}


class _PairsHeaders:
    """A header object without ``keys()`` that iterates ``(name, value)`` pairs."""

    def __init__(self, *pairs: Tuple[str, str]) -> None:
        self._pairs = pairs

    def __iter__(self) -> Iterator[Tuple[str, str]]:
        return iter(self._pairs)

    def get_all(self, key: str) -> List[str]:
        return [v for k, v in self._pairs if k.lower() == key]


def test_headers_getter_takes_the_name_of_each_pair_an_object_without_keys_iterates() -> None:
    assert list(HEADERS.keys(_PairsHeaders(("Uberctx-Tenant", "acme")))) == ["uberctx-tenant"]


# ------------------------------------------------------------------------------- composite


def _everything() -> CompositePropagator:
    formats: List[Propagator] = [TraceContextPropagator(), BaggagePropagator()]
    formats += [FORMATS[n]() for n in sorted(FORMATS) if n != "tracecontext"]
    return CompositePropagator(formats)


def test_composite_injects_every_format() -> None:
    carrier: Dict[str, Any] = {}
    _everything().inject(EMPTY_CONTEXT.with_span_context(CONTEXT), carrier, DICT)
    assert set(carrier) == {"traceparent", "tracestate", "b3", "x-b3-traceid", "x-b3-spanid",
                            "x-b3-sampled", "x-cloud-trace-context", "grpc-trace-bin",
                            "uber-trace-id"}


def test_composite_extract_finds_each_format_alone(name: str) -> None:
    received = _everything().extract(_written(FORMATS[name]()), EMPTY_CONTEXT, DICT)
    assert received.span.context.trace_id == CONTEXT.trace_id
    assert received.span.context.span_id == CONTEXT.span_id


def test_composite_extract_later_valid_format_wins() -> None:
    carrier = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
               "b3": "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-0"}
    composite = CompositePropagator([TraceContextPropagator(), B3Propagator()])
    assert composite.extract(carrier, EMPTY_CONTEXT, DICT).span.context.span_id == 0xE457B5A2E4D86BD1


def test_composite_extract_keeps_earlier_context_when_later_format_is_malformed() -> None:
    carrier = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
               "b3": "garbage"}
    composite = CompositePropagator([TraceContextPropagator(), B3Propagator()])
    assert composite.extract(carrier, EMPTY_CONTEXT, DICT).span.context.span_id == CONTEXT.span_id


TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize(("later", "header"), [
    (B3MultiPropagator, {"x-b3-sampled": "1"}),
    (B3Propagator, {"b3": "1"}),
    (B3Propagator, {"b3": "0"}),
    (JaegerPropagator, {"jaeger-debug-id": "abc"}),
], ids=["x-b3-sampled", "b3-1", "b3-0", "jaeger-debug-id"])
def test_composite_extract_sampling_only_header_keeps_an_earlier_valid_parent(
    later: Callable[[], Propagator], header: Dict[str, str]
) -> None:
    composite = CompositePropagator([TraceContextPropagator(), later()])
    received = composite.extract({"traceparent": TRACEPARENT, **header}, EMPTY_CONTEXT, DICT)
    assert (received.span.context.trace_id, received.span.context.span_id) == (
        CONTEXT.trace_id, CONTEXT.span_id)


def test_composite_extract_sampling_only_header_counts_when_no_earlier_format_found_a_parent() -> None:
    composite = CompositePropagator([TraceContextPropagator(), B3Propagator()])
    received = composite.extract({"traceparent": "garbage", "b3": "0"}, EMPTY_CONTEXT, DICT)
    assert received.span.context == SpanContext(0, 0, 0, is_remote=True)


def test_composite_extract_keeps_the_parent_but_merges_baggage_of_a_later_format() -> None:
    carrier = {"traceparent": TRACEPARENT, "jaeger-debug-id": "abc", "uberctx-user": "ann"}
    composite = CompositePropagator([TraceContextPropagator(), JaegerPropagator()])
    received = composite.extract(carrier, EMPTY_CONTEXT, DICT)
    assert received.span.context.span_id == CONTEXT.span_id
    assert dict(received.baggage) == {"user": "ann"}


def test_composite_extract_valid_format_after_a_sampling_only_one_still_wins() -> None:
    carrier = {"traceparent": TRACEPARENT, "b3": "1",
               "uber-trace-id": "80f198ee56343ba864fe8b2a57d3eff7:e457b5a2e4d86bd1:0:1"}
    composite = CompositePropagator([TraceContextPropagator(), B3Propagator(), JaegerPropagator()])
    assert composite.extract(carrier, EMPTY_CONTEXT, DICT).span.context.span_id == 0xE457B5A2E4D86BD1


def test_configured_sampling_only_header_does_not_start_a_new_trace() -> None:
    tracing.configure(propagators=["tracecontext", "b3multi"], exporter="memory")
    parent = tracing.extract({"traceparent": TRACEPARENT, "x-b3-sampled": "1"})
    with capture() as spans, tracing.get_tracer("t").span("server", parent=parent):
        pass
    assert spans[0].context.trace_id == CONTEXT.trace_id


def test_composite_merges_w3c_and_jaeger_baggage() -> None:
    carrier = {"baggage": "a=1", "uberctx-b": "2"}
    orders: List[List[Propagator]] = [[BaggagePropagator(), JaegerPropagator()],
                                      [JaegerPropagator(), BaggagePropagator()]]
    for order in orders:
        received = CompositePropagator(order).extract(carrier, EMPTY_CONTEXT, DICT)
        assert dict(received.baggage) == {"a": "1", "b": "2"}


# --------------------------------------------------------------------- configuration by name


def test_configure_selects_every_format_by_entry_point_name() -> None:
    tracing.configure(propagators=["tracecontext", "baggage", "b3", "b3multi", "cloud_trace",
                                   "grpc_binary", "jaeger"], exporter="memory")
    carrier: Dict[str, Any] = {}
    tracing.inject(carrier, EMPTY_CONTEXT.with_span_context(CONTEXT))
    assert {"traceparent", "b3", "x-b3-traceid", "x-cloud-trace-context", "grpc-trace-bin",
            "uber-trace-id"} <= set(carrier)


def test_environment_variable_selects_formats(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACING_PROPAGATORS", "tracecontext,b3multi")
    tracing.configure(exporter="memory")
    carrier: Dict[str, Any] = {}
    tracing.inject(carrier, EMPTY_CONTEXT.with_span_context(CONTEXT))
    assert set(carrier) == {"traceparent", "tracestate", "x-b3-traceid", "x-b3-spanid",
                            "x-b3-sampled"}
    assert tracing.extract({"x-b3-sampled": "1", "x-b3-traceid": "0" * 15 + "1",
                            "x-b3-spanid": "0" * 15 + "2"}).span.context.trace_id == 1


# ------------------------------------------------------------- sampling decisions in the pipeline


def _child_sampled(headers: Dict[str, str], root: sampling.Sampler) -> Tuple[bool, SpanContext]:
    with capture(sampler=sampling.parent_based(root),
                 propagators=["tracecontext", "b3", "jaeger", "cloud_trace"]):
        parent = tracing.extract(headers)
        span = tracing.get_tracer("test").start_span("child", parent=parent)
        span.end()
        return span.context.sampled, span.context


def test_b3_deny_only_header_makes_an_unsampled_new_trace() -> None:
    sampled, context = _child_sampled({"b3": "0"}, sampling.always_on())
    assert not sampled and context.is_valid


def test_b3_debug_only_header_is_sampled_even_when_root_sampler_says_no() -> None:
    sampled, context = _child_sampled({"b3": "d"}, sampling.always_off())
    assert sampled and context.debug


def test_b3_deferred_ids_let_the_root_sampler_decide() -> None:
    headers = {"b3": "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1"}
    assert _child_sampled(headers, sampling.always_on())[0]
    sampled, context = _child_sampled(headers, sampling.always_off())
    assert not sampled and context.trace_id == 0x80F198EE56343BA864FE8B2A57D3EFF7


def test_cloud_trace_without_options_lets_the_root_sampler_decide() -> None:
    headers = {"x-cloud-trace-context": "105445aa7843bc8bf206b12000100000/789"}
    assert _child_sampled(headers, sampling.always_on())[0]
    assert not _child_sampled(headers, sampling.always_off())[0]


def test_jaeger_debug_id_makes_a_sampled_debug_trace() -> None:
    sampled, context = _child_sampled({"jaeger-debug-id": "abc"}, sampling.always_off())
    assert sampled and context.debug
