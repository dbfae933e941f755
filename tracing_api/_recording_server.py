"""A real loopback HTTP server that records what exporters send, and answers as told (for tests)."""

from __future__ import annotations

import gzip
import http.server
import threading
from types import MappingProxyType, TracebackType
from typing import (
    Any,
    Deque,
    Iterable,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Type,
)


class Request(NamedTuple):
    """One request a ``RecordingServer`` received; ``body`` is un-gzipped when it was gzipped."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    raw_body: bytes


class Reply(NamedTuple):
    """How a ``RecordingServer`` answers one request: a status, headers and body; or, with
    ``hang``, nothing until the server stops; or, with ``raw``, those bytes instead of HTTP.
    """

    status: int = 200
    headers: Mapping[str, str] = MappingProxyType({})
    body: bytes = b""
    hang: bool = False
    raw: Optional[bytes] = None


_OK = Reply()


class RecordingServer:
    """A real HTTP server on 127.0.0.1 (an ephemeral port) that records every request, for
    exporter tests. It answers with the replies given, in order, then with ``default``::

        with RecordingServer([Reply(503, {"Retry-After": "0"})]) as server:
            exporter = MyExporter(server.url + "/spans")
    """

    def __init__(self, replies: Iterable[Reply] = (), default: Reply = _OK) -> None:
        from collections import deque

        self.default = default
        self._replies: Deque[Reply] = deque(replies)
        self._requests: List[Request] = []
        self._lock = threading.Condition()
        self._stopping = threading.Event()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the name http.server dispatches on
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                body = raw
                if (self.headers.get("Content-Encoding") or "").lower() == "gzip":
                    try:
                        body = gzip.decompress(raw)
                    except (OSError, EOFError):
                        body = b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                reply = owner._record(Request("POST", self.path, headers, body, raw))
                if reply.hang:
                    owner._stopping.wait(60.0)
                    return
                if reply.raw is not None:
                    self.wfile.write(reply.raw)
                    return
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        kwargs={"poll_interval": 0.05})

    def _record(self, request: Request) -> Reply:
        with self._lock:
            self._requests.append(request)
            self._lock.notify_all()
            return self._replies.popleft() if self._replies else self.default

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def requests(self) -> List[Request]:
        """The requests received so far, in order."""
        with self._lock:
            return list(self._requests)

    def reply_with(self, *replies: Reply) -> None:
        """Answer the next requests with ``replies``, in order."""
        with self._lock:
            self._replies.extend(replies)

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until ``count`` requests have arrived, at most ``timeout`` seconds."""
        with self._lock:
            return self._lock.wait_for(lambda: len(self._requests) >= count, timeout)

    def start(self) -> RecordingServer:
        """Start serving (``with`` does this)."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release hanging requests, stop serving and close the socket."""
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> RecordingServer:
        return self.start()

    def __exit__(self, kind: Optional[Type[BaseException]], value: Optional[BaseException],
                 traceback: Optional[TracebackType]) -> None:
        self.stop()


