"""Span names and attributes from method names, channel targets and peer strings; the peer of a
real server on the IPv6 loopback.
"""

from __future__ import annotations

import os
import socket
from typing import Any

import grpc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tracing_api_grpc._rpc import describe_method, peer_attributes, server_attributes

from tracing_api import SpanKind
from tracing_api.testing import capture

EXAMPLES = int(os.environ.get("TRACING_FUZZ_EXAMPLES", "200"))


def test_method_name_loses_its_leading_slash_and_splits_into_service_and_method() -> None:
    name, attributes = describe_method("/helloworld.Greeter/SayHello")
    assert name == "helloworld.Greeter/SayHello"
    assert dict(attributes) == {
        "rpc.system": "grpc", "rpc.service": "helloworld.Greeter", "rpc.method": "SayHello",
    }


def test_method_name_given_as_bytes_reads_the_same() -> None:
    assert describe_method(b"/helloworld.Greeter/SayHello")[0] == "helloworld.Greeter/SayHello"


def test_method_name_without_service_keeps_only_the_method() -> None:
    name, attributes = describe_method("/Ping")
    assert name == "Ping"
    assert "rpc.service" not in attributes
    assert attributes["rpc.method"] == "Ping"


def test_host_and_port_target_names_the_server() -> None:
    assert server_attributes("localhost:50051") == {"server.address": "localhost", "server.port": 50051}


def test_dns_target_names_the_server() -> None:
    assert server_attributes("dns:///greeter.example:443") == {
        "server.address": "greeter.example", "server.port": 443,
    }


def test_ipv6_target_names_the_server_without_brackets() -> None:
    assert server_attributes("[::1]:50051") == {"server.address": "::1", "server.port": 50051}


def test_unix_target_names_the_socket_path() -> None:
    assert server_attributes("unix:///tmp/greeter.sock") == {"server.address": "/tmp/greeter.sock"}


def test_target_with_an_impossible_port_keeps_only_the_host() -> None:
    assert server_attributes("host:99999") == {"server.address": "host"}


def test_ipv4_peer_gives_address_port_and_network_type() -> None:
    assert peer_attributes("ipv4:127.0.0.1:54321") == {
        "network.type": "ipv4", "network.peer.address": "127.0.0.1", "network.peer.port": 54321,
    }


def test_ipv6_peer_gives_address_without_brackets() -> None:
    assert peer_attributes("ipv6:[::1]:54321") == {
        "network.type": "ipv6", "network.peer.address": "::1", "network.peer.port": 54321,
    }


def test_percent_encoded_ipv6_peer_gives_address_and_port() -> None:
    """grpcio writes IPv6 peers as URIs, with the brackets percent-encoded."""
    assert peer_attributes("ipv6:%5B::1%5D:54321") == {
        "network.type": "ipv6", "network.peer.address": "::1", "network.peer.port": 54321,
    }


def test_percent_encoded_scoped_ipv6_peer_keeps_its_zone() -> None:
    assert peer_attributes("ipv6:%5Bfe80::1%25eth0%5D:443") == {
        "network.type": "ipv6", "network.peer.address": "fe80::1%eth0", "network.peer.port": 443,
    }


def test_unknown_peer_kind_gives_nothing() -> None:
    assert peer_attributes("vsock:3:1024") == {}


@settings(max_examples=EXAMPLES)
@given(st.text(max_size=300))
def test_any_target_yields_attributes_without_raising(target: str) -> None:
    attributes = server_attributes(target)
    port = attributes.get("server.port")
    assert port is None or (isinstance(port, int) and 0 <= port <= 65535)


@settings(max_examples=EXAMPLES)
@given(st.text(max_size=300))
def test_any_peer_string_yields_attributes_without_raising(peer: str) -> None:
    attributes = peer_attributes(peer)
    assert set(attributes) <= {
        "network.type", "network.transport", "network.peer.address", "network.peer.port",
    }


@settings(max_examples=EXAMPLES)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200)))
def test_any_method_name_yields_a_span_name_without_raising(method: object) -> None:
    name, attributes = describe_method(method)  # type: ignore[arg-type]
    assert name
    assert attributes["rpc.system"] == "grpc"



def _ipv6_loopback_or_skip() -> None:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback on this machine (cannot bind ::1: {exc})")


def test_server_span_of_an_ipv6_caller_has_its_address_and_port(echo: Any) -> None:
    _ipv6_loopback_or_skip()
    with echo.serve("[::1]") as target, capture() as spans, grpc.insecure_channel(target) as plain:
        plain.unary_unary("/test.Echo/Unary", lambda b: b, lambda b: b)(b"ok", timeout=5)
        assert echo.wait_until(lambda: len(spans) == 1)
    [server] = [s for s in spans if s.kind == SpanKind.SERVER]
    assert server.attributes["network.type"] == "ipv6"
    assert server.attributes["network.peer.address"] == "::1"
    assert isinstance(server.attributes["network.peer.port"], int)
