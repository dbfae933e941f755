"""Real servers on 127.0.0.1 for the HTTP integration tests: a plain backend, a WSGI server
(wsgiref) and an ASGI server (uvicorn), each on an ephemeral port, each stopped afterwards.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

from tracing_api.export import SpanData
from tracing_api.testing import CapturedSpans

STARTUP_TIMEOUT = 10.0
WAIT_TIMEOUT = 5.0


class Backend:
    """A plain ``http.server`` backend that remembers the headers of every request; HTTPS when
    given a server ``tls`` context.
    """

    def __init__(self, tls: Optional[ssl.SSLContext] = None) -> None:
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
                elif path == "/unavailable":
                    self._reply(503, b"unavailable")
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
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"{'http' if tls is None else 'https'}://127.0.0.1:{self.port}"
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


def self_signed_tls(directory: Path) -> Tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a fresh self-signed certificate for 127.0.0.1, and a client
    context that trusts only that certificate. (``cryptography`` comes with google-auth, which
    the Cloud Trace plugin installs for development.)
    """
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    (directory / "cert.pem").write_bytes(pem)
    (directory / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies the certificate and host name
    client.load_verify_locations(cadata=pem.decode("ascii"))
    return server, client


@pytest.fixture
def tls_backend(tmp_path: Path) -> Iterator[Tuple[Backend, ssl.SSLContext]]:
    """An HTTPS backend with a self-signed certificate, and a client context trusting it."""
    server_tls, client_tls = self_signed_tls(tmp_path)
    server = Backend(server_tls)
    try:
        yield server, client_tls
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
