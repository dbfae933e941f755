"""The ``grpc`` client and server interceptors against a real server on 127.0.0.1."""

from __future__ import annotations

import gc
from typing import Any, Tuple

import grpc
import pytest

import tracing_api
from tracing_api import SpanKind, StatusCode
from tracing_api.context import use_baggage
from tracing_api.testing import CapturedSpans, capture

UNARY = "/test.Echo/Unary"
SERVER_STREAM = "/test.Echo/ServerStream"
CLIENT_STREAM = "/test.Echo/ClientStream"
BIDI_STREAM = "/test.Echo/BidiStream"


def _identity(data: bytes) -> bytes:
    return data


def spans_of(spans: CapturedSpans, name: str) -> Tuple[Any, Any]:
    """The (client, server) spans called ``name``."""
    client = [s for s in spans if s.name == name and s.kind == SpanKind.CLIENT]
    server = [s for s in spans if s.name == name and s.kind == SpanKind.SERVER]
    assert len(client) == 1, spans.tree()
    assert len(server) == 1, spans.tree()
    return client[0], server[0]


def both_ended(spans: CapturedSpans, count: int = 2) -> bool:
    return len([s for s in spans if s.kind != SpanKind.INTERNAL]) >= count


def test_unary_call_makes_a_client_span_with_the_server_span_as_its_child(channel: Any) -> None:
    with capture() as spans:
        assert channel.unary_unary(UNARY)(b"ok", timeout=5) == b"ok"
    client, server = spans_of(spans, "test.Echo/Unary")
    assert server.parent is not None
    assert server.parent.span_id == client.context.span_id
    assert server.context.trace_id == client.context.trace_id
    assert client.parent is None


def test_client_span_has_rpc_and_server_attributes(channel: Any, target: str) -> None:
    with capture() as spans:
        channel.unary_unary(UNARY)(b"ok", timeout=5)
    host, port = target.rsplit(":", 1)
    client, _ = spans_of(spans, "test.Echo/Unary")
    assert dict(client.attributes) == {
        "rpc.system": "grpc", "rpc.service": "test.Echo", "rpc.method": "Unary",
        "rpc.grpc.status_code": 0, "server.address": host, "server.port": int(port),
    }


def test_server_span_has_rpc_and_peer_attributes(channel: Any) -> None:
    with capture() as spans:
        channel.unary_unary(UNARY)(b"ok", timeout=5)
    _, server = spans_of(spans, "test.Echo/Unary")
    assert server.attributes["rpc.system"] == "grpc"
    assert server.attributes["rpc.service"] == "test.Echo"
    assert server.attributes["rpc.method"] == "Unary"
    assert server.attributes["rpc.grpc.status_code"] == 0
    assert server.attributes["network.peer.address"] == "127.0.0.1"
    assert isinstance(server.attributes["network.peer.port"], int)
    assert server.status.code == StatusCode.UNSET


def test_unary_call_records_sent_and_received_messages_with_sizes(channel: Any) -> None:
    with capture() as spans:
        channel.unary_unary(UNARY)(b"ok", timeout=5)
    client, server = spans_of(spans, "test.Echo/Unary")
    assert [dict(e.attributes) for e in client.events] == [
        {"rpc.message.type": "SENT", "rpc.message.id": 1, "rpc.message.uncompressed_size": 2},
        {"rpc.message.type": "RECEIVED", "rpc.message.id": 1, "rpc.message.uncompressed_size": 2},
    ]
    assert [e.attributes["rpc.message.type"] for e in server.events] == ["RECEIVED", "SENT"]


def test_spans_started_by_the_handler_are_children_of_the_server_span(channel: Any) -> None:
    with capture() as spans:
        channel.unary_unary(UNARY)(b"child", timeout=5)
    spans.assert_tree("""
        test.Echo/Unary
          test.Echo/Unary
            handler.work
    """)


