"""Posting encoded spans over HTTP, and the ``HttpExporter`` base class: see ``delivery``."""

from __future__ import annotations

import base64
import gzip as _gzip
import http.client
import logging
import threading
import urllib.error
import urllib.request
from typing import Any, Callable, Dict, Mapping, NamedTuple, Optional, Sequence, Tuple

from ._retry import (
    DEFAULT_RETRY,
    MAX_RESPONSE_BYTES,
    Outcome,
    RetryPolicy,
    Sender,
    http_outcome,
    parse_retry_after,
)
from .export import ExportResult, SpanData

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

    def outcome(self) -> Outcome:
        """This response classified for retrying (see ``http_outcome``); a reply that is not
        HTTP at all (``not_http``: a wrong port or protocol) is permanent.
        """
        detail = self.error or self.body[:200].decode("utf-8", "replace").strip()
        if self.not_http:
            return Outcome.permanent(f"not an HTTP reply: {detail}")
        return http_outcome(self.status, detail, parse_retry_after(self.headers.get("retry-after")))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A collector that redirects a POST is misconfigured; following it would resend as GET.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect())


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

    ``timeout`` bounds connecting and each read. With ``gzip`` the body is compressed and sent
    with ``Content-Encoding: gzip``. Connection refused or reset, timeouts, and replies that are
    not HTTP come back as status 0 with ``error`` set (and ``not_http`` for the last).
    """
    all_headers = dict(headers or {})
    try:
        if gzip:
            body = _gzip.compress(body, compresslevel=6)
            all_headers["Content-Encoding"] = "gzip"
        request = urllib.request.Request(url, data=body, headers=all_headers, method="POST")
        with _opener.open(request, timeout=max(timeout, 0.001)) as response:
            data = _read(response)
            return HttpResponse(response.status, _lower(response.headers), data)
    except urllib.error.HTTPError as exc:
        data = _read(exc)
        exc.close()
        return HttpResponse(exc.code, _lower(exc.headers), data)
    except urllib.error.URLError as exc:
        return HttpResponse(0, {}, b"", f"{type(exc.reason).__name__}: {exc.reason}")
    except http.client.RemoteDisconnected as exc:  # closed without a reply: may pass
        return HttpResponse(0, {}, b"", f"{type(exc).__name__}: {exc}")
    except http.client.HTTPException as exc:
        return HttpResponse(0, {}, b"", f"{type(exc).__name__}: {exc}", not_http=True)
    except (OSError, ValueError) as exc:
        return HttpResponse(0, {}, b"", f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # whatever else the network does, the pipeline must not see it
        return HttpResponse(0, {}, b"", f"{type(exc).__name__}: {exc}")


def _lower(headers: Any) -> Dict[str, str]:
    try:
        return {str(k).lower(): str(v) for k, v in headers.items()}
    except Exception:
        return {}


def split_credentials(url: str) -> Tuple[str, Optional[str]]:
    """``url`` without its ``user:password@`` part, and that part as a Basic ``Authorization``
    value (None when there is none).
    """
    from urllib.parse import unquote, urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return url, None
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    token = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode("ascii")
    return urlunsplit(parts._replace(netloc=host)), f"Basic {token}"


class HttpExporter:
    """A span exporter that POSTs each batch, encoded by ``encode``, with retries.

    Subclasses set ``content_type`` and implement ``encode``. Counts are in ``stats()``;
    ``shutdown`` is idempotent, returns at once and interrupts any backoff; later exports return
    ``FAILURE``. ``export`` may be called from several threads at once.
    """

    content_type = "application/octet-stream"

    def __init__(
        self, url: str, *, timeout: float = 10.0, headers: Optional[Mapping[str, str]] = None,
        gzip: bool = False, retry: RetryPolicy = DEFAULT_RETRY,
        sleep: Optional[Callable[[float], object]] = None,
    ) -> None:
        # user:password in the URL becomes an Authorization header, so the URL kept (and shown
        # in logs and reprs) never carries a credential.
        self.url, credentials = split_credentials(url)
        self.timeout = timeout
        self.headers = {"Content-Type": self.content_type, **dict(headers or {})}
        if credentials is not None and not any(k.lower() == "authorization" for k in self.headers):
            self.headers["Authorization"] = credentials
        self.gzip = gzip
        self.sender = Sender(retry, sleep=sleep)
        self._lock = threading.Lock()
        self._counts = {"spans_exported": 0, "spans_failed": 0,
                        "batches_exported": 0, "batches_failed": 0}
        self._failing = False

    def encode(self, spans: Sequence[SpanData]) -> bytes:
        """The request body for ``spans``."""
        raise NotImplementedError

    def export(self, spans: Sequence[SpanData]) -> ExportResult:
        """Encode and send ``spans``; SUCCESS once the backend accepted them. Never raises."""
        if self.sender.closed:
            return ExportResult.FAILURE
        if not spans:
            return ExportResult.SUCCESS
        try:
            body = self.encode(spans)
        except Exception as exc:  # a bug or a hostile value: lose this batch, not the app
            outcome = Outcome.permanent(f"encoding failed: {type(exc).__name__}: {exc}")
        else:
            outcome = self.sender.run(lambda remaining: self._attempt(body, remaining))
        self._count(len(spans), outcome)
        return ExportResult.SUCCESS if outcome.ok else ExportResult.FAILURE

    def _attempt(self, body: bytes, remaining: float) -> Outcome:
        timeout = min(self.timeout, remaining)
        return post(self.url, body, headers=self.headers, timeout=timeout,
                    gzip=self.gzip).outcome()

    def _count(self, spans: int, outcome: Outcome) -> None:
        with self._lock:
            kind = "exported" if outcome.ok else "failed"
            self._counts[f"spans_{kind}"] += spans
            self._counts[f"batches_{kind}"] += 1
            changed = self._failing == outcome.ok
            self._failing = not outcome.ok
        # Log when delivery starts or stops failing, not once per batch: a down backend must
        # not flood the application's log.
        if changed and not outcome.ok:
            _log.warning("%s: %d spans not delivered to %s (%s); further failures are counted "
                         "in stats()", type(self).__name__, spans, self.url, outcome.detail)
        elif changed:
            _log.info("%s: delivering to %s again", type(self).__name__, self.url)

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
