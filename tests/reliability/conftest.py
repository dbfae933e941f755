"""Backends on 127.0.0.1 that work, fail, hang, reset or talk garbage, for the reliability tests.

``Collector`` is a Zipkin / OTLP-HTTP receiver (it decodes what it receives, so tests compare
span ids) or a Cloud Trace gRPC server for the real ``google-cloud-trace`` client; ``RawServer``
holds a port and misbehaves below HTTP; ``Backend`` puts one of them behind a fixed port so a
test can break the backend and then bring it back, the exporter none the wiser.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest

SPANS = int(os.environ.get("TRACING_RELIABILITY_SPANS", "100000"))
"""Spans per load test: 100,000 by default, 200,000 or more in the thorough setting."""

EXAMPLES = int(os.environ.get("TRACING_FUZZ_EXAMPLES", "200"))
"""Hypothesis examples per property in the fast setting."""

HTTP_KINDS = ("zipkin", "otlp_protobuf", "otlp_json")
KINDS = (*HTTP_KINDS, "stackdriver")

# The failures a test can ask for: a live backend's answers ("status" faults, which it can be
# told to stop giving) and faults below the protocol, on a port nothing else listens on.
STATUS_FAULTS = {
    "http_500": ("http", 500), "http_503": ("http", 503), "http_429": ("http", 429),
    "grpc_internal": ("grpc", "INTERNAL"), "grpc_unavailable": ("grpc", "UNAVAILABLE"),
    "grpc_resource_exhausted": ("grpc", "RESOURCE_EXHAUSTED"),
}
PORT_FAULTS = ("refused", "reset", "garbage", "hang")


def _wait(predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def free_port() -> int:
    """A port nothing listens on (bound and closed again: connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RawServer:
    """Accepts connections on ``port`` and then misbehaves: ``reset`` (RST after reading the
    request's first bytes), ``garbage`` (bytes that are neither HTTP nor HTTP/2, then close) or
    ``hang`` (never answers; ``held`` counts the connections it sits on).
    """

    def __init__(self, mode: str, port: int = 0) -> None:
        self.mode = mode
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(64)
        self.port = int(self.sock.getsockname()[1])
        self.held: List[socket.socket] = []
        self.accepted = 0
        self._closed = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            if self.mode == "hang":
                self.held.append(conn)
                continue
            try:
                conn.settimeout(2)
                try:
                    conn.recv(65536)
                except OSError:
                    pass
                if self.mode == "garbage":
                    conn.sendall(b"\x00\xff\x13garbage, not a protocol\r\n\r\n\xde\xad\xbe\xef" * 4)
                    conn.close()
                else:  # reset: linger 0 makes close() send RST
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    conn.close()
            except OSError:
                pass

    def close(self) -> None:
        """Stop listening and drop every held connection (the port refuses again)."""
        self._closed.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept(); close() alone does not
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass
        for conn in self.held:
            try:
                conn.close()
            except OSError:
                pass


# ---------------------------------------------------------------------------------- HTTP collector


def _decode_ids(path: str, content_type: str, body: bytes) -> List[str]:
    if path.startswith("/api/v2/spans"):
        return [str(s["id"]) for s in json.loads(body)]
    if content_type.startswith("application/json"):
        doc = json.loads(body)
        return [str(s["spanId"]) for rs in doc.get("resourceSpans", [])
                for ss in rs.get("scopeSpans", []) for s in ss.get("spans", [])]
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    return [s.span_id.hex() for rs in request.resource_spans for ss in rs.scope_spans
            for s in ss.spans]


class HttpCollector:
    """A Zipkin (``/api/v2/spans``) and OTLP/HTTP (``/v1/traces``) receiver; ``status`` is the
    answer it gives (202/200 by default; 429 comes with ``Retry-After: 1``). ``delay`` holds every
    answer that long (a slow backend).
    """

    def __init__(self, port: int = 0) -> None:
        self.status: Optional[int] = None
        self.delay = 0.0
        self.attempts = 0
        self.ids: List[str] = []
        self.names: List[str] = []
        self.bodies: List[bytes] = []
        self.lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if self.headers.get("Content-Encoding") == "gzip":
                    import gzip

                    body = gzip.decompress(body)
                with collector.lock:
                    collector.attempts += 1
                if collector.delay:
                    time.sleep(collector.delay)
                status = collector.status
                if status is None:
                    ids = _decode_ids(self.path, self.headers.get("Content-Type", ""), body)
                    with collector.lock:
                        collector.ids.extend(ids)
                        collector.bodies.append(body)
                    status = 202 if self.path.startswith("/api/v2/spans") else 200
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", "1")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", port), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def fail_with(self, code: Any) -> None:
        """Answer every request with HTTP ``code``."""
        self.status = int(code)

    def recover(self) -> None:
        """Accept spans again."""
        self.status = None

    def span_ids(self) -> List[str]:
        """Every span id received in an accepted request, in order."""
        with self.lock:
            return list(self.ids)

    def close(self) -> None:
        """Stop serving and free the port."""
        self.server.shutdown()
        self.server.server_close()


# ------------------------------------------------------------------------------ gRPC collector