def test_server_streaming_handler_runs_each_item_under_the_server_span(channel: Any) -> None:
    with capture() as spans:
        responses = list(channel.unary_stream(SERVER_STREAM)(b"go", timeout=5))
    assert responses == [b"item-0", b"item-1", b"item-2"]
    spans.assert_tree("""
        test.Echo/ServerStream
          test.Echo/ServerStream
            item
            item
            item
    """)


def test_server_streaming_client_counts_received_messages(channel: Any) -> None:
    with capture() as spans:
        list(channel.unary_stream(SERVER_STREAM)(b"go", timeout=5))
    client, server = spans_of(spans, "test.Echo/ServerStream")
    received = [e.attributes["rpc.message.id"] for e in client.events
                if e.attributes["rpc.message.type"] == "RECEIVED"]
    sent = [e.attributes["rpc.message.id"] for e in server.events
            if e.attributes["rpc.message.type"] == "SENT"]
    assert received == [1, 2, 3]
    assert sent == [1, 2, 3]
    assert client.attributes["rpc.grpc.status_code"] == 0


def test_client_streaming_call_counts_each_sent_message(channel: Any) -> None:
    with capture() as spans:
        assert channel.stream_unary(CLIENT_STREAM)(iter([b"a", b"bc"]), timeout=5) == b"abc"
    client, server = spans_of(spans, "test.Echo/ClientStream")
    assert [(e.attributes["rpc.message.type"], e.attributes.get("rpc.message.uncompressed_size"))
            for e in client.events] == [("SENT", 1), ("SENT", 2), ("RECEIVED", 3)]
    assert [e.attributes["rpc.message.type"] for e in server.events] == ["RECEIVED", "RECEIVED", "SENT"]
    assert server.parent is not None
    assert server.parent.span_id == client.context.span_id


def test_handler_taking_a_request_with_next_gets_it(channel: Any) -> None:
    call = channel.stream_unary("/test.Echo/FirstRequest", _identity, _identity)
    with capture() as spans:
        assert call(iter([b"a", b"b"]), timeout=5) == b"a"
    _, server = spans_of(spans, "test.Echo/FirstRequest")
    assert [e.attributes["rpc.message.type"] for e in server.events] == ["RECEIVED", "SENT"]


def test_bidi_streaming_call_is_traced_on_both_sides(channel: Any) -> None:
    with capture() as spans:
        responses = list(channel.stream_stream(BIDI_STREAM)(iter([b"a", b"b"]), timeout=5))
    assert responses == [b"A", b"B"]
    client, server = spans_of(spans, "test.Echo/BidiStream")
    assert server.parent is not None
    assert server.parent.span_id == client.context.span_id
    assert client.attributes["rpc.grpc.status_code"] == 0
    assert len(client.events) == 4
    assert len(server.events) == 4


def test_future_call_ends_its_span_when_the_call_completes(channel: Any, echo: Any) -> None:
    with capture() as spans:
        future = channel.unary_unary(UNARY).future(b"ok", timeout=5)
        assert future.result(timeout=5) == b"ok"
        assert echo.wait_until(lambda: both_ended(spans))
    client, _ = spans_of(spans, "test.Echo/Unary")
    assert client.attributes["rpc.grpc.status_code"] == 0


def test_abort_with_a_caller_error_marks_only_the_client_span_as_error(channel: Any) -> None:
    with capture() as spans, pytest.raises(grpc.RpcError) as raised:
        channel.unary_unary(UNARY)(b"abort", timeout=5)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    client, server = spans_of(spans, "test.Echo/Unary")
    assert client.attributes["rpc.grpc.status_code"] == 5
    assert client.status.code == StatusCode.ERROR
    assert client.status.description == "NOT_FOUND: no such thing"
    assert server.attributes["rpc.grpc.status_code"] == 5
    assert server.status.code == StatusCode.UNSET
    assert not [e for e in server.events if e.name == "exception"]


def test_abort_with_a_server_fault_marks_the_server_span_as_error(channel: Any) -> None:
    with capture() as spans, pytest.raises(grpc.RpcError):
        channel.unary_unary(UNARY)(b"abort-internal", timeout=5)
    _, server = spans_of(spans, "test.Echo/Unary")
    assert server.attributes["rpc.grpc.status_code"] == 13
    assert server.status.code == StatusCode.ERROR
    assert server.status.description == "INTERNAL: broken"


