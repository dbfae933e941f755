"""What a caller's baggage can do to an outgoing gRPC call: nothing. Names grpcio refuses are
left out, and all the trace headers together stay under gRPC's 16 KiB header limit."""

from __future__ import annotations

import contextlib
from concurrent import futures
from typing import Any, Dict, Iterator, List, Tuple

import grpc
import pytest
import tracing_api_grpc

import tracing_api
from tracing_api import use_context
from tracing_api.context import get_baggage
from tracing_api.testing import capture

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
ALL_THREE = "tracecontext,baggage,jaeger"
HARD_LIMIT = 16384  # grpcio's default hard limit on a request's headers, as HPACK counts them


def _identity(data: bytes) -> bytes:
    return data


def _user(request: bytes, context: grpc.ServicerContext) -> bytes:
    return (get_baggage("user") or "").encode()


@contextlib.contextmanager
def _server(*options: Tuple[str, Any]) -> Iterator[str]:
    """A traced server on 127.0.0.1 answering ``/test.Limits/User`` with the ``user`` baggage
    entry it received; yields its target."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), options=list(options),
                         interceptors=tracing_api_grpc.server_interceptors())
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Limits", {
        "User": grpc.unary_unary_rpc_method_handler(_user, _identity, _identity)}),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(None).wait(5)


def _call_with_incoming(target: str, headers: Dict[str, str]) -> bytes:
    """Call ``User`` through a traced channel, in the context an HTTP server extracted from
    ``headers`` (a request from a stranger)."""
    with grpc.insecure_channel(target) as raw, use_context(tracing_api.extract(headers)):
        channel: Any = grpc.intercept_channel(raw, *tracing_api_grpc.client_interceptors(target))
        answer: bytes = channel.unary_unary("/test.Limits/User")(b"", timeout=10)
        return answer


class _StrangeNamePropagator:
    """Writes a name grpcio refuses beside a good one."""

    fields: Tuple[str, ...] = ("bad~name", "good")

    def inject(self, context: Any, carrier: Any, setter: Any) -> None:
        setter.set(carrier, "bad~name", "1")
        setter.set(carrier, "good", "yes")

    def extract(self, carrier: Any, context: Any, getter: Any) -> Any:
        return context


@pytest.mark.parametrize("key", ["x~y", "user*id", "a!b"])
def test_incoming_baggage_key_grpc_cannot_name_does_not_fail_the_outgoing_call(key: str) -> None:
    with _server() as target, capture(propagators=ALL_THREE):
        answer = _call_with_incoming(target, {"traceparent": TRACEPARENT,
                                              "baggage": f"{key}=1,user=ann"})
    assert answer == b"ann"


def test_pair_with_a_name_grpcio_refuses_is_left_out_and_the_call_succeeds(echo: Any) -> None:
    recorder = echo.MetadataRecorder()
    with _server() as target, capture(), grpc.insecure_channel(target) as raw:
        channel: Any = grpc.intercept_channel(raw, *tracing_api_grpc.client_interceptors(
            target, propagator=_StrangeNamePropagator()), recorder)
        assert channel.unary_unary("/test.Limits/User")(b"", timeout=10) == b""
    assert list(recorder.sent[0]) == [("good", "yes")]


def _maximal_baggage(value_size: int) -> str:
    """A ``baggage`` header as long as W3C Baggage allows (8,192 bytes), ``user`` first."""
    members: List[str] = ["user=ann"]
    index = 0
    while True:
        member = f"k{index}=" + "v" * value_size
        if len(",".join([*members, member])) > 8192:
            return ",".join(members)
        members.append(member)
        index += 1


@pytest.mark.parametrize("value_size", [90, 20, 2], ids=["long-values", "short", "tiny"])
def test_maximal_baggage_through_all_three_propagators_fits_under_the_hard_limit(
    value_size: int,
) -> None:
    """The server refuses every request at 16 KiB of headers, none below (its soft limit, 8 KiB
    by default, refuses a random share of those between: see docs/propagation.md)."""
    bag = _maximal_baggage(value_size)
    assert 8000 < len(bag) <= 8192
    limits = (("grpc.max_metadata_size", HARD_LIMIT), ("grpc.absolute_max_metadata_size", HARD_LIMIT))
    with _server(*limits) as target, capture(propagators=ALL_THREE):
        assert _call_with_incoming(target, {"traceparent": TRACEPARENT, "baggage": bag}) == b"ann"
