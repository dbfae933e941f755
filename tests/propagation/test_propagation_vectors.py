"""Published vectors and edge cases of each format (B3 README and brave, Google's valid forms,
the OpenCensus binary encoding document and Go decoder, jaeger-client-python)."""

from __future__ import annotations

import base64
from typing import Any, Dict

import pytest
from tracing_api_propagation import (
    B3MultiPropagator,
    B3Propagator,
    CloudTracePropagator,
    GrpcBinaryPropagator,
    JaegerPropagator,
    b3,
    cloud_trace,
    grpc_binary,
    jaeger,
)

from tracing_api import SpanContext
from tracing_api.context import EMPTY_CONTEXT, Context
from tracing_api.propagation import DICT, PAIRS

TRACE = 0x80F198EE56343BA864FE8B2A57D3EFF7
SPAN = 0xE457B5A2E4D86BD1


def remote(context: Context) -> SpanContext:
    return context.span.context


def extract(propagator: Any, carrier: Dict[str, Any]) -> SpanContext:
    return remote(propagator.extract(carrier, EMPTY_CONTEXT, DICT))


def inject(propagator: Any, span_context: SpanContext) -> Dict[str, Any]:
    carrier: Dict[str, Any] = {}
    propagator.inject(EMPTY_CONTEXT.with_span_context(span_context), carrier, DICT)
    return carrier


# ------------------------------------------------------------------------------------------- B3


def test_b3_readme_single_header_with_parent() -> None:
    parsed = b3.parse_single("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90")
    assert parsed == SpanContext(TRACE, SPAN, 0x01, is_remote=True)


def test_b3_readme_single_header_equals_multi_header() -> None:
    single = extract(B3Propagator(), {
        "b3": "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90"})
    multi = extract(B3MultiPropagator(), {
        "X-B3-TraceId": "80f198ee56343ba864fe8b2a57d3eff7",
        "X-B3-ParentSpanId": "05e3ac9a4f6e3b90",
        "X-B3-SpanId": "e457b5a2e4d86bd1",
        "X-B3-Sampled": "1",
    })
    assert single == multi == SpanContext(TRACE, SPAN, 0x01, is_remote=True)


def test_b3_readme_debug_single_header() -> None:
    parsed = b3.parse_single("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-d")
    assert parsed is not None
    assert parsed.debug
    assert parsed.sampled


@pytest.mark.parametrize(("value", "sampled", "debug"), [("0", False, False), ("1", True, False),
                                                         ("d", True, True)])
def test_b3_sampling_only_header_gives_decision_without_ids(
    value: str, sampled: bool, debug: bool
) -> None:
    parsed = b3.parse_single(value)
    assert parsed == SpanContext(0, 0, 0x01 if sampled else 0, is_remote=True, debug=debug)


def test_b3_ids_without_sampling_state_are_deferred() -> None:
    parsed = b3.parse_single("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1")
    assert parsed == SpanContext(TRACE, SPAN, 0, is_remote=True, deferred=True)


def test_b3_64_bit_trace_id_is_left_padded() -> None:
    parsed = b3.parse_single("a3ce929d0e0e4736-e457b5a2e4d86bd1-1")
    assert parsed is not None
    assert parsed.trace_id == 0xA3CE929D0E0E4736


def test_b3_64_bit_trace_id_is_written_back_as_16_characters() -> None:
    context = SpanContext(0xA3CE929D0E0E4736, SPAN, 0x01, is_remote=True)
    assert inject(B3Propagator(), context) == {"b3": "a3ce929d0e0e4736-e457b5a2e4d86bd1-1"}
    assert inject(B3MultiPropagator(), context)["x-b3-traceid"] == "a3ce929d0e0e4736"


@pytest.mark.parametrize("value", [
    "", "-", "-1", "1-", "0-", "d-",
    "80f198ee56343ba-e457b5a2e4d86bd1",  # 15-char trace id
    "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd",  # 15-char span id
    "80f198ee56343ba864fe8b2a57d3eff7",  # trace id only
    "80f198ee56343ba864fe8b2a57d3eff7-",
    "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-",
    "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-",
    "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b9",  # 15-char parent
    "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-80f198ee56343ba864fe8b2a57d3eff7",
    "not-a-tumor",
    "5b8d7b25-3e8b-4c05-a8c2-f7c9c5e7c5b1",  # a UUID
    "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-0-?",
    "1-?",
    "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-x",  # unknown sampling state
    "80F198EE56343BA864FE8B2A57D3EFF7-E457B5A2E4D86BD1-1",  # upper case
    "00000000000000000000000000000000-e457b5a2e4d86bd1-1",  # zero trace id
    "80f198ee56343ba864fe8b2a57d3eff7-0000000000000000-1",  # zero span id
])
def test_b3_single_header_rejects_malformed(value: str) -> None:
    assert b3.parse_single(value) is None