def test_exception_raised_by_the_handler_is_recorded_on_the_server_span(channel: Any) -> None:
    with capture() as spans, pytest.raises(grpc.RpcError) as raised:
        channel.unary_unary(UNARY)(b"raise", timeout=5)
    assert raised.value.code() == grpc.StatusCode.UNKNOWN
    client, server = spans_of(spans, "test.Echo/Unary")
    assert server.attributes["rpc.grpc.status_code"] == 2
    assert server.status.code == StatusCode.ERROR
    assert server.status.description == "ValueError: boom"
    [event] = [e for e in server.events if e.name == "exception"]
    assert event.attributes["exception.type"] == "ValueError"
    assert client.status.code == StatusCode.ERROR


def test_deadline_exceeded_ends_the_client_and_server_spans(channel: Any, echo: Any) -> None:
    with capture() as spans:
        with pytest.raises(grpc.RpcError) as raised:
            channel.unary_unary(UNARY)(b"sleep", timeout=0.3)
        assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert echo.wait_until(lambda: both_ended(spans))
    client, server = spans_of(spans, "test.Echo/Unary")
    assert client.attributes["rpc.grpc.status_code"] == 4
    assert server.attributes["rpc.grpc.status_code"] == 4
    assert server.status.code == StatusCode.ERROR


def test_cancelled_future_ends_the_client_and_server_spans(channel: Any, echo: Any) -> None:
    with capture() as spans:
        future = channel.unary_unary(UNARY).future(b"sleep", timeout=10)
        assert echo.sleeping.wait(5)
        future.cancel()
        assert echo.wait_until(lambda: both_ended(spans))
    client, server = spans_of(spans, "test.Echo/Unary")
    assert client.attributes["rpc.grpc.status_code"] == 1
    assert server.attributes["rpc.grpc.status_code"] == 1


def test_cancelled_response_stream_ends_the_client_and_server_spans(
    channel: Any, echo: Any
) -> None:
    with capture() as spans:
        call = channel.unary_stream(SERVER_STREAM)(b"forever", timeout=10)
        assert next(call) == b"tick"
        call.cancel()
        assert echo.wait_until(lambda: both_ended(spans))
    client, server = spans_of(spans, "test.Echo/ServerStream")
    assert client.attributes["rpc.grpc.status_code"] == 1
    assert client.status.code == StatusCode.ERROR
    assert server.attributes["rpc.grpc.status_code"] == 1


def test_response_stream_never_read_and_dropped_ends_the_client_span(
    channel: Any, echo: Any
) -> None:
    with capture() as spans:
        call = channel.unary_stream(SERVER_STREAM)(b"forever", timeout=10)
        assert echo.sleeping.wait(5)
        del call  # never iterated: dropping the call cancels it
        gc.collect()
        assert echo.wait_until(lambda: both_ended(spans))
    client, server = spans_of(spans, "test.Echo/ServerStream")
    assert client.attributes["rpc.grpc.status_code"] == 1
    assert server.attributes["rpc.grpc.status_code"] == 1


def test_response_stream_never_read_ends_its_span_at_the_deadline(
    channel: Any, echo: Any
) -> None:
    with capture() as spans:
        call = channel.unary_stream(SERVER_STREAM)(b"forever", timeout=0.3)
        assert echo.wait_until(lambda: len([s for s in spans if s.kind == SpanKind.CLIENT]) == 1)
        assert call.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    [client] = [s for s in spans if s.kind == SpanKind.CLIENT]
    assert client.attributes["rpc.grpc.status_code"] == 4


