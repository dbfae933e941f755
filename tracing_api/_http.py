"""Posting encoded spans over HTTP, and the ``HttpExporter`` base class: see ``delivery``."""

from __future__ import annotations

import gzip as _gzip
import http.client
import io
import logging
import socket
import threading
import time
import urllib.error
import urllib.request
from typing import (
    Any,
    Callable,
    Dict,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
    Union,
    cast,
)

from ._http_settings import (
    header_problem,
    headers_setting,
    shown_url,
    split_credentials,
    url_problem,
    url_setting,
)
from ._retry import (
    MAX_RESPONSE_BYTES,
    Outcome,
    RetryPolicy,
    Sender,
    http_outcome,
    parse_retry_after,
    retry_setting,
)
from .export import ExportResult, PartialSuccess, SpanData

_log = logging.getLogger("tracing_api.delivery")


class HttpResponse(NamedTuple):
    """What an HTTP POST came to. ``status`` is 0 when no response arrived (``error`` says why);
    ``body`` holds at most ``MAX_RESPONSE_BYTES``; header names are lower-case.
    """

    status: int
    headers: Mapping[str, str]
    body: bytes
    error: Optional[str] = None
    not_http: bool = False
    invalid: bool = False

    def outcome(self) -> Outcome:
        """This response classified for retrying (see ``http_outcome``); a reply that is not
        HTTP at all (``not_http``: a wrong port or protocol) is permanent, and so is a request
        that could not be built (``invalid``: a bad URL or header; it was never sent).
        """
        detail = self.error or self.body[:200].decode("utf-8", "replace").strip()
        if self.invalid:
            return Outcome.permanent(f"request not sent: {detail}")
        if self.not_http:
            return Outcome.permanent(f"not an HTTP reply: {detail}")
        return http_outcome(self.status, detail, parse_retry_after(self.headers.get("retry-after")))


# ------------------------------------------------------------- a deadline on the whole request


def _time_left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise socket.timeout("timed out")
    return left