def test_b3_single_header_takes_precedence_over_multi() -> None:
    parsed = extract(B3MultiPropagator(), {
        "b3": "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-0",
        "x-b3-traceid": "0000000000000000000000000000abcd",
        "x-b3-spanid": "000000000000abcd",
        "x-b3-sampled": "1",
    })
    assert (parsed.trace_id, parsed.span_id, parsed.sampled) == (TRACE, SPAN, False)


def test_b3_multi_sampled_zero_alone_is_a_deny_decision() -> None:
    assert extract(B3MultiPropagator(), {"x-b3-sampled": "0"}) == SpanContext(0, 0, 0,
                                                                             is_remote=True)


def test_b3_multi_flags_one_is_debug_and_written_without_sampled() -> None:
    parsed = extract(B3MultiPropagator(), {"x-b3-traceid": "80f198ee56343ba864fe8b2a57d3eff7",
                                           "x-b3-spanid": "e457b5a2e4d86bd1", "x-b3-flags": "1"})
    assert parsed.debug and parsed.sampled
    assert inject(B3MultiPropagator(), parsed) == {
        "x-b3-traceid": "80f198ee56343ba864fe8b2a57d3eff7", "x-b3-spanid": "e457b5a2e4d86bd1",
        "x-b3-flags": "1"}


def test_b3_multi_ignores_flags_other_than_one() -> None:
    parsed = extract(B3MultiPropagator(), {"x-b3-traceid": "80f198ee56343ba864fe8b2a57d3eff7",
                                           "x-b3-spanid": "e457b5a2e4d86bd1", "x-b3-flags": "2",
                                           "x-b3-sampled": "0"})
    assert not parsed.debug and not parsed.sampled and parsed.is_valid


@pytest.mark.parametrize(("value", "sampled"), [("true", True), ("false", False)])
def test_b3_multi_accepts_legacy_true_false(value: str, sampled: bool) -> None:
    parsed = extract(B3MultiPropagator(), {"x-b3-traceid": "80f198ee56343ba864fe8b2a57d3eff7",
                                           "x-b3-spanid": "e457b5a2e4d86bd1",
                                           "x-b3-sampled": value})
    assert parsed.is_valid and parsed.sampled is sampled


@pytest.mark.parametrize("headers", [
    {"x-b3-traceid": "80f198ee56343ba864fe8b2a57d3eff7"},  # no span id
    {"x-b3-spanid": "e457b5a2e4d86bd1"},  # no trace id
    {"x-b3-traceid": "80f198ee56343ba864fe8b2a57d3eff7", "x-b3-spanid": "e457b5a2e4d86bd1",
     "x-b3-parentspanid": "-"},
    {"x-b3-traceid": "80f198ee56343ba864fe8b2a57d3eff7", "x-b3-spanid": "e457b5a2e4d86bd1",
     "x-b3-sampled": ""},
    {"x-b3-traceid": "", "x-b3-spanid": "e457b5a2e4d86bd1"},
    {"x-b3-traceid": "80f198ee56343ba864fe8b2a57d3eff7", "x-b3-spanid": "e457b5a2e4d86bd1",
     "x-b3-sampled": "x"},
])
def test_b3_multi_rejects_malformed(headers: Dict[str, str]) -> None:
    assert extract(B3MultiPropagator(), headers) == SpanContext(0, 0)


def test_b3_multi_first_value_of_repeated_header_wins() -> None:
    parsed = extract(B3MultiPropagator(), {
        "x-b3-traceid": ["80f198ee56343ba864fe8b2a57d3eff7", "0000000000000000000000000000abcd"],
        "x-b3-spanid": "e457b5a2e4d86bd1"})
    assert parsed.trace_id == TRACE


def test_b3_deferred_context_is_written_without_sampling_state() -> None:
    context = SpanContext(TRACE, SPAN, 0, is_remote=True, deferred=True)
    assert inject(B3Propagator(), context) == {
        "b3": "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1"}
    assert "x-b3-sampled" not in inject(B3MultiPropagator(), context)


