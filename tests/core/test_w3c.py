"""W3C Trace Context (traceparent, tracestate) and W3C Baggage: the specifications' rules."""

from __future__ import annotations

import os
import re
from typing import Any, Dict, List, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracing_api import SpanContext, TraceState
from tracing_api.context import EMPTY_CONTEXT, Context
from tracing_api.propagation import DICT, HEADERS
from tracing_api.w3c import (
    BaggagePropagator,
    TraceContextPropagator,
    format_baggage,
    format_traceparent,
    parse_baggage,
    parse_traceparent,
    parse_tracestate,
)

TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736
SPAN = 0x00F067AA0BA902B7
PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def extract(carrier: Any) -> SpanContext:
    return TraceContextPropagator().extract(carrier, EMPTY_CONTEXT, DICT).span.context


def baggage_of(carrier: Any) -> Context:
    return BaggagePropagator().extract(carrier, EMPTY_CONTEXT, DICT)


# ------------------------------------------------------------------------------ traceparent


@pytest.mark.parametrize(("flags", "sampled"), [("01", True), ("00", False)])
def test_traceparent_spec_vectors(flags: str, sampled: bool) -> None:
    parsed = parse_traceparent(f"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-{flags}")
    assert parsed == SpanContext(TRACE, SPAN, int(sampled), is_remote=True)


@pytest.mark.parametrize("value", [
    PARENT + ".", PARENT + "-what-the-future-will-be-like", PARENT + "-",  # v00 is exactly 55
    PARENT[:-1], PARENT[1:],
    "ff" + PARENT[2:],  # version ff
    PARENT.upper(), "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
    "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # zero trace id
    "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # zero parent id
    "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
    "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01.future",
    "", " ",
])
def test_traceparent_invalid(value: str) -> None:
    assert parse_traceparent(value) is None


@pytest.mark.parametrize("value", [
    "cc" + PARENT[2:] + "-what-the-future-will-be-like", "cc" + PARENT[2:],
])
def test_traceparent_future_version_is_read_as_version_00(value: str) -> None:
    assert parse_traceparent(value) == SpanContext(TRACE, SPAN, 1, is_remote=True)


def test_traceparent_surrounding_whitespace_is_trimmed() -> None:
    assert parse_traceparent(" \t" + PARENT + "\t ") == SpanContext(TRACE, SPAN, 1, is_remote=True)


def test_traceparent_unknown_flag_bits_are_dropped_and_random_kept() -> None:
    parsed = parse_traceparent(PARENT[:-2] + "0b")
    assert parsed is not None and parsed.trace_flags == 0x03


@pytest.mark.parametrize("name", ["TraceParent", "TRACEPARENT"])
def test_traceparent_header_name_is_case_insensitive(name: str) -> None:
    assert extract({name: PARENT}).trace_id == TRACE


@pytest.mark.parametrize("name", ["trace-parent", "trace.parent", "trace_parent"])
def test_traceparent_lookalike_header_names_are_other_headers(name: str) -> None:
    assert extract({name: PARENT}) == SpanContext(0, 0)


def test_two_traceparent_headers_start_a_new_trace() -> None:
    assert extract({"traceparent": [PARENT, PARENT]}) == SpanContext(0, 0)


def test_two_traceparent_headers_joined_by_a_server_start_a_new_trace() -> None:
    assert extract({"traceparent": PARENT + "," + PARENT}) == SpanContext(0, 0)


def test_invalid_traceparent_drops_tracestate() -> None:
    context = TraceContextPropagator().extract(
        {"traceparent": PARENT.upper(), "tracestate": "foo=bar"}, EMPTY_CONTEXT, DICT)
    assert context == EMPTY_CONTEXT


def test_inject_always_writes_version_00_and_keeps_random_flag() -> None:
    carrier: Dict[str, Any] = {}
    received = parse_traceparent("cc" + PARENT[2:-2] + "03")
    assert received is not None
    TraceContextPropagator().inject(EMPTY_CONTEXT.with_span_context(received), carrier, DICT)
    assert carrier == {"traceparent": PARENT[:-2] + "03"}


def test_inject_writes_nothing_for_invalid_span_context() -> None:
    carrier: Dict[str, Any] = {}
    TraceContextPropagator().inject(EMPTY_CONTEXT, carrier, DICT)
    assert carrier == {}


def test_format_traceparent_pads_small_ids() -> None:
    assert format_traceparent(SpanContext(1, 2, 1)) == (
        "00-00000000000000000000000000000001-0000000000000002-01")


