"""Our client interceptor ahead of others: an exception a later interceptor raises (a policy
check, a request serializer, the call's own RpcError) is what the caller gets and what the
CLIENT span records.
"""

from __future__ import annotations

from typing import Any, Callable

import grpc
import pytest

from tracing_api import SpanKind, StatusCode, sampling
from tracing_api.testing import capture


class Refuse(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """A later interceptor that refuses every call before it goes out."""

    def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        raise PermissionError("refused by policy")

    def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        raise PermissionError("refused by policy")


def _identity(data: bytes) -> bytes:
    return data


def _blocking(channel: grpc.Channel) -> Any:
    return channel.unary_unary("/test.Echo/Unary", _identity, _identity)(b"ok", timeout=5)


def _with_call(channel: grpc.Channel) -> Any:
    return channel.unary_unary("/test.Echo/Unary", _identity, _identity).with_call(b"ok", timeout=5)


def _future(channel: grpc.Channel) -> Any:
    return channel.unary_unary("/test.Echo/Unary", _identity, _identity).future(
        b"ok", timeout=5).result(5)  # positional: grpcio names it differently on failure


def _stream(channel: grpc.Channel) -> Any:
    return list(channel.unary_stream("/test.Echo/ServerStream", _identity, _identity)(b"x", timeout=5))


@pytest.mark.parametrize("call", [_blocking, _with_call, _future, _stream],
                         ids=["unary", "with_call", "future", "unary_stream"])
def test_exception_from_a_later_interceptor_is_recorded_on_the_client_span(
    target: str, echo: Any, call: Callable[[grpc.Channel], Any]
) -> None:
    with capture() as spans, echo.traced_channel(target, Refuse()) as channel, \
            pytest.raises(PermissionError, match="refused by policy"):
        call(channel)
    [client] = list(spans)  # the call never left: no server span
    assert client.kind == SpanKind.CLIENT
    assert client.status.code == StatusCode.ERROR
    assert client.status.description == "PermissionError: refused by policy"
    assert [e.attributes["exception.type"] for e in client.events if e.name == "exception"] == [
        "PermissionError"]
    assert "rpc.grpc.status_code" not in client.attributes


class CheckOutcome(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """A later interceptor that waits for the outcome and lets a failed call's RpcError out."""

    def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        outcome = continuation(client_call_details, request)
        outcome.result()  # raises the call's own RpcError when it failed
        return outcome

    def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        call = continuation(client_call_details, request)
        call.initial_metadata()  # waits until the server answers (or fails the call)
        if call.code() not in (None, grpc.StatusCode.OK) and not call.is_active():
            raise call  # a failed call is its own RpcError
        return call


def _abort_future(channel: grpc.Channel) -> Any:
    return channel.unary_unary("/test.Echo/Unary", _identity, _identity).future(
        b"abort", timeout=5).result(5)


def _abort_stream(channel: grpc.Channel) -> Any:
    return list(channel.unary_stream("/test.Echo/ServerStream", _identity, _identity)(
        b"abort", timeout=5))


@pytest.mark.parametrize(("call", "details"), [(_abort_future, "no such thing"),
                                               (_abort_stream, "no such feed")],
                         ids=["future", "unary_stream"])
def test_rpc_error_from_a_later_interceptor_records_the_calls_status(
    target: str, echo: Any, call: Callable[[grpc.Channel], Any], details: str
) -> None:
    with capture() as spans, echo.traced_channel(target, CheckOutcome()) as channel:
        with pytest.raises(grpc.RpcError) as raised:
            call(channel)
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND
        assert echo.wait_until(lambda: any(s.kind == SpanKind.CLIENT for s in spans))
    [client] = [s for s in spans if s.kind == SpanKind.CLIENT]
    assert client.attributes["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]
    assert client.status.code == StatusCode.ERROR
    assert client.status.description == f"NOT_FOUND: {details}"
    assert not [e for e in client.events if e.name == "exception"]


class QuotaExceeded(grpc.RpcError):
    """An application's own RpcError: no call behind it, so no ``code()`` or ``result()``."""


class Quota(grpc.UnaryUnaryClientInterceptor, grpc.StreamUnaryClientInterceptor):
    """A later interceptor that refuses every call with the application's own RpcError."""

    def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        raise QuotaExceeded("over quota")

    def intercept_stream_unary(
        self, continuation: Any, client_call_details: Any, request_iterator: Any
    ) -> Any:
        raise QuotaExceeded("over quota")


def _client_stream(channel: grpc.Channel) -> Any:
    return channel.stream_unary("/test.Echo/ClientStream", _identity, _identity)(
        iter([b"a", b"b"]), timeout=5)


@pytest.mark.parametrize("call", [_blocking, _with_call, _client_stream],
                         ids=["unary", "with_call", "stream_unary"])
def test_own_rpc_error_from_a_later_interceptor_reaches_the_caller_and_the_span(
    target: str, echo: Any, call: Callable[[grpc.Channel], Any]
) -> None:
    """grpcio hands such an error back from the blocking continuation instead of raising it."""
    with capture() as spans, echo.traced_channel(target, Quota()) as channel, \
            pytest.raises(QuotaExceeded, match="over quota"):
        call(channel)
    [client] = list(spans)
    assert client.status.code == StatusCode.ERROR
    assert client.status.description == "QuotaExceeded: over quota"
    assert [e.attributes["exception.message"] for e in client.events if e.name == "exception"] == [
        "over quota"]


@pytest.mark.parametrize("call", [_blocking, _with_call, _client_stream],
                         ids=["unary", "with_call", "stream_unary"])
def test_own_rpc_error_from_a_later_interceptor_reaches_the_caller_with_tracing_off(
    target: str, echo: Any, call: Callable[[grpc.Channel], Any]
) -> None:
    with echo.traced_channel(target, Quota()) as channel, \
            pytest.raises(QuotaExceeded, match="over quota"):
        call(channel)


@pytest.mark.parametrize("call", [_blocking, _with_call, _client_stream],
                         ids=["unary", "with_call", "stream_unary"])
def test_own_rpc_error_from_a_later_interceptor_reaches_the_caller_of_a_sampled_out_call(
    target: str, echo: Any, call: Callable[[grpc.Channel], Any]
) -> None:
    with capture(sampler=sampling.always_off()) as spans, \
            echo.traced_channel(target, Quota()) as channel, \
            pytest.raises(QuotaExceeded, match="over quota"):
        call(channel)
    assert not list(spans)
