"""OTLP encoding, protobuf and JSON: decoded with the official protos, every field checked."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, List

import pytest
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tracing_api_otlp import encode_json, encode_protobuf, encode_request

from tracing_api.export import SpanData
from tracing_api.testing import representative_spans, span_data_strategy

sys.path.insert(0, str(Path(__file__).parent))  # the decoding helpers beside this file
from otlp_decoding import assert_matches, flat, parse_json, parse_protobuf

FUZZ = int(os.environ.get("TRACING_FUZZ_EXAMPLES", "200"))


def by_id(request: Any) -> Any:
    return {span.span_id: (resource, scope, span) for resource, scope, span in flat(request)}


def check_all(spans: List[SpanData], request: Any) -> None:
    sent = by_id(request)
    assert len(sent) == len(spans)
    for span in spans:
        assert_matches(span, *sent[span.context.span_id.to_bytes(8, "big")])


def test_protobuf_carries_every_field_of_every_representative_span() -> None:
    spans = representative_spans()
    check_all(spans, parse_protobuf(encode_protobuf(spans)))


def test_json_carries_every_field_of_every_representative_span() -> None:
    spans = representative_spans()
    check_all(spans, parse_json(encode_json(spans)))


def test_protobuf_bytes_are_those_of_the_official_message() -> None:
    spans = representative_spans()
    assert encode_protobuf(spans) == encode_request(spans).SerializeToString()


def test_json_and_protobuf_say_the_same() -> None:
    spans = representative_spans()
    assert parse_json(encode_json(spans)) == parse_protobuf(encode_protobuf(spans))


def test_spans_are_grouped_by_resource_then_scope() -> None:
    request = parse_protobuf(encode_protobuf(representative_spans()))
    scopes = [[(ss.scope.name, len(ss.spans)) for ss in rs.scope_spans]
              for rs in request.resource_spans]
    assert scopes == [[("tracing_api.conformance", 7), ("other.library", 2)]]


def test_json_ids_are_lower_case_hex_and_enums_integers() -> None:
    body = json.loads(encode_json(representative_spans()[:1]))
    span = body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert (span["traceId"], span["spanId"], span["parentSpanId"], span["kind"],
            span["status"]) == ("4bf92f3577b34da6a3ce929d0e0e4736", "53995c3f42cd8ad8",
                                "00f067aa0ba902b7", 2, {"code": 1})


def test_json_writes_64_bit_integers_as_strings_and_non_finite_doubles_by_name() -> None:
    body = json.loads(encode_json(representative_spans()[2:3]))
    attributes = {kv["key"]: kv["value"]
                  for kv in body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"]}
    assert (attributes["int.max"], attributes["float.nan"], attributes["float.-inf"]) == (
        {"intValue": str(2**63 - 1)}, {"doubleValue": "NaN"}, {"doubleValue": "-Infinity"})


def test_strict_json_check_rejects_what_a_naive_parse_accepts() -> None:
    """Enum names and base64 ids parse fine with json_format; OTLP/JSON forbids both."""
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": "S/kvNXezTaajzpKdDg5HNg==", "spanId": "U5lcP0LNitg=", "kind": "SPAN_KIND_SERVER"}
    ]}]}]}).encode()
    with pytest.raises(AssertionError, match="lower-case hex"):
        parse_json(body)


def test_negative_integers_and_lone_surrogates_are_sent_safely() -> None:
    span = representative_spans()[0]._replace(attributes={"n": -1, "s": "a\ud800b"})
    [(_, _, sent)] = flat(parse_protobuf(encode_protobuf([span])))
    assert (sent.attributes[0].value.int_value, sent.attributes[1].value.string_value) == (
        -1, "a?b")


def test_an_integer_beyond_64_bits_is_sent_as_text() -> None:
    span = representative_spans()[0]
    big = span._replace(attributes={"big": 2**70})
    [(_, _, sent)] = flat(parse_protobuf(encode_protobuf([big])))
    assert sent.attributes[0].value.string_value == str(2**70)


def test_spans_with_invalid_ids_are_left_out() -> None:
    good = representative_spans()[0]
    bad = good._replace(context=good.context._replace(span_id=0))
    assert len(flat(parse_protobuf(encode_protobuf([bad, good])))) == 1


def test_empty_batch_is_an_empty_request() -> None:
    assert parse_protobuf(encode_protobuf([])) == encode_request([])


@settings(max_examples=FUZZ, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(span_data_strategy(), min_size=1, max_size=3))
def test_any_spans_survive_protobuf_and_json_encoding(spans: List[SpanData]) -> None:
    from_protobuf = parse_protobuf(encode_protobuf(spans))
    if len({s.context.span_id for s in spans}) == len(spans):
        check_all(spans, from_protobuf)
    # As dicts, where every NaN (of either sign: JSON has one) reads "NaN" and equals itself.
    assert json_format.MessageToDict(from_protobuf) == \
        json_format.MessageToDict(encode_request(spans))
    from_json = parse_json(encode_json(spans))
    assert json_format.MessageToDict(from_json) == json_format.MessageToDict(from_protobuf)