# ------------------------------------------------------------------------------- tracestate


def state(*values: str) -> Any:
    return parse_tracestate(list(values))


def test_tracestate_headers_are_combined_in_order() -> None:
    assert list(state("a=1,b=2", "c=3").items()) == [("a", "1"), ("b", "2"), ("c", "3")]


def test_tracestate_empty_header_and_empty_members_are_accepted() -> None:
    assert state("") == TraceState()
    assert list(state("a=1, ,,\t,b=2").items()) == [("a", "1"), ("b", "2")]


@pytest.mark.parametrize("value", ["foo=bar=baz", "foo=", "=bar", "Foo=bar", "foo bar=1",
                                   "foo=bar,baz", "foo=b,ar=1,x=\x7f", "foo=a\x00"])
def test_tracestate_malformed_member_discards_the_whole_state(value: str) -> None:
    assert state("ok=1," + value) is None


def test_tracestate_malformed_keeps_traceparent() -> None:
    parsed = extract({"traceparent": PARENT, "tracestate": "foo=bar=baz"})
    assert parsed.trace_id == TRACE and parsed.trace_state == TraceState()


def test_tracestate_32_members_kept_33_discarded() -> None:
    members = [f"k{i}=v" for i in range(33)]
    assert len(state(",".join(members[:32]))) == 32
    assert state(",".join(members)) is None


def test_tracestate_key_of_256_characters_kept_257_discarded() -> None:
    assert state("k" * 256 + "=v") is not None
    assert state("k" * 257 + "=v") is None


def test_tracestate_value_keeps_leading_spaces_trailing_are_whitespace() -> None:
    assert state("a=  x  ")["a"] == "  x"


@pytest.mark.parametrize("key", ["1abc", "foo@bar", "foo@", "t@vvvvvvvvvvvvvvv", "a_-*/b"])
def test_tracestate_follows_the_editors_draft_key_grammar(key: str) -> None:
    """Level 1 rejects some of these; the draft (a superset) accepts them. We read the draft."""
    assert list(state(f"{key}=v").items()) == [(key, "v")]


def test_tracestate_duplicate_keys_keep_the_first() -> None:
    assert list(state("a=1,b=2,a=3").items()) == [("a", "1"), ("b", "2")]


def test_tracestate_received_with_duplicate_keys_keeps_the_first_and_forwards_it_once() -> None:
    received = extract({"traceparent": PARENT, "tracestate": "a=1,b=2,a=3"}).trace_state
    assert (len(received), list(received.items())) == (2, [("a", "1"), ("b", "2")])
    assert received == TraceState([("a", "1"), ("b", "2"), ("a", "3")])
    assert received.header() == "a=1,b=2"


def test_tracestate_over_512_characters_drops_long_entries_first() -> None:
    long_entry = "long=" + "x" * 200
    short = [f"k{i:02d}=" + "v" * 40 for i in range(10)]  # 44 characters each
    parsed = state(",".join([short[0], long_entry, *short[1:]]))
    assert "long" not in parsed
    assert list(parsed) == [f"k{i:02d}" for i in range(10)]


def test_tracestate_over_512_characters_then_drops_from_the_end() -> None:
    entries = [f"k{i:02d}=" + "v" * 100 for i in range(8)]  # 104 characters each
    parsed = state(",".join(entries))
    assert list(parsed) == ["k00", "k01", "k02", "k03"]
    assert len(parsed.header()) <= 512


def test_tracestate_built_over_512_characters_is_written_truncated() -> None:
    entries = [(f"k{i:02d}", "v" * 100) for i in range(32)]
    carrier: Dict[str, Any] = {}
    sent = SpanContext(TRACE, SPAN, 1, TraceState(entries))
    TraceContextPropagator().inject(EMPTY_CONTEXT.with_span_context(sent), carrier, DICT)
    assert carrier["tracestate"] == ",".join(f"k{i:02d}=" + "v" * 100 for i in range(4))


def test_tracestate_longer_than_the_grammar_allows_is_not_parsed() -> None:
    assert state("a=" + "b" * 100_000) is None


def test_tracestate_is_written_with_traceparent() -> None:
    carrier: Dict[str, Any] = {}
    context = SpanContext(TRACE, SPAN, 1, TraceState([("congo", "t61rcWkgMzE"), ("rojo", "1")]))
    TraceContextPropagator().inject(EMPTY_CONTEXT.with_span_context(context), carrier, DICT)
    assert carrier["tracestate"] == "congo=t61rcWkgMzE,rojo=1"


