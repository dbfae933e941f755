"""A real loopback HTTP server that records what exporters send, and answers as told (for tests)."""

from __future__ import annotations

import email.message
import http.server
import io
import threading
import zlib
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

# A request body past this many bytes (sent or, chunked, announced) is answered 413, unrecorded:
# a test server's memory stays bounded whatever the client under test sends.
_MAX_BODY = 64 * 1024 * 1024
_MAX_LINE = 1024  # a chunk-size or trailer line
_MAX_TRAILERS = 100


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


class _Refused(Exception):
    """A request body that cannot be read whole; ``status`` is the answer."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def _read_body(rfile: io.BufferedIOBase, headers: email.message.Message) -> bytes:
    """The request body, of ``Content-Length`` bytes or chunked; ``_Refused`` when malformed
    or larger than ``_MAX_BODY``.
    """
    encoding = (headers.get("Transfer-Encoding") or "").lower()
    if encoding:
        if encoding.rsplit(",", 1)[-1].strip() != "chunked":
            raise _Refused(400)  # a body that only the end of the connection would delimit
        return _read_chunked(rfile)
    try:
        length = int(headers.get("Content-Length") or 0)
    except ValueError:
        raise _Refused(400) from None
    if length < 0:
        raise _Refused(400)
    if length > _MAX_BODY:
        raise _Refused(413)
    return rfile.read(length)


def _read_chunked(rfile: io.BufferedIOBase) -> bytes:
    """A chunked body: size lines in hex, each chunk, then trailers up to an empty line."""
    chunks: List[bytes] = []
    total = 0
    while True:
        line = rfile.readline(_MAX_LINE + 1)
        if not line.endswith(b"\n"):  # too long, or the connection closed
            raise _Refused(400)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise _Refused(400) from None
        if size < 0:
            raise _Refused(400)
        if size == 0:
            break
        total += size
        if total > _MAX_BODY:
            raise _Refused(413)
        chunk = rfile.read(size)
        if len(chunk) < size or rfile.readline(_MAX_LINE + 1) not in (b"\r\n", b"\n"):
            raise _Refused(400)
        chunks.append(chunk)
    for _ in range(_MAX_TRAILERS):
        if rfile.readline(_MAX_LINE + 1) in (b"\r\n", b"\n", b""):
            return b"".join(chunks)
    raise _Refused(400)


def _gunzip(raw: bytes) -> bytes:
    """``raw`` un-gzipped, within ``_MAX_BODY`` (a small body may expand a thousandfold)."""
    inflater = zlib.decompressobj(wbits=31)  # 31: the gzip container
    body = inflater.decompress(raw, _MAX_BODY + 1)
    if len(body) > _MAX_BODY:
        raise _Refused(413)
    return body


class RecordingServer:
    """A real HTTP server on 127.0.0.1 (an ephemeral port) that records every request, for
    exporter tests. It answers with the replies given, in order, then with ``default``. A body
    may be sent with ``Content-Length`` or chunked; one that is malformed is answered 400, one
    over 64 MiB 413, and neither is recorded::

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
                try:
                    raw = _read_body(self.rfile, self.headers)
                except _Refused as refused:
                    self.send_error(refused.status)
                    return
                body = raw
                if (self.headers.get("Content-Encoding") or "").lower() == "gzip":
                    try:
                        body = _gunzip(raw)
                    except _Refused as refused:
                        self.send_error(refused.status)
                        return
                    except (OSError, EOFError, zlib.error):
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
        if self._thread.ident is not None:  # started: shutdown() waits for its loop to end
            self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> RecordingServer:
        return self.start()

    def __exit__(self, kind: Optional[Type[BaseException]], value: Optional[BaseException],
                 traceback: Optional[TracebackType]) -> None:
        self.stop()