def test_three_hop_chain_makes_one_trace_with_correct_parents(echo: Any) -> None:
    with echo.serve() as hop_b, echo.serve() as hop_a, echo.traced_channel(hop_a) as channel, \
            capture() as spans:
        reply = channel.unary_unary(UNARY)(f"forward:{hop_b}".encode(), timeout=10)
    assert reply == b"child"
    spans.assert_tree("""
        test.Echo/Unary
          test.Echo/Unary
            test.Echo/Unary
              test.Echo/Unary
                handler.work
    """)
    assert len({s.context.trace_id for s in spans}) == 1
    kinds = [s.kind for s in sorted(spans, key=lambda s: s.start_time)]
    assert kinds == [SpanKind.CLIENT, SpanKind.SERVER, SpanKind.CLIENT, SpanKind.SERVER,
                     SpanKind.INTERNAL]


def test_server_continues_the_trace_of_an_incoming_traceparent(target: str) -> None:
    parent = "00-4bf92f3577b34da6a3ce929d000e4736-00f067aa0ba902b7-01"
    with capture() as spans, grpc.insecure_channel(target) as plain:
        plain.unary_unary(UNARY, _identity, _identity)(
            b"ok", timeout=5, metadata=(("traceparent", parent),))
    [server] = list(spans)
    assert server.context.trace_id_hex == "4bf92f3577b34da6a3ce929d000e4736"
    assert server.parent is not None
    assert server.parent.span_id_hex == "00f067aa0ba902b7"
    assert server.parent.is_remote


def test_handler_sees_the_callers_baggage(channel: Any) -> None:
    with capture(), use_baggage({"user": "ada"}):
        assert channel.unary_unary(UNARY)(b"baggage", timeout=5) == b"ada"


def test_client_writes_traceparent_of_its_span_into_the_metadata(target: str, echo: Any) -> None:
    recorder = echo.MetadataRecorder()
    with capture() as spans, echo.traced_channel(target, recorder) as channel:
        channel.unary_unary(UNARY)(b"ok", timeout=5)
    client, _ = spans_of(spans, "test.Echo/Unary")
    sent = dict(recorder.sent[0])
    assert sent["traceparent"] == (
        f"00-{client.context.trace_id_hex}-{client.context.span_id_hex}-{client.context.trace_flags:02x}"
    )


def test_client_keeps_the_callers_own_metadata(target: str, echo: Any) -> None:
    recorder = echo.MetadataRecorder()
    with capture(), echo.traced_channel(target, recorder) as channel:
        channel.unary_unary(UNARY)(b"ok", timeout=5, metadata=[("x-request-id", "42")])
    assert ("x-request-id", "42") in recorder.sent[0]


def test_client_drops_another_traces_propagation_metadata_it_forwards(
        target: str, echo: Any) -> None:
    forwarded = [("traceparent", "00-11111111111111111111111111111111-2222222222222222-01"),
                 ("tracestate", "vendor=opaque"), ("baggage", "user=mallory"),
                 ("x-b3-parentspanid", "00f067aa0ba902b7"), ("uberctx-tenant", "other"),
                 ("x-request-id", "42")]
    recorder = echo.MetadataRecorder()
    tracing_api.configure(propagators=["tracecontext", "baggage", "b3multi", "jaeger"])
    with capture(), echo.traced_channel(target, recorder) as channel:
        channel.unary_unary(UNARY)(b"ok", timeout=5, metadata=forwarded)
    sent = recorder.sent[0]
    names = [key for key, _ in sent]
    assert "tracestate" not in names and "baggage" not in names
    assert "x-b3-parentspanid" not in names and "uberctx-tenant" not in names
    assert names.count("traceparent") == 1 and not dict(sent)["traceparent"].startswith("00-1111")
    assert ("x-request-id", "42") in sent


class _BinaryPropagator:
    """Writes the span id as bytes under a ``-bin`` key, as a binary format does."""

    fields = ("x-span-bin",)

    def inject(self, context: Any, carrier: Any, setter: Any) -> None:
        setter.set(carrier, "x-span-bin", context.span_context.span_id.to_bytes(8, "big"))

    def extract(self, carrier: Any, context: Any, getter: Any) -> Any:
        return context