# ---------------------------------------------------------------------------------- baggage


def test_baggage_spec_vector_with_percent_encoded_space() -> None:
    entries, _ = parse_baggage(["userId=alice,serverNode=DF%2028,isProduction=false"])
    assert entries == {"userId": "alice", "serverNode": "DF 28", "isProduction": "false"}


def test_baggage_spec_vector_utf8() -> None:
    assert parse_baggage(["userId=Am%C3%A9lie"])[0] == {"userId": "Amélie"}


def test_baggage_spec_vector_whitespace_and_properties() -> None:
    entries, props = parse_baggage(
        ["key1=value1;property1;property2, key2 = value2, key3=value3; propertyKey=propertyValue"])
    assert entries == {"key1": "value1", "key2": "value2", "key3": "value3"}
    assert props == {"key1": "property1;property2", "key3": "propertyKey=propertyValue"}


def test_baggage_properties_are_kept_in_order() -> None:
    _, props = parse_baggage(["SomeKey=SomeValue;SomeProp;SomeProp=PropValue;SomeProp=Another"])
    assert props == {"SomeKey": "SomeProp;SomeProp=PropValue;SomeProp=Another"}


def test_baggage_percent_encoded_property_is_one_key_only_property() -> None:
    _, props = parse_baggage(["k=v;ValueProp%20%09%20%3D%20%09%20PropVal"])
    assert props == {"k": "ValueProp%20%09%20%3D%20%09%20PropVal"}


def test_baggage_spec_encoding_vector_decodes_to_its_value() -> None:
    value = "\t \"';=asdf!@#$%^&*()"
    assert parse_baggage(["k=%09%20%22%27%3B%3Dasdf%21%40%23%24%25%5E%26%2A%28%29"])[0] == {
        "k": value}
    assert parse_baggage([format_baggage({"k": value}, {})])[0] == {"k": value}


def test_baggage_plus_is_a_literal_plus() -> None:
    assert parse_baggage(["k=a+b"])[0] == {"k": "a+b"}


def test_baggage_space_is_written_as_percent_20() -> None:
    assert format_baggage({"k": "a b+c"}, {}) == "k=a%20b+c"


def test_baggage_percent_is_always_encoded() -> None:
    assert format_baggage({"k": "100%"}, {}) == "k=100%25"


def test_baggage_value_may_contain_equals_and_be_empty() -> None:
    assert parse_baggage(["a=v=w,b="])[0] == {"a": "v=w", "b": ""}


def test_baggage_invalid_utf8_decodes_to_replacement_character() -> None:
    assert parse_baggage(["k=%FF"])[0] == {"k": "\ufffd"}


def test_baggage_invalid_member_is_dropped_alone() -> None:
    assert parse_baggage(['bad key=1,good=2,k=a"b,novalue'])[0] == {"good": "2"}


def test_baggage_headers_combine_like_one_list() -> None:
    assert dict(baggage_of({"baggage": ["a=1", "b=2"]}).baggage) == {"a": "1", "b": "2"}


def test_baggage_repeated_key_last_wins() -> None:
    assert parse_baggage(["a=1,a=2"])[0] == {"a": "2"}


def test_baggage_180_members_kept_181st_dropped() -> None:
    members = [f"k{i}=v" for i in range(181)]
    assert len(parse_baggage([",".join(members)])[0]) == 180


def test_baggage_over_8192_bytes_drops_whole_members() -> None:
    members = [f"k{i:03d}=" + "v" * 95 for i in range(100)]  # 100 bytes each, 101 with comma
    entries, _ = parse_baggage([",".join(members)])
    assert len(entries) == 81  # 81 * 101 - 1 = 8180 bytes; the 82nd would pass 8192
    assert all(value == "v" * 95 for value in entries.values())


def test_baggage_limit_counts_all_headers_together() -> None:
    half = ",".join(f"a{i:03d}=" + "v" * 95 for i in range(50))
    other = ",".join(f"b{i:03d}=" + "v" * 95 for i in range(50))
    entries, _ = parse_baggage([half, other])
    assert 0 < len(entries) <= 82 and "b049" not in entries


def test_baggage_huge_single_member_is_not_read() -> None:
    assert parse_baggage(["k=" + "v" * 10_000_000])[0] == {}


