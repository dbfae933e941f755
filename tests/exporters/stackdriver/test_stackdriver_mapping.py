"""What Cloud Trace receives for each field of a span, read back by the local server."""

from __future__ import annotations

import asyncio
import sys
import traceback
from typing import Any, Callable, Dict

import pytest

from tracing_api import Event, ExportResult, Link, SpanContext, SpanKind, Status, StatusCode
from tracing_api.export import SpanData

TRACE_HEX = "4bf92f3577b34da6a3ce929d0e0e4736"


def _export_one(make_exporter: Callable[..., Any], cloud_trace: Any, span: Any) -> Any:
    assert make_exporter().export([span]) is ExportResult.SUCCESS
    (request,) = cloud_trace.received
    assert request.name == "projects/p"
    (sent,) = request.spans
    return sent


def _attrs(sent: Any) -> Dict[str, Any]:
    out = {}
    for key, value in sent.attributes.attribute_map.items():
        kind = value._pb.WhichOneof("value")
        out[key] = value.string_value.value if kind == "string_value" else getattr(value, kind)
    return out


def test_span_name_ids_and_display_name(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    sent = _export_one(make_exporter, cloud_trace, make_span(0x00F067AA0BA902B7, name="GET /a"))
    assert sent.name == f"projects/p/traces/{TRACE_HEX}/spans/00f067aa0ba902b7"
    assert sent.span_id == "00f067aa0ba902b7"
    assert sent.display_name.value == "GET /a"
    assert sent.display_name.truncated_byte_count == 0


def test_times_keep_nanoseconds(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    sent = _export_one(make_exporter, cloud_trace, make_span())
    start, end = sent._pb.start_time, sent._pb.end_time
    assert (start.seconds, start.nanos) == (1_700_000_000, 123_456_789)
    assert (end.seconds, end.nanos) == (1_700_000_000, 124_956_789)


def test_root_span_has_no_parent_and_no_same_process_flag(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    sent = _export_one(make_exporter, cloud_trace, make_span())
    assert sent.parent_span_id == ""
    assert not sent._pb.HasField("same_process_as_parent_span")


def test_local_parent_is_same_process(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    parent = SpanContext(0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x1234, 1)
    sent = _export_one(make_exporter, cloud_trace, make_span(parent=parent))
    assert sent.parent_span_id == "0000000000001234"
    assert sent._pb.same_process_as_parent_span.value is True


def test_remote_parent_is_another_process(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    parent = SpanContext(0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x1234, 1, is_remote=True)
    sent = _export_one(make_exporter, cloud_trace, make_span(parent=parent))
    assert sent._pb.HasField("same_process_as_parent_span")
    assert sent._pb.same_process_as_parent_span.value is False


def test_every_span_kind_maps_to_its_cloud_trace_kind(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    exporter = make_exporter()
    spans = [make_span(i + 1, kind=kind) for i, kind in enumerate(SpanKind)]
    assert exporter.export(spans) is ExportResult.SUCCESS
    got = {s.span_id: s.span_kind.name for s in cloud_trace.spans}
    assert got == {format(i + 1, "016x"): kind.name for i, kind in enumerate(SpanKind)}


def test_attribute_types(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    sent = _export_one(make_exporter, cloud_trace, make_span(attributes={
        "s": "text", "i": -7, "b": True, "f": 2.5, "list": ("a", "ü"), "ints": (1, 2),
    }))
    values = sent.attributes.attribute_map
    assert values["s"].string_value.value == "text"
    assert values["i"].int_value == -7
    assert values["b"]._pb.WhichOneof("value") == "bool_value"
    assert values["b"].bool_value is True
    assert values["f"].string_value.value == "2.5"  # Cloud Trace has no floats
    assert values["list"].string_value.value == '["a", "ü"]'
    assert values["ints"].string_value.value == "[1, 2]"
    assert sent.attributes.dropped_attributes_count == 0


def test_http_attributes_get_the_console_labels(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    sent = _export_one(make_exporter, cloud_trace, make_span(attributes={
        "http.request.method": "GET", "http.response.status_code": 404,
        "url.full": "https://shop.example/a?b=1", "server.address": "shop.example",
        "user_agent.original": "curl/8.0", "http.route": "/a", "custom": "kept",
    }))
    assert _attrs(sent) == {
        "/http/method": "GET", "/http/status_code": 404, "/http/url": "https://shop.example/a?b=1",
        "/http/host": "shop.example", "/http/user_agent": "curl/8.0", "/http/route": "/a",
        "custom": "kept", "g.co/agent": "tracing-api 0.1.0", "service.name": "shop",
    }


def test_older_http_keys_get_the_console_labels_too(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    sent = _export_one(make_exporter, cloud_trace, make_span(attributes={
        "http.method": "POST", "http.status_code": 201, "http.url": "http://x/", "http.host": "x",
    }))
    got = _attrs(sent)
    assert (got["/http/method"], got["/http/status_code"]) == ("POST", 201)
    assert (got["/http/url"], got["/http/host"]) == ("http://x/", "x")


def test_server_address_of_a_database_span_is_not_an_http_host(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    sent = _export_one(make_exporter, cloud_trace, make_span(
        kind=SpanKind.CLIENT, attributes={"db.system": "postgresql", "server.address": "db"}))
    got = _attrs(sent)
    assert got["server.address"] == "db"
    assert "/http/host" not in got


def test_two_keys_for_one_label_keep_the_first_and_count_the_other(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    sent = _export_one(make_exporter, cloud_trace, make_span(
        attributes={"http.request.method": "GET", "http.method": "POST"}))
    assert _attrs(sent)["/http/method"] == "GET"
    assert sent.attributes.dropped_attributes_count == 1


def test_agent_label_names_the_library(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    sent = _export_one(make_exporter, cloud_trace, make_span())
    assert sent.attributes.attribute_map["g.co/agent"].string_value.value == "tracing-api 0.1.0"


def test_span_attribute_wins_over_resource_service_name(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    sent = _export_one(make_exporter, cloud_trace, make_span(attributes={"service.name": "own"}))
    assert _attrs(sent)["service.name"] == "own"


def test_events_become_annotations(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    event = Event("cache.miss", 1_700_000_000_500_000_001, {"key": "u:7", "hit": False}, 2)
    sent = _export_one(make_exporter, cloud_trace, make_span(events=(event,)))
    (time_event,) = sent.time_events.time_event
    assert (time_event._pb.time.seconds, time_event._pb.time.nanos) == (1_700_000_000, 500_000_001)
    assert time_event.annotation.description.value == "cache.miss"
    annotation_attrs = time_event.annotation.attributes
    assert annotation_attrs.attribute_map["key"].string_value.value == "u:7"
    assert annotation_attrs.attribute_map["hit"].bool_value is False
    assert annotation_attrs.dropped_attributes_count == 2


def test_links_keep_ids_and_attributes(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    other = SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, 1)
    sent = _export_one(make_exporter, cloud_trace, make_span(
        links=(Link(other, {"reason": "batch"}, 1),)))
    (link,) = sent.links.link
    assert link.trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert link.span_id == "b7ad6b7169203331"
    assert link.attributes.attribute_map["reason"].string_value.value == "batch"
    assert link.attributes.dropped_attributes_count == 1


def test_unset_status_sends_no_status(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    sent = _export_one(make_exporter, cloud_trace, make_span())
    assert not sent._pb.HasField("status")


def test_ok_status_is_code_zero(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    sent = _export_one(make_exporter, cloud_trace, make_span(status=Status(StatusCode.OK)))
    assert sent._pb.HasField("status")
    assert sent._pb.status.code == 0


def test_error_status_is_unknown_with_the_description(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    sent = _export_one(make_exporter, cloud_trace,
                       make_span(status=Status(StatusCode.ERROR, "boom ü")))
    assert (sent._pb.status.code, sent._pb.status.message) == (2, "boom ü")


def test_error_status_of_a_grpc_span_keeps_its_code(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    sent = _export_one(make_exporter, cloud_trace, make_span(
        attributes={"rpc.grpc.status_code": 14}, status=Status(StatusCode.ERROR, "down")))
    assert sent._pb.status.code == 14


def _exception_event() -> Event:
    def inner() -> None:
        raise ValueError("bad")

    def outer() -> None:
        inner()

    try:
        outer()
    except ValueError as exc:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return Event("exception", 1_700_000_000_200_000_000, {
        "exception.type": "ValueError", "exception.message": "bad", "exception.stacktrace": text})


def test_exception_stack_trace_goes_to_the_stack_trace_field(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    sent = _export_one(make_exporter, cloud_trace, make_span(events=(_exception_event(),)))
    frames = sent.stack_trace.stack_frames.frame
    names = [f.function_name.value for f in frames]
    assert names == ["inner", "outer", "_exception_event"]  # innermost first
    assert frames[0].file_name.value.endswith("test_stackdriver_mapping.py")
    assert frames[0].line_number > 0
    assert sent.stack_trace.stack_trace_hash_id != 0


# An exception group raised while another exception was handled, as Python 3.11 prints it: the
# group's own traceback last at the top level, then its sub-exceptions' behind deeper bars.
GROUP_TRACEBACK = """\
Traceback (most recent call last):
  File "/srv/app/views.py", line 11, in handler
    raise KeyError("first")
KeyError: 'first'

During handling of the above exception, another exception occurred:

  + Exception Group Traceback (most recent call last):
  |   File "/srv/app/main.py", line 15, in <module>
  |     handler()
  |   File "/srv/app/views.py", line 13, in handler
  |     gather()
  |   File "/srv/app/views.py", line 8, in gather
  |     raise ExceptionGroup("eg", errors)
  | ExceptionGroup: eg (2 sub-exceptions)
  +-+---------------- 1 ----------------
    | Traceback (most recent call last):
    |   File "/srv/app/views.py", line 6, in gather
    |     fetch_user()
    |   File "/srv/app/db.py", line 3, in fetch_user
    |     raise ConnectionError("db down")
    | ConnectionError: db down
    +---------------- 2 ----------------
    | Traceback (most recent call last):
    |   File "/srv/app/db.py", line 9, in fetch_orders
    |     raise TimeoutError("slow")
    | TimeoutError: slow
    +------------------------------------
"""


def test_exception_group_sends_the_frames_of_the_group_itself(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    event = Event("exception", 1_700_000_000_200_000_000, {
        "exception.type": "ExceptionGroup", "exception.stacktrace": GROUP_TRACEBACK})
    sent = _export_one(make_exporter, cloud_trace, make_span(events=(event,)))
    frames = sent.stack_trace.stack_frames.frame
    assert [(f.function_name.value, f.line_number) for f in frames] == \
        [("gather", 8), ("handler", 13), ("<module>", 15)]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.TaskGroup is Python 3.11+; "
                    "the printed form is tested on every version above")
def test_span_ended_by_a_task_group_sends_the_frames_that_awaited_it(
    make_exporter: Callable[..., Any], cloud_trace: Any,
) -> None:
    import tracing_api as tracing

    tracing.configure(exporter=make_exporter(), processor="simple")
    tracer = tracing.get_tracer("tests")
    # Looked up by name: the project is type-checked as Python 3.9, which has no TaskGroup.
    task_group: Any = getattr(asyncio, "TaskGroup")  # noqa: B009

    async def fetch_user() -> None:
        raise ConnectionError("db down")

    async def handle_request() -> None:
        async with task_group() as group:
            group.create_task(fetch_user())

    async def main() -> None:
        with tracer.span("GET /users"):
            await handle_request()

    with pytest.raises(Exception, match="unhandled errors in a TaskGroup"):
        asyncio.run(main())
    (sent,) = cloud_trace.spans
    names = [f.function_name.value for f in sent.stack_trace.stack_frames.frame]
    assert "handle_request" in names and "main" in names
    assert "fetch_user" not in names


def test_exception_annotation_keeps_type_and_message(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    sent = _export_one(make_exporter, cloud_trace, make_span(events=(_exception_event(),)))
    (time_event,) = sent.time_events.time_event
    assert time_event.annotation.description.value == "exception"
    attrs = time_event.annotation.attributes.attribute_map
    assert attrs["exception.type"].string_value.value == "ValueError"
    assert attrs["exception.message"].string_value.value == "bad"


def test_long_stack_trace_is_not_cut_to_256_bytes(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    text = "Traceback (most recent call last):\n" + "".join(
        f'  File "/srv/app/module_{i}.py", line {i + 1}, in function_{i}\n' for i in range(60)
    ) + "ValueError: deep\n"
    event = Event("exception", 1_700_000_000_200_000_000, {"exception.stacktrace": text})
    sent = _export_one(make_exporter, cloud_trace, make_span(events=(event,)))
    frames = sent.stack_trace.stack_frames.frame
    assert len(frames) == 60
    assert frames[0].function_name.value == "function_59"
    assert frames[-1].file_name.value == "/srv/app/module_0.py"
    assert frames[-1].line_number == 1


def test_stack_trace_over_128_frames_counts_the_dropped(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    text = "Traceback (most recent call last):\n" + '  File "a.py", line 1, in f\n' * 200
    event = Event("exception", 1_700_000_000_200_000_000, {"exception.stacktrace": text})
    sent = _export_one(make_exporter, cloud_trace, make_span(events=(event,)))
    assert len(sent.stack_trace.stack_frames.frame) == 128
    assert sent.stack_trace.stack_frames.dropped_frames_count == 72


def test_repeated_stack_trace_is_sent_once_per_request(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    event = _exception_event()
    spans = [make_span(1, events=(event,)), make_span(2, events=(event,))]
    assert make_exporter().export(spans) is ExportResult.SUCCESS
    first, second = cloud_trace.spans
    assert len(first.stack_trace.stack_frames.frame) == 3
    assert len(second.stack_trace.stack_frames.frame) == 0
    assert second.stack_trace.stack_trace_hash_id == first.stack_trace.stack_trace_hash_id


def test_repeated_stack_trace_in_another_trace_is_sent_in_full(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    event = _exception_event()
    spans = [make_span(1, events=(event,)), make_span(2, events=(event,), trace_id=7)]
    assert make_exporter().export(spans) is ExportResult.SUCCESS
    first, second = cloud_trace.spans
    assert len(first.stack_trace.stack_frames.frame) == 3
    assert len(second.stack_trace.stack_frames.frame) == 3


def test_lone_surrogate_in_a_span_attribute_key_becomes_a_question_mark(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    sent = _export_one(make_exporter, cloud_trace,
                       make_span(attributes={"http.request.header.x-b\udcffad": "1"}))
    assert _attrs(sent)["http.request.header.x-b?ad"] == "1"


def test_lone_surrogate_in_an_event_attribute_key_becomes_a_question_mark(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    event = Event("evt", 1_700_000_000_100_000_000, {"k\ud800": 1})
    sent = _export_one(make_exporter, cloud_trace, make_span(events=(event,)))
    attrs = sent.time_events.time_event[0].annotation.attributes.attribute_map
    assert attrs["k?"].int_value == 1


def test_lone_surrogate_in_a_link_attribute_key_becomes_a_question_mark(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    link = Link(SpanContext(1, 2, 1), {"\udc80k": True})
    sent = _export_one(make_exporter, cloud_trace, make_span(links=(link,)))
    assert sent.links.link[0].attributes.attribute_map["?k"].bool_value is True