class GrpcCollector:
    """A Cloud Trace v2 ``BatchWriteSpans`` server for the real client; ``code`` (a
    ``grpc.StatusCode`` name) is the failure it answers with, None for success.
    """

    def __init__(self, port: int = 0) -> None:
        import grpc
        from google.cloud.trace_v2.types import BatchWriteSpansRequest

        self.code: Optional[str] = None
        self.attempts = 0
        self.ids: List[str] = []
        self.lock = threading.Lock()
        handler = grpc.method_handlers_generic_handler(
            "google.devtools.cloudtrace.v2.TraceService",
            {"BatchWriteSpans": grpc.unary_unary_rpc_method_handler(
                self._write, request_deserializer=BatchWriteSpansRequest.deserialize,
                response_serializer=lambda empty: empty)},
        )
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self.server.add_generic_rpc_handlers((handler,))
        self.port = self.server.add_insecure_port(f"127.0.0.1:{port}")
        if not self.port:
            raise OSError(f"port {port} is taken")
        self.server.start()

    def _write(self, request: Any, context: Any) -> bytes:
        import grpc

        with self.lock:
            self.attempts += 1
        if self.code is not None:
            context.abort(getattr(grpc.StatusCode, self.code), "test backend says no")
        with self.lock:
            self.ids.extend(s.span_id for s in request.spans)
        return b""

    def fail_with(self, code: Any) -> None:
        """Answer every call with the gRPC status ``code`` (a name)."""
        self.code = str(code)

    def recover(self) -> None:
        """Accept spans again."""
        self.code = None

    def span_ids(self) -> List[str]:
        """Every span id received in an accepted request, in order."""
        with self.lock:
            return list(self.ids)

    def close(self) -> None:
        """Stop serving and free the port."""
        self.server.stop(grace=None)


# ------------------------------------------------------------------------------------- backend


class Backend:
    """One exporter kind's backend behind a fixed port: ``kind`` is zipkin, otlp_protobuf,
    otlp_json or stackdriver. ``fault(name)`` breaks it, ``recover()`` brings the collector back;
    ``exporter_options()`` configure the real exporter to talk to it.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.port = free_port()
        self.collector: Optional[Any] = None
        self.raw: Optional[RawServer] = None
        self._clients: List[Any] = []
        self.start_collector()

    @property
    def grpc(self) -> bool:
        """Whether this is the Cloud Trace (gRPC) backend."""
        return self.kind == "stackdriver"

    def start_collector(self) -> None:
        """Serve (again) on the port."""
        make = GrpcCollector if self.grpc else HttpCollector
        last: Optional[Exception] = None
        for _ in range(100):  # the port may linger a moment after the raw server closed it
            try:
                self.collector = make(self.port)
                return
            except (OSError, RuntimeError) as exc:
                last = exc
                time.sleep(0.05)
        raise RuntimeError(f"could not serve on {self.port}: {last}")

    def fault(self, name: str) -> None:
        """Break the backend: a status fault of its protocol, or a port fault."""
        if name in STATUS_FAULTS:
            assert self.collector is not None
            self.collector.fail_with(STATUS_FAULTS[name][1])
            return
        self._stop_collector()
        if name != "refused":
            self.raw = RawServer(name, self.port)

    def recover(self) -> None:
        """Bring the working collector back."""
        if self.raw is not None:
            self.raw.close()
            self.raw = None
        if self.collector is None:
            self.start_collector()
        else:
            self.collector.recover()

    def span_ids(self) -> List[str]:
        """What the collector accepted (empty while it is down)."""
        return [] if self.collector is None else self.collector.span_ids()

    def _stop_collector(self) -> None:
        if self.collector is not None:
            self.collector.close()
            self.collector = None

    def exporter_options(self, *, timeout: float = 2.0, deadline: float = 1.0) -> Dict[str, Any]:
        """``configure()`` keyword arguments for this backend's exporter (by entry-point name)."""
        from tracing_api.delivery import RetryPolicy

        retry = RetryPolicy(initial_backoff=0.02, max_backoff=0.1, deadline=deadline)
        base = f"http://127.0.0.1:{self.port}"
        if self.kind == "zipkin":
            return {"exporter": "zipkin", "endpoint": f"{base}/api/v2/spans", "timeout": timeout,
                    "retry": retry}
        if self.kind.startswith("otlp"):
            protocol = "http/json" if self.kind == "otlp_json" else "http/protobuf"
            return {"exporter": "otlp", "endpoint": base, "protocol": protocol,
                    "timeout": timeout, "retry": retry}
        import grpc
        from google.cloud import trace_v2
        from google.cloud.trace_v2.services.trace_service.transports import (
            TraceServiceGrpcTransport,
        )

        channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        self._clients.append(channel)
        client = trace_v2.TraceServiceClient(transport=TraceServiceGrpcTransport(channel=channel))
        return {"exporter": "stackdriver", "project_id": "p", "client": client,
                "timeout": timeout, "retry": retry}

    def close(self) -> None:
        """Stop everything this backend started."""
        if self.raw is not None:
            self.raw.close()
        self._stop_collector()
        for channel in self._clients:
            channel.close()


@pytest.fixture
def make_backend() -> Iterator[Callable[[str], Backend]]:
    """Makes backends of a kind; every one is closed after the test."""
    made: List[Backend] = []

    def make(kind: str) -> Backend:
        backend = Backend(kind)
        made.append(backend)
        return backend

    yield make
    import tracing_api as tracing

    tracing.shutdown(timeout=2.0)  # before the servers go, so no worker waits on them
    for backend in made:
        backend.close()


@pytest.fixture
def wait_for() -> Callable[..., bool]:
    """``wait_for(predicate, timeout=20)``: poll until true or the (generous) timeout."""
    return _wait