def test_b3_sampling_only_context_is_written_as_sampling_only_header() -> None:
    deny = SpanContext(0, 0, 0, is_remote=True)
    assert inject(B3Propagator(), deny) == {"b3": "0"}
    assert inject(B3MultiPropagator(), deny) == {"x-b3-sampled": "0"}


def test_b3_invalid_local_context_writes_nothing() -> None:
    assert inject(B3Propagator(), SpanContext(0, 0)) == {}
    assert inject(B3MultiPropagator(), SpanContext(0, 0)) == {}


# --------------------------------------------------------------------------------- Cloud Trace

CLOUD_TRACE = "105445aa7843bc8bf206b12000100000"


@pytest.mark.parametrize(("options", "flags", "deferred"), [
    (";o=1", 1, False), (";o=0", 0, False), ("", 0, True), (";o=", 0, True)])
def test_cloud_trace_options(options: str, flags: int, deferred: bool) -> None:
    parsed = cloud_trace.parse(f"{CLOUD_TRACE}/789{options}")
    assert parsed == SpanContext(int(CLOUD_TRACE, 16), 789, flags, is_remote=True,
                                 deferred=deferred)


def test_cloud_trace_max_span_id_is_valid() -> None:
    parsed = cloud_trace.parse(f"{CLOUD_TRACE}/18446744073709551615;o=1")
    assert parsed is not None and parsed.span_id == 2**64 - 1


def test_cloud_trace_accepts_upper_case_trace_id() -> None:
    parsed = cloud_trace.parse(f"{CLOUD_TRACE.upper()}/789;o=1")
    assert parsed is not None and parsed.trace_id == int(CLOUD_TRACE, 16)


@pytest.mark.parametrize("value", [
    f"{CLOUD_TRACE}/0;o=1",  # zero span id
    f"{CLOUD_TRACE}/18446744073709551616;o=1",  # overflow
    f"{CLOUD_TRACE}/+789;o=1", f"{CLOUD_TRACE}/-789;o=1", f"{CLOUD_TRACE}/ 789;o=1",
    f"{CLOUD_TRACE}/78a9;o=1", f"{CLOUD_TRACE}/789;o=2", f"{CLOUD_TRACE}/789;o=1;x",
    f"{CLOUD_TRACE[:31]}/789;o=1", f"{CLOUD_TRACE}0/789;o=1",
    "00000000000000000000000000000000/789;o=1",
    # Forms without a span id: there is no parent to continue.
    f"{CLOUD_TRACE}/;o=1", f"{CLOUD_TRACE}/;o=", f"{CLOUD_TRACE}/", f"{CLOUD_TRACE};o=1",
    f"{CLOUD_TRACE};o=", CLOUD_TRACE,
])
def test_cloud_trace_rejects(value: str) -> None:
    assert cloud_trace.parse(value) is None


def test_cloud_trace_writes_decimal_span_id() -> None:
    context = SpanContext(int(CLOUD_TRACE, 16), 0xE457B5A2E4D86BD1, 1, is_remote=True)
    assert inject(CloudTracePropagator(), context) == {
        "x-cloud-trace-context": f"{CLOUD_TRACE}/{0xE457B5A2E4D86BD1};o=1"}


def test_cloud_trace_deferred_context_is_written_without_options() -> None:
    context = SpanContext(int(CLOUD_TRACE, 16), 789, 0, is_remote=True, deferred=True)
    assert inject(CloudTracePropagator(), context) == {"x-cloud-trace-context": f"{CLOUD_TRACE}/789"}


def test_cloud_trace_writes_debug_as_sampled() -> None:
    context = SpanContext(int(CLOUD_TRACE, 16), 789, 1, is_remote=True, debug=True)
    assert inject(CloudTracePropagator(), context)["x-cloud-trace-context"].endswith(";o=1")


# ---------------------------------------------------------------------------- grpc-trace-bin

SPEC_BYTES = bytes.fromhex("00004bf92f3577b34da6a3ce929d000e47360134f067aa0ba902b70201")
SPEC_BASE64 = "AABL+S81d7NNpqPOkp0ADkc2ATTwZ6oLqQK3AgE"
SPEC_CONTEXT = SpanContext(0x4BF92F3577B34DA6A3CE929D000E4736, 0x34F067AA0BA902B7, 1,
                           is_remote=True)
GO_BYTES = bytes.fromhex("0000404142434445464748494a4b4c4d4e4f0161626364656667680201")