class _DeadlineReader(io.RawIOBase):
    """A socket's reading side whose every read waits no longer than what is left of the
    request's time: a socket timeout alone bounds each read, so a reply trickled one byte at a
    time would hold the request for as long as the server likes.
    """

    def __init__(self, sock: Any, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        self._raw = sock.makefile("rb", buffering=0)  # counts as a reference to the socket
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> Optional[int]:
        self._sock.settimeout(_time_left(self._deadline))
        return int(self._raw.readinto(buffer))

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


class _DeadlineSocket:
    """A connected socket that refuses to send or receive past ``deadline`` (a monotonic time)."""

    def __init__(self, sock: Any, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def sendall(self, data: Any) -> None:
        view = memoryview(data).cast("B")
        while view:
            self._sock.settimeout(_time_left(self._deadline))
            sent = self._sock.send(view[:65536])
            view = view[sent:]

    def makefile(self, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        return io.BufferedReader(_DeadlineReader(self._sock, self._deadline))

    def close(self) -> None:
        self._sock.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def _connect(connection: Any, connect: Callable[[], None]) -> None:
    # Connecting (and a TLS handshake) is bounded per step by the timeout, and starts only if
    # time is left; everything after it, by what is left of the request's time.
    left = _time_left(connection.deadline)
    connection.timeout = min(connection.timeout or left, left)
    connect()
    connection.sock = _DeadlineSocket(connection.sock, connection.deadline)


class _HttpConnection(http.client.HTTPConnection):
    deadline = 0.0  # a monotonic time, set for each request by ``_open``

    def connect(self) -> None:
        _connect(self, super().connect)


def _open(handler: Any, connection_class: Any, req: urllib.request.Request) -> Any:
    deadline = time.monotonic() + (req.timeout or 0.0)

    def connection(host: str, **options: Any) -> Any:
        made = connection_class(host, **options)
        made.deadline = deadline
        return made

    return handler.do_open(connection, req)


class _HttpHandler(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return cast(http.client.HTTPResponse, _open(self, _HttpConnection, req))


_handlers: List[urllib.request.BaseHandler] = [_HttpHandler()]
if hasattr(http.client, "HTTPSConnection"):  # absent when Python was built without ssl

    class _HttpsConnection(http.client.HTTPSConnection):
        deadline = 0.0

        def connect(self) -> None:
            _connect(self, super().connect)

    class _HttpsHandler(urllib.request.HTTPSHandler):
        def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return cast(http.client.HTTPResponse, _open(self, _HttpsConnection, req))

    _handlers.append(_HttpsHandler())


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A collector that redirects a POST is misconfigured; following it would resend as GET.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect(), *_handlers)


def _read(response: Any) -> bytes:
    try:
        return bytes(response.read(MAX_RESPONSE_BYTES))
    except Exception:
        return b""


def post(
    url: str, body: bytes, *, headers: Optional[Mapping[str, str]] = None,
    timeout: float = 10.0, gzip: bool = False,
) -> HttpResponse:
    """POST ``body`` to ``url`` and return the response; never raises.

    ``timeout`` bounds the whole request: connecting, sending, and reading the reply, however
    slowly the server trickles it. With ``gzip`` the body is compressed and sent with
    ``Content-Encoding: gzip``. Connection refused or reset, timeouts, and replies that are not
    HTTP come back as status 0 with ``error`` set (and ``not_http`` for the last); a request
    that cannot be built (a bad URL or header) is not sent and comes back ``invalid``.
    """
    try:
        all_headers = dict(headers or {})
        problem = url_problem(url)
        for name, value in all_headers.items():
            problem = problem or header_problem(name, value)
        if problem is not None:
            return HttpResponse(0, {}, b"", problem, invalid=True)
        if gzip:
            body = _gzip.compress(body, compresslevel=6)
            all_headers["Content-Encoding"] = "gzip"
        request = urllib.request.Request(url, data=body, headers=all_headers, method="POST")
    except Exception as exc:  # nothing was sent, and sending again would fail the same way
        return HttpResponse(0, {}, b"", f"{type(exc).__name__}: {exc}", invalid=True)
    try:
        with _opener.open(request, timeout=max(timeout, 0.001)) as response:
            data = _read(response)
            return HttpResponse(response.status, _lower(response.headers), data)
    except urllib.error.HTTPError as exc:
        data = _read(exc)
        exc.close()
        return HttpResponse(exc.code, _lower(exc.headers), data)
    except urllib.error.URLError as exc:
        return HttpResponse(0, {}, b"", f"{type(exc.reason).__name__}: {exc.reason}")
    except OSError as exc:  # refused, reset, timed out, or closed without a reply: may pass
        return HttpResponse(0, {}, b"", f"{type(exc).__name__}: {exc}")
    except http.client.InvalidURL as exc:
        return HttpResponse(0, {}, b"", f"{type(exc).__name__}: {exc}", invalid=True)
    except http.client.HTTPException as exc:
        return HttpResponse(0, {}, b"", f"{type(exc).__name__}: {exc}", not_http=True)
    except ValueError as exc:  # http.client refusing a request line or header before sending
        return HttpResponse(0, {}, b"", f"{type(exc).__name__}: {exc}", invalid=True)
    except Exception as exc:  # whatever else the network does, the pipeline must not see it
        return HttpResponse(0, {}, b"", f"{type(exc).__name__}: {exc}")


def _lower(headers: Any) -> Dict[str, str]:
    try:
        return {str(k).lower(): str(v) for k, v in headers.items()}
    except Exception:
        return {}


class HttpExporter:
    """A span exporter that POSTs each batch, encoded by ``encode``, with retries.

    Subclasses set ``content_type`` and implement ``encode``. Counts are in ``stats()``;
    ``shutdown`` is idempotent, returns at once and interrupts any backoff; later exports return
    ``FAILURE``. ``export`` may be called from several threads at once.
    """

    content_type = "application/octet-stream"

    def __init__(
        self, url: str, *, timeout: float = 10.0, headers: Optional[Mapping[str, str]] = None,
        gzip: bool = False, retry: Optional[RetryPolicy] = None,
        sleep: Optional[Callable[[float], object]] = None,
    ) -> None:
        # Checked here, once, so a bad setting fails at configure() rather than losing every
        # batch after a deadline of retries. Subclasses check first, naming their own settings.
        url_setting(url, "url")
        extra = headers_setting(headers, "headers")
        policy = retry_setting(retry, "retry")
        # user:password in the URL becomes an Authorization header, so the URL kept (and shown
        # in logs and reprs) never carries a credential.
        self.url, credentials = split_credentials(url)
        self.shown_url = shown_url(self.url)  # for logs and reprs: no query values
        self.timeout = timeout
        self.headers = {"Content-Type": self.content_type, **extra}
        if credentials is not None and not any(k.lower() == "authorization" for k in self.headers):
            self.headers["Authorization"] = credentials
        self.gzip = gzip
        self.sender = Sender(policy, sleep=sleep)
        self._lock = threading.Lock()
        self._counts = {"spans_exported": 0, "spans_failed": 0,
                        "batches_exported": 0, "batches_failed": 0}
        self._failing = False

    def encode(self, spans: Sequence[SpanData]) -> bytes:
        """The request body for ``spans``."""
        raise NotImplementedError

    def export(self, spans: Sequence[SpanData]) -> Union[ExportResult, PartialSuccess]:
        """Encode and send ``spans``; SUCCESS once the backend accepted them. A span that cannot
        be encoded (a hand-made record with a value no wire format carries) is left out and
        the rest sent: ``PartialSuccess`` then counts what went. Never raises."""
        try:
            if self.sender.closed:
                return ExportResult.FAILURE
            if not spans:
                return ExportResult.SUCCESS
            count = len(spans)
        except Exception:  # a broken sequence: nothing to count, nothing to send
            return ExportResult.FAILURE
        sent = spans
        try:
            body = self.encode(spans)
        except Exception as exc:  # a bug or a hostile value: lose that span, not the batch
            sent, body = self._encode_apart(spans)
            problem = f"encoding failed: {type(exc).__name__}: {exc}"
        replies: List[HttpResponse] = []
        outcome = (self.sender.run(lambda remaining: self._attempt(body, remaining, replies))
                   if sent else Outcome.permanent(problem))
        delivered = len(sent) if outcome.ok else 0
        if delivered and replies:
            try:  # an accepted batch may still have had spans refused (OTLP's partial_success)
                delivered -= min(max(int(self.rejected(replies[-1])), 0), delivered)
            except Exception:
                pass
        try:
            self._count(delivered, count - delivered, outcome)
        except Exception:  # counting and logging must not turn a result into an exception
            pass
        if delivered == count:
            return ExportResult.SUCCESS
        return PartialSuccess(delivered) if delivered else ExportResult.FAILURE

    def _encode_apart(self, spans: Sequence[SpanData]) -> Tuple[List[SpanData], bytes]:
        """The spans of a batch that failed to encode which encode alone, and their body."""
        good: List[SpanData] = []
        for span in spans:
            try:
                self.encode([span])
            except Exception as exc:
                _log.debug("%s: span %r not sent: %s: %s", type(self).__name__,
                           getattr(span, "name", "?"), type(exc).__name__, exc)
            else:
                good.append(span)
        try:
            return good, (self.encode(good) if good else b"")
        except Exception:  # fine alone, not together: give up on the batch
            return [], b""

    def rejected(self, reply: HttpResponse) -> int:
        """How many spans of a batch the backend accepted (``reply``, a 2xx) it says it refused
        all the same: 0 here; OTLP's exporter reads its ``partial_success``. They are counted
        as failed, and not sent again."""
        return 0

    def _attempt(self, body: bytes, remaining: float, replies: List[HttpResponse]) -> Outcome:
        # The first attempt gets the whole request timeout, even one longer than the retry
        # deadline (a slow backend the application allowed for); retries fit in what is left.
        timeout = min(self.timeout, remaining) if replies else self.timeout
        reply = post(self.url, body, headers=self.headers, timeout=timeout, gzip=self.gzip)
        replies.append(reply)
        return reply.outcome()

    def _count(self, exported: int, failed: int, outcome: Outcome) -> None:
        spans = exported + failed
        with self._lock:
            self._counts["spans_exported"] += exported
            self._counts["spans_failed"] += failed
            self._counts["batches_exported" if outcome.ok else "batches_failed"] += 1
            changed = self._failing == outcome.ok
            self._failing = not outcome.ok
        # Log when delivery starts or stops failing, not once per batch: a down backend must
        # not flood the application's log.
        if changed and not outcome.ok:
            _log.warning("%s: %d spans not delivered to %s (%s); further failures are counted "
                         "in stats()", type(self).__name__, spans, self.shown_url, outcome.detail)
        elif changed:
            _log.info("%s: delivering to %s again", type(self).__name__, self.shown_url)

    def force_flush(self, timeout: float = 30.0) -> bool:
        """Nothing is buffered here: every export is sent when called."""
        return True

    def shutdown(self) -> None:
        """Stop: interrupt any retry wait; later exports fail. Idempotent, returns at once."""
        self.sender.close()

    def stats(self) -> Dict[str, int]:
        """Counts of spans and batches exported and failed, and of attempts and retries."""
        with self._lock:
            counts = dict(self._counts)
        sent = self.sender.stats()
        counts["attempts"] = sent["attempts"]
        counts["retries"] = sent["retries"]
        return counts
