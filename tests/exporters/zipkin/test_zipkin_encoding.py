"""Zipkin v2 JSON encoding: every field, checked against the official and a strict schema."""

from __future__ import annotations

import json
import os
from types import MappingProxyType
from typing import Any, Dict, List, Optional

from hypothesis import HealthCheck, given, settings
from tracing_api_zipkin import encode_spans, tag_value

import tracing_api as tracing
from tracing_api.export import InstrumentationScope, SpanData
from tracing_api.testing import representative_spans, span_data_strategy

FUZZ = int(os.environ.get("TRACING_FUZZ_EXAMPLES", "200"))
T0 = 1_700_000_000_000_000_000
UNSET = tracing.Status()
SERVER_CTX = tracing.SpanContext(0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7, 1)


def make(name: str = "op", *, context: tracing.SpanContext = SERVER_CTX,
         parent: Optional[tracing.SpanContext] = None,
         kind: tracing.SpanKind = tracing.SpanKind.INTERNAL, attributes: Any = None,
         events: Any = (), links: Any = (), status: tracing.Status = UNSET,
         resource: Any = None, start: int = T0, end: int = T0 + 1_500_000,
         dropped: Any = (0, 0, 0)) -> SpanData:
    return SpanData(name, context, parent, kind, start, end,
                    MappingProxyType(attributes or {}), tuple(events), tuple(links), status,
                    MappingProxyType(resource or {"service.name": "checkout"}),
                    InstrumentationScope("lib", "2.0"), *dropped)


def one(span: SpanData) -> Dict[str, Any]:
    decoded = json.loads(encode_spans([span]))
    assert len(decoded) == 1
    return dict(decoded[0])


def test_representative_spans_pass_the_official_schema(official: Any) -> None:
    assert official(encode_spans(representative_spans())) == []


def test_representative_spans_pass_the_strict_schema(strict: Any) -> None:
    assert strict(encode_spans(representative_spans())) == []


def test_strict_schema_rejects_what_the_official_one_lets_through(official: Any, strict: Any) -> None:
    """The strict copy is worth having: a 20-digit id and an unknown field pass the official."""
    body = json.dumps([{"traceId": "a" * 20, "id": "b" * 16, "extra": 1}]).encode()
    assert official(body) == []
    assert len(strict(body)) == 2