def test_grpc_binary_spec_vector_decodes() -> None:
    assert grpc_binary.parse(SPEC_BYTES) == SPEC_CONTEXT


def test_grpc_binary_spec_vector_encodes_byte_for_byte() -> None:
    assert grpc_binary.encode(SPEC_CONTEXT) == SPEC_BYTES


def test_grpc_binary_go_vector_decodes() -> None:
    assert grpc_binary.parse(GO_BYTES) == SpanContext(
        int.from_bytes(bytes(range(0x40, 0x50)), "big"),
        int.from_bytes(bytes(range(0x61, 0x69)), "big"), 1, is_remote=True)


def test_grpc_binary_reads_base64_wire_form_given_as_text() -> None:
    assert extract(GrpcBinaryPropagator(), {"grpc-trace-bin": SPEC_BASE64}) == SPEC_CONTEXT


def test_grpc_binary_reads_base64_wire_form_given_as_bytes() -> None:
    headers = [(b"grpc-trace-bin", SPEC_BASE64.encode())]
    assert remote(GrpcBinaryPropagator().extract(headers, EMPTY_CONTEXT, PAIRS)) == SPEC_CONTEXT


def test_grpc_binary_reads_padded_and_url_safe_base64() -> None:
    padded = base64.b64encode(SPEC_BYTES).decode()
    url_safe = base64.urlsafe_b64encode(SPEC_BYTES).decode().rstrip("=")
    assert extract(GrpcBinaryPropagator(), {"grpc-trace-bin": padded}) == SPEC_CONTEXT
    assert extract(GrpcBinaryPropagator(), {"grpc-trace-bin": url_safe}) == SPEC_CONTEXT


def test_grpc_binary_base64_option_writes_text() -> None:
    written = inject(GrpcBinaryPropagator(base64=True), SPEC_CONTEXT)["grpc-trace-bin"]
    assert base64.b64decode(written) == SPEC_BYTES


def test_grpc_binary_missing_options_field_means_not_sampled() -> None:
    parsed = grpc_binary.parse(SPEC_BYTES[:27])
    assert parsed == SPEC_CONTEXT._replace(trace_flags=0)


def test_grpc_binary_ignores_trailing_unknown_field() -> None:
    assert grpc_binary.parse(SPEC_BYTES + b"\x03\x01\x02\x03") == SPEC_CONTEXT


def test_grpc_binary_stops_at_unknown_field_in_place_of_options() -> None:
    assert grpc_binary.parse(SPEC_BYTES[:27] + b"\x07\x01") == SPEC_CONTEXT._replace(trace_flags=0)


@pytest.mark.parametrize(("name", "data"), [
    ("empty", b""),
    ("version 1", b"\x01" + SPEC_BYTES[1:]),
    ("first field is span id", b"\x00\x01" + SPEC_BYTES[19:27]),
    ("short trace id", SPEC_BYTES[:17]),
    ("trace id only", SPEC_BYTES[:18]),
    ("span id cut short", SPEC_BYTES[:25]),
    ("options field cut short", SPEC_BYTES[:28]),
    ("zero trace id", SPEC_BYTES[:2] + bytes(16) + SPEC_BYTES[18:]),
    ("zero span id", SPEC_BYTES[:19] + bytes(8) + SPEC_BYTES[27:]),
])
def test_grpc_binary_rejects(name: str, data: bytes) -> None:
    assert grpc_binary.parse(data) is None, name


# ------------------------------------------------------------------------------------ Jaeger


@pytest.mark.parametrize(("value", "trace_id", "span_id", "flags"), [
    ("100:7f:0:1", 256, 127, 1),
    ("100:7f:100:0", 256, 127, 0),
    ("ffffffffffffffffffffffffffffffff:7f:100:0", 2**128 - 1, 127, 0),
    ("FFFFFFFFFFFFFFFF:FFFFFFFFFFFFFFFF:FFFFFFFFFFFFFFFF:1", 2**64 - 1, 2**64 - 1, 1),
    ("100%3A7f%3A0%3A1", 256, 127, 1),
    ("100%3A7f:0:1", 256, 127, 1),
])
def test_jaeger_client_vectors(value: str, trace_id: int, span_id: int, flags: int) -> None:
    assert jaeger.parse(value) == SpanContext(trace_id, span_id, flags, is_remote=True)


