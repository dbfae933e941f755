"""Trusted networks and IPv4-mapped IPv6 callers (``::ffff:10.1.2.3``), as dual-stack servers
report IPv4 peers.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any, Iterator, List

import pytest
from tracing_api_http import ASGIMiddleware, WSGIMiddleware

from tracing_api import SpanKind
from tracing_api.testing import CapturedSpans

STARTUP_TIMEOUT = 10.0
TRACE_HEX = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_HEX}-00f067aa0ba902b7-01"


def _continues_trace(trusted: List[str], remote_addr: str, spans: CapturedSpans) -> bool:
    """Whether a WSGI request from ``remote_addr`` carrying a traceparent continues its trace."""

    def app(environ: Any, start_response: Any) -> List[bytes]:
        start_response("200 OK", [])
        return [b"ok"]

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "wsgi.url_scheme": "http",
               "REMOTE_ADDR": remote_addr, "HTTP_TRACEPARENT": TRACEPARENT}
    body = WSGIMiddleware(app, trusted_networks=trusted)(environ, lambda *args: None)
    list(body)
    body.close()  # type: ignore[attr-defined]
    [span] = spans.spans
    return span.context.trace_id_hex == TRACE_HEX


@pytest.mark.parametrize("remote_addr", ["::ffff:10.1.2.3", "::FFFF:10.1.2.3"])
def test_mapped_caller_inside_an_ipv4_trusted_network_is_trusted(
    trace_capture: CapturedSpans, remote_addr: str
) -> None:
    assert _continues_trace(["10.0.0.0/8"], remote_addr, trace_capture)


def test_mapped_caller_outside_an_ipv4_trusted_network_is_public(
    trace_capture: CapturedSpans,
) -> None:
    assert not _continues_trace(["10.0.0.0/8"], "::ffff:11.1.2.3", trace_capture)


@pytest.mark.parametrize("remote_addr", ["::ffff:10.1.2.3", "10.1.2.3"])
def test_trusted_network_written_as_mapped_ipv6_trusts_both_forms(
    trace_capture: CapturedSpans, remote_addr: str
) -> None:
    assert _continues_trace(["::ffff:10.0.0.0/104"], remote_addr, trace_capture)


@pytest.mark.parametrize("remote_addr", ["::ffff:11.1.2.3", "11.1.2.3"])
def test_trusted_network_written_as_mapped_ipv6_keeps_outsiders_public(
    trace_capture: CapturedSpans, remote_addr: str
) -> None:
    assert not _continues_trace(["::ffff:10.0.0.0/104"], remote_addr, trace_capture)


def test_ipv6_trusted_network_does_not_trust_a_mapped_caller_outside_it(
    trace_capture: CapturedSpans,
) -> None:
    assert not _continues_trace(["fd00::/8"], "::ffff:10.1.2.3", trace_capture)


def _dual_stack_socket() -> socket.socket:
    try:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    except OSError as exc:
        pytest.skip(f"no IPv6 sockets on this machine: {exc}")
    try:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(("::", 0))
    except OSError as exc:
        sock.close()
        pytest.skip(f"cannot bind a dual-stack socket on [::]: {exc}")
    return sock


@pytest.fixture
def dual_stack_asgi_port() -> Iterator[Any]:
    """``start(app)``: serve ``app`` with uvicorn on a dual-stack [::] socket; its port."""
    import uvicorn

    servers: List[Any] = []

    def start(app: Any) -> int:
        sock = _dual_stack_socket()
        server = uvicorn.Server(uvicorn.Config(app, log_level="critical", lifespan="off",
                                               access_log=False))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        servers.append((server, thread, sock))
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        port: int = sock.getsockname()[1]
        return port

    try:
        yield start
    finally:
        for server, thread, sock in servers:
            server.should_exit = True
            thread.join(STARTUP_TIMEOUT)
            sock.close()


async def _ok(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def test_ipv4_caller_of_a_dual_stack_server_is_trusted_by_an_ipv4_network(
    trace_capture: CapturedSpans, dual_stack_asgi_port: Any, fetch: Any, wait_span: Any
) -> None:
    port = dual_stack_asgi_port(ASGIMiddleware(_ok, trusted_networks=["127.0.0.0/8"]))
    status, _ = fetch(f"http://127.0.0.1:{port}", "/", [("traceparent", TRACEPARENT)])
    span = wait_span(trace_capture, lambda s: s.kind == SpanKind.SERVER)
    assert status == 200
    assert span.attributes["client.address"] == "::ffff:127.0.0.1"  # the server saw it mapped
    assert span.context.trace_id_hex == TRACE_HEX
    assert span.links == ()