class _CarelessPropagator:
    """Writes values grpcio would refuse: text under a ``-bin`` key, bytes under a text key."""

    fields = ("bad-bin", "bad-text", "good")

    def inject(self, context: Any, carrier: Any, setter: Any) -> None:
        setter.set(carrier, "bad-bin", "text")
        setter.set(carrier, "bad-text", b"\x00bytes")
        setter.set(carrier, "good", "yes")

    def extract(self, carrier: Any, context: Any, getter: Any) -> Any:
        return context


class _BrokenPropagator(_BinaryPropagator):
    def inject(self, context: Any, carrier: Any, setter: Any) -> None:
        raise RuntimeError("propagator bug")


def test_binary_header_of_a_configured_propagator_goes_out_as_bytes(target: str, echo: Any) -> None:
    recorder = echo.MetadataRecorder()
    with capture(propagators=["tracecontext", _BinaryPropagator()]) as spans, \
            echo.traced_channel(target, recorder) as channel:
        channel.unary_unary(UNARY)(b"ok", timeout=5)
    client, _ = spans_of(spans, "test.Echo/Unary")
    sent = dict(recorder.sent[0])
    assert sent["x-span-bin"] == client.context.span_id.to_bytes(8, "big")
    assert "traceparent" in sent


def test_propagator_given_to_the_channel_replaces_the_configured_ones(target: str, echo: Any) -> None:
    recorder = echo.MetadataRecorder()
    with capture(), echo.traced_channel(target, recorder, propagator=_BinaryPropagator()) as channel:
        channel.unary_unary(UNARY)(b"ok", timeout=5)
    assert [key for key, _ in recorder.sent[0]] == ["x-span-bin"]


def test_grpc_trace_bin_goes_out_when_the_grpc_binary_propagator_is_configured(
    target: str, echo: Any
) -> None:
    pytest.importorskip("tracing_api_propagation.grpc_binary")
    recorder = echo.MetadataRecorder()
    with capture(propagators="tracecontext,baggage,grpc_binary") as spans, \
            echo.traced_channel(target, recorder) as channel:
        channel.unary_unary(UNARY)(b"ok", timeout=5)
    client, _ = spans_of(spans, "test.Echo/Unary")
    value = dict(recorder.sent[0])["grpc-trace-bin"]
    assert isinstance(value, bytes)
    assert value[2:18] == client.context.trace_id.to_bytes(16, "big")


def test_values_grpcio_would_refuse_are_left_out_and_the_call_succeeds(target: str, echo: Any) -> None:
    recorder = echo.MetadataRecorder()
    with capture(), echo.traced_channel(target, recorder, propagator=_CarelessPropagator()) as channel:
        assert channel.unary_unary(UNARY)(b"ok", timeout=5) == b"ok"
    assert list(recorder.sent[0]) == [("good", "yes")]


def test_failing_propagator_neither_fails_the_call_nor_loses_the_span(target: str, echo: Any) -> None:
    with capture() as spans, echo.traced_channel(target, propagator=_BrokenPropagator()) as channel:
        assert channel.unary_unary(UNARY)(b"ok", timeout=5) == b"ok"
    assert [s.kind for s in spans if s.name == "test.Echo/Unary"].count(SpanKind.CLIENT) == 1


def test_untraced_process_passes_the_incoming_context_through(target: str) -> None:
    parent = "00-4bf92f3577b34da6a3ce929d000e4736-00f067aa0ba902b7-01"
    with grpc.insecure_channel(target) as plain:
        answer = plain.unary_unary(UNARY, _identity, _identity)(
            b"whoami", timeout=5, metadata=(("traceparent", parent),))
    assert answer == b"4bf92f3577b34da6a3ce929d000e4736-00f067aa0ba902b7"


def test_calls_work_unchanged_when_tracing_is_off(channel: Any) -> None:
    assert tracing_api.current_span() is tracing_api.INVALID_SPAN
    assert channel.unary_unary(UNARY)(b"ok", timeout=5) == b"ok"
    assert list(channel.unary_stream(SERVER_STREAM)(b"go", timeout=5)) == [
        b"item-0", b"item-1", b"item-2"]