def test_baggage_inject_leaves_out_invalid_keys_and_properties() -> None:
    header = format_baggage({"bad key": "1", "ok": "2", "p": "3"}, {"ok": "x;y=1", "p": "a,b"})
    assert header == "ok=2;x;y=1,p=3"


def test_baggage_inject_keeps_within_limits() -> None:
    header = format_baggage({f"k{i}": "v" * 100 for i in range(200)}, {})
    assert len(header.encode()) <= 8192 and len(header.split(",")) <= 180


def test_baggage_inject_never_raises_on_lone_surrogate() -> None:
    carrier: Dict[str, Any] = {}
    BaggagePropagator().inject(EMPTY_CONTEXT.with_baggage({"k": "\ud800"}), carrier, DICT)
    assert carrier["baggage"].startswith("k=")


def test_baggage_properties_round_trip() -> None:
    sent = EMPTY_CONTEXT.with_baggage({"k": "v w"}, {"k": "ttl=30;secret"})
    carrier: Dict[str, Any] = {}
    BaggagePropagator().inject(sent, carrier, DICT)
    received = baggage_of(carrier)
    assert dict(received.baggage) == {"k": "v w"}
    assert dict(received.baggage_properties) == {"k": "ttl=30;secret"}


def test_baggage_extract_merges_into_existing_baggage() -> None:
    base = EMPTY_CONTEXT.with_baggage({"mine": "1", "k": "old"})
    received = BaggagePropagator().extract({"baggage": "k=new"}, base, DICT)
    assert dict(received.baggage) == {"mine": "1", "k": "new"}


def test_baggage_read_from_case_insensitive_headers() -> None:
    import http.client

    message = http.client.HTTPMessage()
    message["Baggage"] = "a=1"
    message["BAGGAGE"] = "b=2"
    received = BaggagePropagator().extract(message, EMPTY_CONTEXT, HEADERS)
    assert dict(received.baggage) == {"a": "1", "b": "2"}


def test_tracestate_whitespace_flood_is_rejected_without_backtracking() -> None:
    """Runs of whitespace have one place to go in the grammar; this input once took seconds."""
    assert state(" " * 16_000 + "x") is None
    assert state(", \t" * 5_000 + "x") is None


_REFERENCE_MEMBER = re.compile(
    r"([a-z0-9][_0-9a-z\-*/@]{0,255})=([\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e])"
)


def _reference_tracestate(value: str) -> Any:
    """The specification read member by member: split on commas, trim, match each."""
    entries: List[Tuple[str, str]] = []
    for member in value.split(","):
        member = member.strip(" \t")
        if not member:
            continue
        match = _REFERENCE_MEMBER.fullmatch(member)
        if match is None:
            return None
        entries.append((match.group(1), match.group(2)))
    if len(entries) > 32:
        return None
    return TraceState(entries) if len(value) <= 512 else "long"


@settings(max_examples=int(os.environ.get("TRACING_FUZZ_EXAMPLES", "200")), deadline=None)
@given(st.text(st.sampled_from("ab1@=, \t*/_-x=A\x7f~"), max_size=60))
def test_tracestate_parser_agrees_with_member_by_member_reading(value: str) -> None:
    expected = _reference_tracestate(value)
    got = state(value)
    if expected == "long":
        return
    assert got == expected


def test_tracestate_is_checked_when_first_used_and_an_invalid_one_reads_as_empty() -> None:
    from tracing_api.context import EMPTY_CONTEXT
    from tracing_api.propagation import DICT

    carrier = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
               "tracestate": "good=1,Bad Key=2"}
    context = TraceContextPropagator().extract(carrier, EMPTY_CONTEXT, DICT)
    state = context.span.context.trace_state
    assert context.span.context.is_valid
    assert not state
    assert state.header() == ""
    out: dict[str, str] = {}
    TraceContextPropagator().inject(context, out, DICT)
    assert "tracestate" not in out


def test_extracted_tracestate_is_forwarded_in_canonical_form() -> None:
    from tracing_api.context import EMPTY_CONTEXT
    from tracing_api.propagation import DICT

    carrier = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
               "tracestate": " congo=t61rcWkgMzE ,, rojo=00f067aa0ba902b7 "}
    context = TraceContextPropagator().extract(carrier, EMPTY_CONTEXT, DICT)
    assert dict(context.span.context.trace_state) == {"congo": "t61rcWkgMzE", "rojo": "00f067aa0ba902b7"}
    out: dict[str, str] = {}
    TraceContextPropagator().inject(context, out, DICT)
    assert out["tracestate"] == "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