def test_ids_are_lower_case_hex() -> None:
    span = one(make(parent=tracing.SpanContext(SERVER_CTX.trace_id, 0xABC, 1)))
    assert (span["traceId"], span["id"], span["parentId"]) == (
        "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "0000000000000abc")


def test_trace_id_with_zero_high_half_is_written_as_16_digits() -> None:
    span = one(make(context=tracing.SpanContext(0xABCDEF, 0x1, 1)))
    assert span["traceId"] == "0000000000abcdef"


def test_root_span_has_no_parent_id() -> None:
    assert "parentId" not in one(make())


def test_times_are_microseconds_and_duration_rounds_up() -> None:
    span = one(make(start=T0 + 999, end=T0 + 999 + 1_500_001))
    assert (span["timestamp"], span["duration"]) == (T0 // 1000, 1501)


def test_zero_length_span_has_duration_one() -> None:
    assert one(make(end=T0))["duration"] == 1


def test_kinds_map_and_internal_has_none() -> None:
    kinds = {k: one(make(kind=k)).get("kind") for k in tracing.SpanKind}
    assert kinds == {tracing.SpanKind.INTERNAL: None, tracing.SpanKind.SERVER: "SERVER",
                     tracing.SpanKind.CLIENT: "CLIENT", tracing.SpanKind.PRODUCER: "PRODUCER",
                     tracing.SpanKind.CONSUMER: "CONSUMER"}


def test_local_endpoint_service_name_comes_from_the_resource() -> None:
    assert one(make())["localEndpoint"] == {"serviceName": "checkout"}


def test_local_endpoint_service_name_can_be_overridden() -> None:
    decoded = json.loads(encode_spans([make()], service_name="other"))
    assert decoded[0]["localEndpoint"] == {"serviceName": "other"}


def test_tags_are_stringified() -> None:
    tags = one(make(attributes={
        "s": "x", "t": True, "f": False, "i": -3, "d": 2.5, "nan": float("nan"),
        "inf": float("inf"), "ss": ("a", "b"), "bs": (True,), "is": (1, 2), "ds": (0.5,),
        "empty": ()}))["tags"]
    assert {k: v for k, v in tags.items() if not k.startswith("otel.")} == {
        "s": "x", "t": "true", "f": "false", "i": "-3", "d": "2.5", "nan": "NaN",
        "inf": "Infinity", "ss": '["a","b"]', "bs": "[true]", "is": "[1,2]", "ds": "[0.5]",
        "empty": "[]"}


def test_tag_value_writes_non_finite_floats_in_sequences_by_name() -> None:
    assert tag_value((1.0, float("-inf"))) == '[1.0,"-Infinity"]'


def test_error_status_sets_error_tag_to_description() -> None:
    tags = one(make(status=tracing.Status(tracing.StatusCode.ERROR, "boom")))["tags"]
    assert (tags["error"], tags["otel.status_code"]) == ("boom", "ERROR")


def test_error_status_without_description_sets_empty_error_tag() -> None:
    assert one(make(status=tracing.Status(tracing.StatusCode.ERROR)))["tags"]["error"] == ""


def test_ok_and_unset_status_set_no_error_tag() -> None:
    ok = one(make(status=tracing.Status(tracing.StatusCode.OK)))["tags"]
    unset = one(make())["tags"]
    assert ("error" in ok, ok["otel.status_code"], "otel.status_code" in unset) == (
        False, "OK", False)


def test_scope_and_dropped_counts_are_tags() -> None:
    link = tracing.Link(SERVER_CTX, MappingProxyType({}))
    tags = one(make(links=[link], dropped=(1, 2, 3)))["tags"]
    assert {k: v for k, v in tags.items() if k.startswith("otel.")} == {
        "otel.scope.name": "lib", "otel.scope.version": "2.0",
        "otel.dropped_attributes_count": "1", "otel.dropped_events_count": "2",
        "otel.dropped_links_count": "4"}  # the one link Zipkin cannot carry counts too


def test_events_become_annotations() -> None:
    events = [tracing.Event("plain", T0 + 5000, MappingProxyType({})),
              tracing.Event("with", T0 + 6000, MappingProxyType({"k": "v", "n": 1.5}))]
    assert one(make(events=events))["annotations"] == [
        {"timestamp": T0 // 1000 + 5, "value": "plain"},
        {"timestamp": T0 // 1000 + 6, "value": 'with {"k":"v","n":1.5}'}]


def test_debug_only_for_debug_traces() -> None:
    debug = tracing.SpanContext(SERVER_CTX.trace_id, 2, 1, debug=True)
    assert (one(make(context=debug)).get("debug"), one(make()).get("debug")) == (True, None)


def test_shared_marks_a_server_span_that_joined_its_callers_span() -> None:
    caller = SERVER_CTX._replace(is_remote=True)
    assert one(make(kind=tracing.SpanKind.SERVER, parent=caller))["shared"] is True


def test_server_span_with_its_own_id_is_not_shared() -> None:
    caller = tracing.SpanContext(SERVER_CTX.trace_id, 0x99, 1, is_remote=True)
    assert "shared" not in one(make(kind=tracing.SpanKind.SERVER, parent=caller))


def test_client_remote_endpoint_from_server_attributes() -> None:
    span = one(make(kind=tracing.SpanKind.CLIENT, attributes={
        "server.address": "db.internal", "server.port": 5432,
        "network.peer.address": "::ffff:10.0.0.5"}))
    assert span["remoteEndpoint"] == {"serviceName": "db.internal", "ipv4": "10.0.0.5",
                                      "port": 5432}


def test_server_remote_endpoint_is_the_client() -> None:
    span = one(make(kind=tracing.SpanKind.SERVER, attributes={
        "client.address": "2001:db8::1", "client.port": "40000", "server.address": "me"}))
    assert span["remoteEndpoint"] == {"ipv6": "2001:db8::1", "port": 40000}


def test_a_link_local_peer_is_written_without_its_zone(official: Any) -> None:
    body = encode_spans([make(kind=tracing.SpanKind.SERVER, attributes={
        "client.address": "fe80::1%eth0", "client.port": 5000})])
    assert json.loads(body)[0]["remoteEndpoint"] == {"ipv6": "fe80::1", "port": 5000}
    assert official(body) == []


def test_peer_service_names_the_remote_endpoint() -> None:
    span = one(make(kind=tracing.SpanKind.CLIENT, attributes={
        "peer.service": "billing", "server.address": "billing.internal", "server.port": 0}))
    assert span["remoteEndpoint"] == {"serviceName": "billing"}  # port 0 is no port


def test_internal_span_has_no_remote_endpoint() -> None:
    assert "remoteEndpoint" not in one(make(attributes={"server.address": "x"}))


def test_spans_with_invalid_ids_are_left_out() -> None:
    bad = make(context=tracing.SpanContext(0, 1, 1))
    assert json.loads(encode_spans([bad, make()])) == [one(make())]


def test_unicode_survives_as_utf8() -> None:
    body = encode_spans([make("ü 服务 😀", attributes={"k": "\u0000\u202e"})])
    span = json.loads(body.decode("utf-8"))[0]
    assert (span["name"], span["tags"]["k"]) == ("ü 服务 😀", "\u0000\u202e")


@settings(max_examples=FUZZ, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(span_data_strategy())
def test_any_span_encodes_to_a_strictly_valid_payload(strict: Any, span: SpanData) -> None:
    errors: List[str] = strict(encode_spans([span]))
    assert errors == []
