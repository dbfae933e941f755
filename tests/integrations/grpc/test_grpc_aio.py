"""The ``grpc.aio`` client and server interceptors against a real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Tuple

import grpc
import grpc.aio
import pytest

from tracing_api import SpanKind, StatusCode
from tracing_api.testing import CapturedSpans, capture

UNARY = "/test.Echo/Unary"
SERVER_STREAM = "/test.Echo/ServerStream"
CLIENT_STREAM = "/test.Echo/ClientStream"
BIDI_STREAM = "/test.Echo/BidiStream"


def spans_of(spans: CapturedSpans, name: str) -> Tuple[Any, Any]:
    """The (client, server) spans called ``name``."""
    client = [s for s in spans if s.name == name and s.kind == SpanKind.CLIENT]
    server = [s for s in spans if s.name == name and s.kind == SpanKind.SERVER]
    assert len(client) == 1, spans.tree()
    assert len(server) == 1, spans.tree()
    return client[0], server[0]


def both_ended(spans: CapturedSpans) -> bool:
    return len([s for s in spans if s.kind != SpanKind.INTERNAL]) >= 2


async def _requests(*items: bytes) -> AsyncIterator[bytes]:
    for item in items:
        yield item


def test_unary_call_makes_a_client_span_with_the_server_span_as_its_child(echo: Any) -> None:
    async def scenario() -> bytes:
        async with echo.aio_serve() as target, echo.aio_traced_channel(target) as channel:
            return bytes(await channel.unary_unary(UNARY)(b"child", timeout=5))

    with capture() as spans:
        assert echo.run(scenario()) == b"child"
    spans.assert_tree("""
        test.Echo/Unary
          test.Echo/Unary
            handler.work
    """)
    client, server = spans_of(spans, "test.Echo/Unary")
    assert client.attributes["rpc.system"] == "grpc"
    assert client.attributes["rpc.grpc.status_code"] == 0
    assert client.attributes["server.address"] == "127.0.0.1"
    assert server.attributes["rpc.method"] == "Unary"
    assert server.attributes["network.peer.address"] == "127.0.0.1"


def test_server_streaming_handler_runs_each_item_under_the_server_span(echo: Any) -> None:
    async def scenario() -> list[bytes]:
        async with echo.aio_serve() as target, echo.aio_traced_channel(target) as channel:
            return [r async for r in channel.unary_stream(SERVER_STREAM)(b"go", timeout=5)]

    with capture() as spans:
        assert echo.run(scenario()) == [b"item-0", b"item-1", b"item-2"]
    spans.assert_tree("""
        test.Echo/ServerStream
          test.Echo/ServerStream
            item
            item
            item
    """)
    client, server = spans_of(spans, "test.Echo/ServerStream")
    assert [e.attributes["rpc.message.id"] for e in client.events
            if e.attributes["rpc.message.type"] == "RECEIVED"] == [1, 2, 3]
    assert [e.attributes["rpc.message.id"] for e in server.events
            if e.attributes["rpc.message.type"] == "SENT"] == [1, 2, 3]


def test_response_stream_read_with_read_is_traced(echo: Any) -> None:
    async def scenario() -> list[bytes]:
        async with echo.aio_serve() as target, echo.aio_traced_channel(target) as channel:
            call = channel.unary_stream(SERVER_STREAM)(b"go", timeout=5)
            got: list[bytes] = []
            while True:
                item = await call.read()
                if item is grpc.aio.EOF:
                    return got
                got.append(item)

    with capture() as spans:
        assert echo.run(scenario()) == [b"item-0", b"item-1", b"item-2"]
    client, _ = spans_of(spans, "test.Echo/ServerStream")
    assert client.attributes["rpc.grpc.status_code"] == 0


def test_client_streaming_call_counts_each_sent_message(echo: Any) -> None:
    async def scenario() -> bytes:
        async with echo.aio_serve() as target, echo.aio_traced_channel(target) as channel:
            return bytes(await channel.stream_unary(CLIENT_STREAM)(_requests(b"a", b"bc"), timeout=5))

    with capture() as spans:
        assert echo.run(scenario()) == b"abc"
    client, server = spans_of(spans, "test.Echo/ClientStream")
    assert [e.attributes["rpc.message.uncompressed_size"] for e in client.events] == [1, 2]
    assert [e.attributes["rpc.message.type"] for e in server.events] == ["RECEIVED", "RECEIVED", "SENT"]
    assert server.parent is not None
    assert server.parent.span_id == client.context.span_id


def test_bidi_streaming_call_is_traced_on_both_sides(echo: Any) -> None:
    async def scenario() -> list[bytes]:
        async with echo.aio_serve() as target, echo.aio_traced_channel(target) as channel:
            call = channel.stream_stream(BIDI_STREAM)(iter([b"a", b"b"]), timeout=5)
            return [r async for r in call]

    with capture() as spans:
        assert echo.run(scenario()) == [b"A", b"B"]
    client, server = spans_of(spans, "test.Echo/BidiStream")
    assert server.parent is not None
    assert server.parent.span_id == client.context.span_id
    assert len(client.events) == 4
    assert len(server.events) == 4


def test_abort_records_the_code_and_marks_only_the_client_span_as_error(echo: Any) -> None:
    async def scenario() -> grpc.StatusCode:
        async with echo.aio_serve() as target, echo.aio_traced_channel(target) as channel:
            try:
                await channel.unary_unary(UNARY)(b"abort", timeout=5)
            except grpc.aio.AioRpcError as error:
                return error.code()
            raise AssertionError("the call succeeded")

    with capture() as spans:
        assert echo.run(scenario()) == grpc.StatusCode.NOT_FOUND
    client, server = spans_of(spans, "test.Echo/Unary")
    assert client.status.code == StatusCode.ERROR
    assert client.attributes["rpc.grpc.status_code"] == 5
    assert server.attributes["rpc.grpc.status_code"] == 5
    assert server.status.code == StatusCode.UNSET
    assert not [e for e in server.events if e.name == "exception"]


def test_exception_raised_by_the_handler_is_recorded_on_the_server_span(echo: Any) -> None:
    async def scenario() -> None:
        async with echo.aio_serve() as target, echo.aio_traced_channel(target) as channel:
            with pytest.raises(grpc.aio.AioRpcError):
                await channel.unary_unary(UNARY)(b"raise", timeout=5)

    with capture() as spans:
        echo.run(scenario())
    _, server = spans_of(spans, "test.Echo/Unary")
    assert server.status.code == StatusCode.ERROR
    assert server.status.description == "ValueError: boom"
    assert server.attributes["rpc.grpc.status_code"] == 2


def test_deadline_exceeded_ends_the_client_and_server_spans(echo: Any) -> None:
    async def scenario(spans: CapturedSpans) -> None:
        async with echo.aio_serve() as target, echo.aio_traced_channel(target) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await channel.unary_unary(UNARY)(b"sleep", timeout=0.3)
            assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert await echo.eventually(lambda: both_ended(spans))

    with capture() as spans:
        echo.run(scenario(spans))
    client, server = spans_of(spans, "test.Echo/Unary")
    assert client.attributes["rpc.grpc.status_code"] == 4
    assert server.attributes["rpc.grpc.status_code"] == 4
    assert server.status.code == StatusCode.ERROR


def test_cancelled_call_ends_the_client_and_server_spans(echo: Any) -> None:
    async def scenario(spans: CapturedSpans) -> None:
        async with echo.aio_serve() as target, echo.aio_traced_channel(target) as channel:
            call = channel.unary_unary(UNARY)(b"sleep", timeout=10)
            assert await echo.eventually(echo.sleeping.is_set)
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            assert await echo.eventually(lambda: both_ended(spans))

    with capture() as spans:
        echo.run(scenario(spans))
    client, server = spans_of(spans, "test.Echo/Unary")
    assert client.attributes["rpc.grpc.status_code"] == 1
    assert server.attributes["rpc.grpc.status_code"] == 1


def test_response_stream_never_read_ends_its_span_when_cancelled(echo: Any) -> None:
    async def scenario(spans: CapturedSpans) -> None:
        async with echo.aio_serve() as target, echo.aio_traced_channel(target) as channel:
            call = channel.unary_stream(SERVER_STREAM)(b"forever", timeout=10)
            assert await echo.eventually(echo.sleeping.is_set)
            call.cancel()
            assert await echo.eventually(lambda: both_ended(spans))

    with capture() as spans:
        echo.run(scenario(spans))
    client, server = spans_of(spans, "test.Echo/ServerStream")
    assert client.attributes["rpc.grpc.status_code"] == 1
    assert server.attributes["rpc.grpc.status_code"] == 1


def test_three_hop_chain_makes_one_trace_with_correct_parents(echo: Any) -> None:
    async def scenario() -> bytes:
        async with echo.aio_serve() as hop_b, echo.aio_serve() as hop_a, \
                echo.aio_traced_channel(hop_a) as channel:
            return bytes(await channel.unary_unary(UNARY)(f"forward:{hop_b}".encode(), timeout=10))

    with capture() as spans:
        assert echo.run(scenario()) == b"child"
    spans.assert_tree("""
        test.Echo/Unary
          test.Echo/Unary
            test.Echo/Unary
              test.Echo/Unary
                handler.work
    """)
    assert len({s.context.trace_id for s in spans}) == 1


def test_plain_function_handler_on_an_aio_server_is_traced(echo: Any) -> None:
    async def scenario() -> bytes:
        async with echo.aio_serve() as target, echo.aio_traced_channel(target) as channel:
            return bytes(await channel.unary_unary("/test.Echo/SyncUnary")(b"child", timeout=5))

    with capture() as spans:
        assert echo.run(scenario()) == b"child"
    spans.assert_tree("""
        test.Echo/SyncUnary
          test.Echo/SyncUnary
            handler.work
    """)
