"""Real servers on 127.0.0.1 for the HTTP integration tests: a plain backend, a WSGI server
(wsgiref) and an ASGI server (uvicorn), each on an ephemeral port, each stopped afterwards.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, Iterator, List
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

from tracing_api.export import SpanData
from tracing_api.testing import CapturedSpans

STARTUP_TIMEOUT = 10.0
WAIT_TIMEOUT = 5.0


class Backend:
    """A plain ``http.server`` backend that remembers the headers of every request."""

    def __init__(self) -> None:
        self.requests: List[Dict[str, str]] = []
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                backend.requests.append({k.lower(): v for k, v in self.headers.items()})
                path = self.path.split("?")[0]
                if path == "/redirect":
                    self._reply(302, b"", {"Location": "/ok"})
                elif path == "/missing":
                    self._reply(404, b"missing")
                elif path == "/broken":
                    self._reply(500, b"broken")
                else:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    self._reply(200, json.dumps(headers).encode())

            do_POST = do_GET

            def _reply(self, status: int, body: bytes, headers: Any = None) -> None:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(STARTUP_TIMEOUT)


@pytest.fixture
def backend() -> Iterator[Backend]:
    """A plain HTTP backend on an ephemeral port."""
    server = Backend()
    try:
        yield server
    finally:
        server.stop()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ThreadingWSGIServer(WSGIServer):
    daemon_threads = True


def serve_wsgi(app: Callable[..., Any]) -> Iterator[str]:
    """Serve ``app`` with wsgiref on an ephemeral port; yield its base URL."""
    server = make_server("127.0.0.1", 0, app, server_class=_ThreadingWSGIServer,
                         handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(STARTUP_TIMEOUT)


def serve_asgi(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread on an ephemeral port; yield its base URL."""
    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="critical", lifespan="off",
                            access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(STARTUP_TIMEOUT)


def wait_for_span(spans: CapturedSpans, predicate: Callable[[SpanData], bool]) -> SpanData:
    """The first captured span matching ``predicate``, waiting (bounded) for a server thread
    that ends its span after the client has its response.
    """
    deadline = time.monotonic() + WAIT_TIMEOUT
    while True:
        for span in list(spans.spans):
            if predicate(span):
                return span
        if time.monotonic() > deadline:
            raise AssertionError(f"no matching span; captured: {spans.names()}")
        time.sleep(0.005)


@pytest.fixture
def wait_span() -> Callable[..., SpanData]:
    """``wait_span(spans, predicate)``: see ``wait_for_span``."""
    return wait_for_span


@pytest.fixture
def serve() -> Iterator[Callable[[str, Any], str]]:
    """``serve("wsgi" | "asgi", app)``: start a real server for ``app``; return its base URL.
    Every server started is stopped when the test ends.
    """
    running: List[Iterator[str]] = []

    def start(kind: str, app: Any) -> str:
        server = serve_wsgi(app) if kind == "wsgi" else serve_asgi(app)
        url = next(server)
        running.append(server)
        return url

    try:
        yield start
    finally:
        for server in reversed(running):
            for _ in server:  # runs the generator's cleanup
                pass


def fetch_raw(url: str, path: str, headers: Any = ()) -> tuple[int, bytes]:
    """GET ``path`` with exactly ``headers`` (pairs, repeats allowed) through an untraced client."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=WAIT_TIMEOUT)
    try:
        connection.putrequest("GET", path)
        for name, value in headers:
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.fixture
def fetch() -> Callable[..., tuple[int, bytes]]:
    """``fetch(url, path, headers)``: see ``fetch_raw``."""
    return fetch_raw
