"""Cloud Trace's limits: truncation on character boundaries, dropped counts, request splitting."""

from __future__ import annotations

import os
from typing import Any, Callable, Dict

from hypothesis import given, settings
from hypothesis import strategies as st
from tracing_api_stackdriver import _stacktrace
from tracing_api_stackdriver._mapping import LIMITS, to_span
from tracing_api_stackdriver._truncate import truncate

from tracing_api import Event, ExportResult, Link, SpanContext, Status, StatusCode
from tracing_api.export import PartialSuccess, SpanData

EXAMPLES = int(os.environ.get("TRACING_FUZZ_EXAMPLES", "200"))


def test_display_name_is_cut_at_128_bytes_on_a_character_boundary(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    name = "a" + "😀" * 300  # 1 + 1,200 bytes
    assert make_exporter().export([make_span(name=name)]) is ExportResult.SUCCESS
    (sent,) = cloud_trace.spans
    assert sent.display_name.value == "a" + "😀" * 31  # 125 bytes: a 4-byte emoji won't fit
    assert sent.display_name.truncated_byte_count == 1_201 - 125


def test_attribute_value_is_cut_at_256_bytes(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    value = "é" * 40_000  # 80,000 bytes
    assert make_exporter().export([make_span(attributes={"v": value})]) is ExportResult.SUCCESS
    got = cloud_trace.spans[0].attributes.attribute_map["v"].string_value
    assert got.value == "é" * 128
    assert got.truncated_byte_count == 80_000 - 256


def test_attribute_value_of_256_bytes_is_not_cut(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    value = "x" * 256
    assert make_exporter().export([make_span(attributes={"v": value})]) is ExportResult.SUCCESS
    got = cloud_trace.spans[0].attributes.attribute_map["v"].string_value
    assert (got.value, got.truncated_byte_count) == (value, 0)


def test_attribute_key_over_128_bytes_is_dropped_and_counted(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    span = make_span(attributes={"k" * 129: 1, "o" * 128: 2}, dropped=(3, 0, 0))
    assert make_exporter().export([span]) is ExportResult.SUCCESS
    attrs = cloud_trace.spans[0].attributes
    assert "k" * 129 not in attrs.attribute_map
    assert attrs.attribute_map["o" * 128].int_value == 2
    assert attrs.dropped_attributes_count == 4  # the span's own 3, and the long key


def test_attributes_over_32_are_dropped_and_counted(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    span = make_span(attributes={f"a{i}": i for i in range(40)}, dropped=(5, 0, 0))
    assert make_exporter().export([span]) is ExportResult.SUCCESS
    attrs = cloud_trace.spans[0].attributes
    assert len(attrs.attribute_map) == 32
    assert "g.co/agent" in attrs.attribute_map
    assert attrs.dropped_attributes_count == 5 + 40 - 31


def test_console_http_labels_survive_the_32_attribute_cut(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    attributes: Dict[str, Any] = {f"a{i}": i for i in range(40)}
    attributes.update({"http.request.method": "GET", "http.route": "/users/{id}",
                       "http.response.status_code": 200})
    assert make_exporter().export([make_span(attributes=attributes)]) is ExportResult.SUCCESS
    kept = cloud_trace.spans[0].attributes.attribute_map
    assert {"g.co/agent", "/http/method", "/http/route", "/http/status_code"} <= set(kept)
    assert sorted(k for k in kept if k.startswith("a")) == sorted(f"a{i}" for i in range(28))


def test_events_over_32_are_dropped_and_counted(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    events = tuple(Event(f"e{i}", 1_700_000_000_000_000_000 + i, {}) for i in range(40))
    span = make_span(events=events, dropped=(0, 7, 0))
    assert make_exporter().export([span]) is ExportResult.SUCCESS
    time_events = cloud_trace.spans[0].time_events
    assert [e.annotation.description.value for e in time_events.time_event] == \
        [f"e{i}" for i in range(32)]
    assert time_events.dropped_annotations_count == 7 + 8


def test_event_attributes_over_4_are_dropped_and_counted(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    event = Event("e", 1_700_000_000_000_000_000, {f"k{i}": i for i in range(6)}, 2)
    assert make_exporter().export([make_span(events=(event,))]) is ExportResult.SUCCESS
    attrs = cloud_trace.spans[0].time_events.time_event[0].annotation.attributes
    assert sorted(attrs.attribute_map) == ["k0", "k1", "k2", "k3"]
    assert attrs.dropped_attributes_count == 2 + 2


def test_event_description_is_cut_at_256_bytes(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    event = Event("ü" * 200, 1_700_000_000_000_000_000, {})
    assert make_exporter().export([make_span(events=(event,))]) is ExportResult.SUCCESS
    description = cloud_trace.spans[0].time_events.time_event[0].annotation.description
    assert (description.value, description.truncated_byte_count) == ("ü" * 128, 144)


def test_links_over_128_are_dropped_and_counted(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    links = tuple(Link(SpanContext(1, i + 1, 1), {}) for i in range(200))
    span = make_span(links=links, dropped=(0, 0, 2))
    assert make_exporter().export([span]) is ExportResult.SUCCESS
    sent = cloud_trace.spans[0].links
    assert len(sent.link) == 128
    assert sent.dropped_links_count == 2 + 72


def test_link_attributes_over_32_are_dropped_and_counted(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    link = Link(SpanContext(1, 2, 1), {f"k{i}": i for i in range(40)}, 1)
    assert make_exporter().export([make_span(links=(link,))]) is ExportResult.SUCCESS
    attrs = cloud_trace.spans[0].links.link[0].attributes
    assert len(attrs.attribute_map) == 32
    assert attrs.dropped_attributes_count == 1 + 8


def test_limits_given_to_the_exporter_replace_the_v2_ones(
    cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    from tracing_api_stackdriver import CloudTraceExporter, Limits

    exporter = CloudTraceExporter("p", client=cloud_trace.client(),
                                  limits=Limits(value_bytes=65_532, attributes=100))
    try:
        span = make_span(attributes={f"a{i}": "x" * 10_000 for i in range(50)})
        assert exporter.export([span]) is ExportResult.SUCCESS
    finally:
        exporter.shutdown()
    attrs = cloud_trace.spans[0].attributes
    assert len(attrs.attribute_map) == 52  # the agent label, 50 attributes, service.name
    assert attrs.attribute_map["a0"].string_value.value == "x" * 10_000


def _linked(span_id: int, make_span: Callable[..., SpanData], links: int) -> SpanData:
    """A span made big within the v2 limits: links with 32 attributes of 256 bytes each."""
    attributes = {f"k{i:02}": "v" * 256 for i in range(32)}
    return make_span(span_id, links=tuple(Link(SpanContext(1, j + 1, 1), attributes)
                                          for j in range(links)))


def test_requests_are_split_by_span_count(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    exporter = make_exporter(max_spans_per_request=3)
    assert exporter.export([make_span(i + 1) for i in range(7)]) is ExportResult.SUCCESS
    assert [len(r.spans) for r in cloud_trace.received] == [3, 3, 1]
    assert cloud_trace.span_ids() == [format(i + 1, "016x") for i in range(7)]


def test_requests_are_split_by_bytes(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    exporter = make_exporter(max_request_bytes=65_536)
    spans = [_linked(i + 1, make_span, links=2) for i in range(10)]  # about 18 kB each
    assert exporter.export(spans) is ExportResult.SUCCESS
    assert len(cloud_trace.received) > 1
    assert all(r._pb.ByteSize() <= 65_536 for r in cloud_trace.received)
    assert len(cloud_trace.spans) == 10


def test_default_split_stays_under_grpc_4_mib_message_limit(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    """The test server keeps gRPC's default 4 MiB receive limit: one 6 MB request would fail."""
    spans = [_linked(i + 1, make_span, links=128) for i in range(6)]  # about 1.1 MB each
    assert make_exporter().export(spans) is ExportResult.SUCCESS
    assert len(cloud_trace.received) >= 2
    assert len(cloud_trace.spans) == 6


def test_span_bigger_than_a_request_sheds_its_latest_links(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    exporter = make_exporter(max_request_bytes=65_536)
    assert exporter.export([_linked(1, make_span, links=20)]) is ExportResult.SUCCESS
    (request,) = cloud_trace.received
    assert request._pb.ByteSize() <= 65_536
    links = request.spans[0].links
    assert 0 < len(links.link) < 20
    assert links.dropped_links_count == 20 - len(links.link)
    assert [link.span_id for link in links.link] == \
        [format(j + 1, "016x") for j in range(len(links.link))]  # the first ones stay


def test_span_bigger_than_a_request_sheds_its_biggest_attributes(
    cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    from tracing_api_stackdriver import CloudTraceExporter, Limits

    attributes = {f"big{i}": "z" * 10_000 for i in range(20)}
    attributes["small"] = "kept"
    exporter = CloudTraceExporter("p", client=cloud_trace.client(), max_request_bytes=65_536,
                                  limits=Limits(value_bytes=65_532))
    try:
        assert exporter.export([make_span(attributes=attributes)]) is ExportResult.SUCCESS
    finally:
        exporter.shutdown()
    (request,) = cloud_trace.received
    assert request._pb.ByteSize() <= 65_536
    sent = request.spans[0].attributes
    assert sent.attribute_map["small"].string_value.value == "kept"
    kept_big = [k for k in sent.attribute_map if k.startswith("big")]
    assert sent.dropped_attributes_count == 20 - len(kept_big)
    assert 0 < len(kept_big) < 20


def test_long_status_message_is_cut_to_fit_the_smallest_request(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    message = "query failed: " + "x" * 70_000
    exporter = make_exporter(max_request_bytes=65_536)
    span = make_span(status=Status(StatusCode.ERROR, message))
    assert exporter.export([span]) is ExportResult.SUCCESS
    (request,) = cloud_trace.received
    assert request._pb.ByteSize() <= 65_536
    sent = request.spans[0].status.message
    assert 0 < len(sent) < len(message) and message.startswith(sent)


def test_long_status_message_is_cut_before_attributes_are_shed(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    exporter = make_exporter(max_request_bytes=65_536)
    span = make_span(attributes={"user.id": "u-123", "http.route": "/users/{id}"},
                     status=Status(StatusCode.ERROR, "é" * 40_000))  # 80,000 bytes
    assert exporter.export([span]) is ExportResult.SUCCESS
    sent = cloud_trace.spans[0]
    assert {"user.id", "/http/route"} <= set(sent.attributes.attribute_map)
    assert sent.attributes.dropped_attributes_count == 0
    assert set(sent.status.message) == {"é"}


def test_invalid_span_id_is_rejected_here_and_neighbours_go(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    exporter = make_exporter()
    result = exporter.export([make_span(1), make_span(0), make_span(2)])
    assert result == PartialSuccess(2)  # not every span arrived
    assert cloud_trace.span_ids() == ["0000000000000001", "0000000000000002"]
    assert exporter.stats()["spans_rejected"] == 1
    assert exporter.stats()["spans_exported"] == 2


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.text(), st.integers(min_value=0, max_value=300))
def test_truncate_gives_valid_utf8_within_the_limit_and_counts_the_cut(
    text: str, limit: int,
) -> None:
    value, cut = truncate(text, limit)
    whole = text.encode("utf-8", "replace")
    data = value.encode("utf-8")  # strict: a lone surrogate here would raise
    assert len(data) <= limit
    assert whole.startswith(data)
    assert cut == len(whole) - len(data)
    assert len(data) > limit - 4 or cut == 0  # at most one character short of the limit


_VALUES = st.one_of(
    st.text(max_size=80), st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True), st.lists(st.text(max_size=5), max_size=3).map(tuple),
)


# Keys and names as hostile as Python strings get: lone surrogates (bytes decoded with
# "surrogateescape"), multi-byte characters, and lengths around the 128-byte limits.
_HOSTILE_TEXT = st.text(
    alphabet=st.one_of(st.characters(), st.characters(min_codepoint=0xD800,
                                                     max_codepoint=0xDFFF)),
    max_size=200)


def _check_attributes(attrs: Any, most: int) -> None:
    assert len(attrs.attribute_map) <= most
    for key, value in attrs.attribute_map.items():
        assert len(key.encode()) <= LIMITS.key_bytes
        assert len(value.string_value.value.encode()) <= LIMITS.value_bytes


@settings(max_examples=EXAMPLES, deadline=None)
@given(name=_HOSTILE_TEXT,
       attributes=st.dictionaries(_HOSTILE_TEXT, _VALUES, max_size=40),
       event_name=st.text(max_size=300))
def test_any_span_maps_to_a_message_that_serializes_within_limits(
    make_span: Callable[..., SpanData], name: str, attributes: Dict[str, Any], event_name: str,
) -> None:
    event = Event(event_name, 1_700_000_000_000_000_000, attributes)
    link = Link(SpanContext(1, 2, 1), attributes)
    message = to_span(make_span(name=name, attributes=attributes, events=(event,),
                                links=(link,)), "p")
    message.SerializeToString()  # would raise on anything protobuf cannot carry
    assert len(message.display_name.value.encode()) <= LIMITS.name_bytes
    assert len(message.time_events.time_event[0].annotation.description.value.encode()) <= 256
    _check_attributes(message.attributes, LIMITS.attributes)
    _check_attributes(message.time_events.time_event[0].annotation.attributes,
                      LIMITS.annotation_attributes)
    _check_attributes(message.links.link[0].attributes, LIMITS.link_attributes)
    assert "g.co/agent" in message.attributes.attribute_map


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.text())
def test_stack_trace_parser_never_raises(text: str) -> None:
    found = _stacktrace.parse(text)
    assert found is None or (found.frames and found.hash_id != 0)