@pytest.mark.parametrize("value", [
    "bad value", "1:1:1:1:1", "1:1:1", "x:1:1:1", "1:x:1:1", "1:1:x:1", "1:1:1:x", "0:1:1:1",
    "1:0:1:1", "1:1:-1:1", "1:1::1", "1:1:1:-1", "1:1:1:100", "", ":::",
    "1" * 33 + ":1:0:1", "1:" + "1" * 17 + ":0:1",
])
def test_jaeger_client_invalid_values(value: str) -> None:
    assert jaeger.parse(value) is None


def test_jaeger_two_headers_are_corrupt() -> None:
    parsed = extract(JaegerPropagator(), {"uber-trace-id": ["100:7f:0:1", "100:7f:0:1"]})
    assert parsed == SpanContext(0, 0)


def test_jaeger_debug_flag_sets_debug_and_sampled() -> None:
    parsed = jaeger.parse("100:7f:0:3")
    assert parsed is not None and parsed.debug and parsed.sampled


def test_jaeger_writes_16_character_ids_and_zero_parent() -> None:
    context = SpanContext(256, 127, 1, is_remote=True)
    assert inject(JaegerPropagator(), context) == {
        "uber-trace-id": "0000000000000100:000000000000007f:0:1"}


def test_jaeger_writes_debug_as_flags_3() -> None:
    context = SpanContext(256, 127, 1, is_remote=True, debug=True)
    assert inject(JaegerPropagator(), context)["uber-trace-id"].endswith(":3")


def test_jaeger_baggage_values_are_url_encoded() -> None:
    context = EMPTY_CONTEXT.with_baggage({"key": "value 1 / blah"})
    carrier: Dict[str, Any] = {}
    JaegerPropagator().inject(context, carrier, DICT)
    assert carrier == {"uberctx-key": "value%201%20%2F%20blah"}


def test_jaeger_baggage_is_read_from_uberctx_headers() -> None:
    context = JaegerPropagator().extract(
        {"Uberctx-Key": "value%201%20%2F%20blah", "uberctx-other": "x"}, EMPTY_CONTEXT, DICT)
    assert dict(context.baggage) == {"key": "value 1 / blah", "other": "x"}


def test_jaeger_adhoc_baggage_header_is_read() -> None:
    context = JaegerPropagator().extract({"jaeger-baggage": "k1=v1, k2=v2"}, EMPTY_CONTEXT, DICT)
    assert dict(context.baggage) == {"k1": "v1", "k2": "v2"}


def test_jaeger_debug_id_alone_asks_for_a_debug_trace() -> None:
    parsed = extract(JaegerPropagator(), {"jaeger-debug-id": "some-correlation-id"})
    assert parsed == SpanContext(0, 0, 1, is_remote=True, debug=True)


def test_jaeger_baggage_is_merged_into_existing_baggage() -> None:
    base = EMPTY_CONTEXT.with_baggage({"from": "w3c"})
    context = JaegerPropagator().extract({"uberctx-k": "v"}, base, DICT)
    assert dict(context.baggage) == {"from": "w3c", "k": "v"}


def test_jaeger_baggage_read_is_bounded_by_entry_count() -> None:
    carrier = {f"uberctx-k{i}": "v" for i in range(500)}
    context = JaegerPropagator().extract(carrier, EMPTY_CONTEXT, DICT)
    assert len(context.baggage) == jaeger.MAX_BAGGAGE_ENTRIES


def test_jaeger_baggage_read_is_bounded_by_size() -> None:
    carrier = {f"uberctx-k{i}": "v" * 1000 for i in range(20)}
    context = JaegerPropagator().extract(carrier, EMPTY_CONTEXT, DICT)
    size = sum(len("uberctx-") + len(k) + len(v) for k, v in context.baggage.items())
    assert 0 < size <= jaeger.MAX_BAGGAGE_BYTES


def test_b3_all_zero_parent_span_id_is_invalid_in_both_forms() -> None:
    """Zero ids are invalid in every format (FORMATS.md section 7), the parent's too."""
    from tracing_api_propagation import B3MultiPropagator
    from tracing_api_propagation.b3 import parse_single

    from tracing_api.propagation import DICT

    assert parse_single("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-0000000000000000") is None
    carrier = {"x-b3-traceid": "80f198ee56343ba864fe8b2a57d3eff7", "x-b3-spanid": "e457b5a2e4d86bd1",
               "x-b3-parentspanid": "0000000000000000", "x-b3-sampled": "1"}
    from tracing_api.context import EMPTY_CONTEXT

    assert B3MultiPropagator().extract(carrier, EMPTY_CONTEXT, DICT) is EMPTY_CONTEXT
