"""Cloud Trace's limits: truncation on character boundaries, dropped counts, request splitting."""

from __future__ import annotations

import os
from typing import Any, Callable, Dict

from hypothesis import given, settings
from hypothesis import strategies as st
from tracing_api_stackdriver import _stacktrace
from tracing_api_stackdriver._mapping import LIMITS, to_span
from tracing_api_stackdriver._truncate import truncate

from tracing_api import Event, ExportResult, Link, SpanContext
from tracing_api.export import PartialSuccess, SpanData

EXAMPLES = int(os.environ.get("TRACING_FUZZ_EXAMPLES", "200"))


def test_display_name_is_cut_on_a_character_boundary(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    name = "a" + "😀" * 300  # 1 + 1,200 bytes
    assert make_exporter().export([make_span(name=name)]) is ExportResult.SUCCESS
    (sent,) = cloud_trace.spans
    assert sent.display_name.value == "a" + "😀" * 255  # 1,021 bytes: a 4-byte emoji won't fit
    assert sent.display_name.truncated_byte_count == 180


def test_attribute_value_is_cut_at_65532_bytes(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    value = "é" * 40_000  # 80,000 bytes
    assert make_exporter().export([make_span(attributes={"v": value})]) is ExportResult.SUCCESS
    got = cloud_trace.spans[0].attributes.attribute_map["v"].string_value
    assert got.value == "é" * 32_766
    assert got.truncated_byte_count == 80_000 - 65_532


def test_attribute_value_under_the_limit_is_not_cut_to_256_bytes(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    value = "x" * 10_000
    assert make_exporter().export([make_span(attributes={"v": value})]) is ExportResult.SUCCESS
    got = cloud_trace.spans[0].attributes.attribute_map["v"].string_value
    assert (got.value, got.truncated_byte_count) == (value, 0)


def test_attribute_key_over_512_bytes_is_dropped_and_counted(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    span = make_span(attributes={"k" * 513: 1, "ok": 2}, dropped=(3, 0, 0))
    assert make_exporter().export([span]) is ExportResult.SUCCESS
    attrs = cloud_trace.spans[0].attributes
    assert "k" * 513 not in attrs.attribute_map
    assert attrs.attribute_map["ok"].int_value == 2
    assert attrs.dropped_attributes_count == 4  # the span's own 3, and the long key


def test_attributes_over_1024_are_dropped_and_counted(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    span = make_span(attributes={f"a{i}": i for i in range(1100)}, dropped=(5, 0, 0))
    assert make_exporter().export([span]) is ExportResult.SUCCESS
    attrs = cloud_trace.spans[0].attributes
    assert len(attrs.attribute_map) == 1024
    assert "g.co/agent" in attrs.attribute_map
    assert attrs.dropped_attributes_count == 5 + 1100 - 1023


def test_events_over_256_are_dropped_and_counted(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    events = tuple(Event(f"e{i}", 1_700_000_000_000_000_000 + i, {}) for i in range(300))
    span = make_span(events=events, dropped=(0, 7, 0))
    assert make_exporter().export([span]) is ExportResult.SUCCESS
    time_events = cloud_trace.spans[0].time_events
    assert [e.annotation.description.value for e in time_events.time_event] == \
        [f"e{i}" for i in range(256)]
    assert time_events.dropped_annotations_count == 7 + 44


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
    spans = [make_span(i + 1, attributes={"blob": "b" * 20_000}) for i in range(10)]
    assert exporter.export(spans) is ExportResult.SUCCESS
    assert len(cloud_trace.received) > 1
    assert all(r._pb.ByteSize() <= 65_536 for r in cloud_trace.received)
    assert len(cloud_trace.spans) == 10


def test_default_split_stays_under_grpc_4_mib_message_limit(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    """The test server keeps gRPC's default 4 MiB receive limit: one 6 MB request would fail."""
    spans = [make_span(i + 1, attributes={"blob": "b" * 60_000}) for i in range(100)]
    assert make_exporter().export(spans) is ExportResult.SUCCESS
    assert len(cloud_trace.received) >= 2
    assert len(cloud_trace.spans) == 100


def test_span_bigger_than_a_request_sheds_its_biggest_attributes(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    attributes = {f"big{i}": "z" * 10_000 for i in range(20)}
    attributes["small"] = "kept"
    exporter = make_exporter(max_request_bytes=65_536)
    assert exporter.export([make_span(attributes=attributes)]) is ExportResult.SUCCESS
    (request,) = cloud_trace.received
    assert request._pb.ByteSize() <= 65_536
    sent = request.spans[0].attributes
    assert sent.attribute_map["small"].string_value.value == "kept"
    kept_big = [k for k in sent.attribute_map if k.startswith("big")]
    assert sent.dropped_attributes_count == 20 - len(kept_big)
    assert 0 < len(kept_big) < 20


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


@settings(max_examples=EXAMPLES, deadline=None)
@given(name=st.text(max_size=400),
       attributes=st.dictionaries(st.text(max_size=40), _VALUES, max_size=20),
       event_name=st.text(max_size=300))
def test_any_span_maps_to_a_message_that_serializes_within_limits(
    make_span: Callable[..., SpanData], name: str, attributes: Dict[str, Any], event_name: str,
) -> None:
    event = Event(event_name, 1_700_000_000_000_000_000, attributes)
    message = to_span(make_span(name=name, attributes=attributes, events=(event,)), "p")
    message.SerializeToString()  # would raise on anything protobuf cannot carry
    assert len(message.display_name.value.encode()) <= LIMITS.name_bytes
    assert len(message.time_events.time_event[0].annotation.description.value.encode()) <= 256
    for value in message.attributes.attribute_map.values():
        assert len(value.string_value.value.encode()) <= LIMITS.value_bytes


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.text())
def test_stack_trace_parser_never_raises(text: str) -> None:
    found = _stacktrace.parse(text)
    assert found is None or (found.frames and found.hash_id != 0)
