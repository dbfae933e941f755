"""The Cloud Trace exporter: spans mapped, split into requests, sent with ``BatchWriteSpans``.

Every call carries its own timeout and no client-side retry (the client library's default
retry waits up to 120 s): retries are ``tracing_api.delivery``'s, within one deadline for the
whole ``export``. A request the backend refuses as INVALID_ARGUMENT is cut in halves and the
halves sent again, down to the single spans at fault, so one bad span never costs its
neighbours; where both halves are refused whole, the fault is likely the whole batch's, and
cutting stops after ``MAX_REFUSED_SPLITS`` such levels. The client is made on a helper thread
at the first export, so finding credentials never holds an export past its deadline.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from tracing_api.delivery import Outcome, RetryPolicy, Sender, grpc_outcome
from tracing_api.export import ExportResult, PartialSuccess, SpanData

from . import _batching, _mapping

_log = logging.getLogger("tracing_api.stackdriver")

CLIENT_RETRY_SECONDS = 60.0
"""How long a failure to make the Cloud Trace client is kept before it is tried again."""
MAX_REFUSED_SPLITS = 3
"""Levels of cutting a refused request in halves whose both halves are refused whole, after
which the spans left are counted as rejected unsent: a batch refused as a whole costs at most
15 requests, whatever its size."""
_DEFAULT_RETRY = RetryPolicy()


class ClientNotReady(Exception):
    """The Cloud Trace client is still being made (credentials still being looked for)."""


class _Refusals:
    """What Cloud Trace refused in one export, logged once at its end."""

    def __init__(self) -> None:
        self.count = 0
        self.detail = ""

    def add(self, count: int, detail: str) -> None:
        self.count += count
        self.detail = self.detail or detail


def _retry_after(exc: Any) -> Optional[float]:
    # The server may say when to come back, in a google.rpc.RetryInfo among the details.
    for detail in getattr(exc, "details", None) or ():
        delay = getattr(detail, "retry_delay", None)
        if delay is not None and hasattr(delay, "ToTimedelta"):
            try:
                return max(0.0, float(delay.ToTimedelta().total_seconds()))
            except (OverflowError, ValueError):
                return None
    return None


def _classify(exc: BaseException) -> Tuple[Outcome, str]:
    """An exception from ``batch_write_spans`` as an outcome, and its gRPC code name."""
    from google.api_core import exceptions as api_exceptions
    from google.auth import exceptions as auth_exceptions

    if isinstance(exc, api_exceptions.GoogleAPICallError):
        code = getattr(exc, "grpc_status_code", None)
        name = code.name if code is not None else type(exc).__name__
        outcome = grpc_outcome(name, str(exc.message))
        after = _retry_after(exc) if outcome.retryable else None
        return (outcome._replace(retry_after=after) if after is not None else outcome), name
    if isinstance(exc, auth_exceptions.TransportError):  # could not reach the token server
        return Outcome.retry(f"credentials: {exc}"), "UNAVAILABLE"
    if isinstance(exc, ClientNotReady):
        return Outcome.retry(str(exc)), "UNAVAILABLE"
    return Outcome.permanent(f"{type(exc).__name__}: {exc}"), type(exc).__name__


class CloudTraceExporter:
    """Sends spans to Google Cloud Trace. Made by ``tracing_api_stackdriver.exporter(...)``.

    ``export`` never raises and takes at most ``retry.deadline`` seconds (plus one call's
    ``timeout`` at worst), however long making the client takes; ``shutdown`` is idempotent,
    returns at once, interrupts any backoff and closes the client if this exporter made it.
    Counts are in ``stats()``.
    """

    def __init__(
        self, project_id: str, *, client: Any = None, credentials: Any = None,
        timeout: float = 10.0, retry: RetryPolicy = _DEFAULT_RETRY,
        max_spans_per_request: int = _batching.MAX_SPANS_PER_REQUEST,
        max_request_bytes: int = _batching.MAX_REQUEST_BYTES,
        limits: _mapping.Limits = _mapping.LIMITS,
    ) -> None:
        self.project_id = project_id
        self.timeout = timeout
        self.retry = retry
        self.max_spans_per_request = max_spans_per_request
        self.max_request_bytes = max_request_bytes
        self.limits = limits
        self._name = f"projects/{project_id}"
        # What one span may take: the request minus its project name and the span's framing.
        self._span_budget = max_request_bytes - _batching.field_size(len(self._name)) - 8
        self._client = client
        self._owns_client = client is None
        self._credentials = credentials
        self._client_error: Optional[Tuple[BaseException, float]] = None
        self._building: Optional[threading.Event] = None  # set when the helper thread is done
        self._client_lock = threading.Lock()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._counts = {"spans_exported": 0, "spans_rejected": 0, "spans_failed": 0,
                        "requests": 0, "attempts": 0, "retries": 0}
        self._failing = False

    def _get_client(self, wait: float) -> Any:
        """The client; made on a helper thread at first use, waited for at most ``wait``
        seconds. Raises the error that made it fail, or ``ClientNotReady``.
        """
        with self._client_lock:
            if self._stop.is_set():
                raise RuntimeError("shut down")
            if self._client is not None:
                return self._client
            if self._client_error is not None:
                error, when = self._client_error
                if time.monotonic() - when < CLIENT_RETRY_SECONDS:
                    raise error
                self._client_error = None
            done = self._building
            if done is None:
                # Made at the first export, not at configure(), and on its own thread: finding
                # credentials may ask the metadata server, which can take many seconds and
                # heeds no deadline of ours.
                done = self._building = threading.Event()
                try:
                    threading.Thread(target=self._make_client, args=(done,), daemon=True,
                                     name="tracing-api-stackdriver-client").start()
                except Exception:
                    self._building = None
                    raise
        done.wait(max(wait, 0.0))  # shutdown() sets it too
        with self._client_lock:
            made: Any = self._client  # set by the helper thread meanwhile, perhaps
            failure = self._client_error
        if self._stop.is_set():
            raise RuntimeError("shut down")
        if made is not None:
            return made
        if failure is not None:
            raise failure[0]
        raise ClientNotReady("the Cloud Trace client is still being made (looking for "
                             "credentials); these spans are not sent")

    def _make_client(self, done: threading.Event) -> None:
        made: Any = None
        try:
            from google.cloud.trace_v2 import TraceServiceClient

            made = TraceServiceClient(credentials=self._credentials)
        except Exception as exc:
            # Kept for a while: looking for credentials on every export could cost seconds each
            # time; tried again after CLIENT_RETRY_SECONDS, for a failure that passes (the
            # metadata server briefly out of reach).
            with self._client_lock:
                self._client_error = (exc, time.monotonic())
            _log.warning("Cloud Trace exporter has no client: %s: %s", type(exc).__name__, exc)
        with self._client_lock:
            self._building = None
            if made is not None and not self._stop.is_set():
                self._client, made = made, None
        if made is not None:  # shut down meanwhile: nobody will use it
            try:
                made.transport.close()
            except Exception:
                _log.debug("closing the Cloud Trace client failed", exc_info=True)
        done.set()

    def _map(self, spans: Sequence[SpanData]) -> Tuple[List[Any], List[int], int]:
        messages: List[Any] = []
        sizes: List[int] = []
        rejected = 0
        for span in spans:
            try:
                reason = _mapping.invalid_reason(span)
                if reason is None:
                    message = _mapping.to_span(span, self.project_id, self.limits)
                    size = message.ByteSize()
                    if size > self._span_budget:
                        if not _batching.fit(message, self._span_budget):
                            reason = "too big for one request"
                        size = message.ByteSize()
                    if reason is None:
                        messages.append(message)
                        sizes.append(size)
                        continue
                _log.debug("span %r not sent: %s", span.name, reason)
            except Exception as exc:  # one hostile span must not cost the batch
                _log.debug("span %r not sent: %s: %s", span.name, type(exc).__name__, exc)
            rejected += 1
        return messages, sizes, rejected

    def export(self, spans: Sequence[SpanData]) -> Union[ExportResult, PartialSuccess]:
        """Send ``spans``: SUCCESS when every one reached Cloud Trace, ``PartialSuccess(n)`` when
        only n did. Never raises."""
        if self._stop.is_set():
            return ExportResult.FAILURE
        if not spans:
            return ExportResult.SUCCESS
        refusals = _Refusals()
        try:
            end = time.monotonic() + self.retry.deadline
            messages, sizes, rejected = self._map(spans)
            exported = failed = 0
            for group in _batching.split(messages, sizes, self._name, self.max_spans_per_request,
                                         self.max_request_bytes):
                done = self._send([messages[i] for i in group], end, refusals)
                exported += done[0]
                rejected += done[1]
                failed += done[2]
        except Exception as exc:  # a bug must not reach the pipeline; the batch is lost
            _log.warning("Cloud Trace export failed: %s: %s", type(exc).__name__, exc)
            exported, rejected, failed = 0, 0, len(spans)
        if refusals.count:
            # Once per export, however many spans or requests: a batch refused whole must not
            # flood the application's log. Each refused span is logged at DEBUG.
            _log.warning("Cloud Trace refused %d of %d spans as invalid (%s)", refusals.count,
                         len(spans), refusals.detail)
        self._count(exported, rejected, failed)
        if exported == len(spans):
            return ExportResult.SUCCESS
        # Some went through: the pipeline counts exactly those as exported.
        return PartialSuccess(exported) if exported else ExportResult.FAILURE

    def _send(self, messages: List[Any], end: float,
              refusals: _Refusals) -> Tuple[int, int, int]:
        """Deliver ``messages``, halving a request refused as invalid; returns how many spans
        were exported, rejected and failed.
        """
        counts = [0, 0, 0]  # exported, rejected, failed
        # Refused parts still to cut, each with how many cuts above it had both halves
        # refused whole.
        refused: List[Tuple[List[Any], int]] = []
        if self._try(messages, end, counts, refusals):
            refused.append((messages, 0))
        while refused:
            part, both = refused.pop()
            if both >= MAX_REFUSED_SPLITS:
                # Halves refused whole, level after level: the fault is most likely not in a
                # few spans but in all of them (a project the backend refuses, clocks far
                # off). Cutting on would cost ever more requests for nothing.
                counts[1] += len(part)
                refusals.add(len(part), "")
                _log.debug("Cloud Trace: %d spans refused with their neighbours, counted as "
                           "rejected without cutting further", len(part))
                continue
            half = len(part) // 2
            found = [piece for piece in (part[:half], part[half:])
                     if self._try(piece, end, counts, refusals)]
            level = both + (len(found) == 2)
            for piece in reversed(found):  # the first half is cut first
                refused.append((piece, level))
        return counts[0], counts[1], counts[2]

    def _try(self, part: List[Any], end: float, counts: List[int],
             refusals: _Refusals) -> bool:
        """Send ``part`` once (with retries) and count what became of it; True when Cloud Trace
        refused it as invalid and it holds several spans, to be cut apart.
        """
        if self._stop.is_set() or time.monotonic() >= end:
            counts[2] += len(part)
            return False
        outcome, code = self._deliver(part, end)
        if outcome.ok:
            counts[0] += len(part)
        elif code == "INVALID_ARGUMENT" and len(part) > 1:
            refusals.add(0, outcome.detail)  # the backend's reason, for the one warning
            return True
        elif code == "INVALID_ARGUMENT":
            counts[1] += 1
            refusals.add(1, f"span {_mapping.span_id_of(part[0])}: {outcome.detail}")
            _log.debug("Cloud Trace refused span %s: %s", part[0].name, outcome.detail)
        else:
            counts[2] += len(part)
            if not self._stop.is_set():  # failing because shut down is no news to log
                self._note(outcome)
        return False

    def _deliver(self, part: List[Any], end: float) -> Tuple[Outcome, str]:
        request = _batching.request(self._name, part)
        codes = ["OK"]

        def attempt(remaining: float) -> Outcome:
            if self._stop.is_set():
                codes[0] = "CANCELLED"
                return Outcome.permanent("shut down")
            try:
                client = self._get_client(remaining)
                remaining = end - time.monotonic()
                result = client.batch_write_spans(request=request, retry=None,
                                                  timeout=max(min(self.timeout, remaining),
                                                              0.001))
            except Exception as exc:
                outcome, codes[0] = _classify(exc)
                return outcome
            if inspect.isawaitable(result):
                # An asynchronous client: nothing was sent. Closed, so no "never awaited"
                # warning; a failure, never a success.
                close = getattr(result, "close", None)
                if callable(close):
                    close()
                codes[0] = "FAILED_PRECONDITION"
                return Outcome.permanent("client: batch_write_spans returned an awaitable; "
                                         "pass a synchronous TraceServiceClient")
            codes[0] = "OK"
            return Outcome.success()

        # One Sender per request, its deadline what is left of the export's; its waits are on
        # our stop event, so shutdown() cuts them short.
        policy = self.retry._replace(deadline=max(end - time.monotonic(), 0.001))
        sender = Sender(policy, sleep=self._stop.wait)
        outcome = sender.run(attempt)
        sent = sender.stats()
        with self._lock:
            self._counts["requests"] += 1
            self._counts["attempts"] += sent["attempts"]
            self._counts["retries"] += sent["retries"]
        if outcome.ok:
            self._note(outcome)
        return outcome, codes[0]

    def _note(self, outcome: Outcome) -> None:
        # Log when delivery starts or stops failing, not once per batch: a backend that is down
        # must not flood the application's log.
        with self._lock:
            changed = self._failing == outcome.ok
            self._failing = not outcome.ok
        if changed and not outcome.ok:
            _log.warning("Cloud Trace export to %s failing (%s); further failures are counted "
                         "in stats()", self._name, outcome.detail)
        elif changed:
            _log.info("Cloud Trace export to %s working again", self._name)

    def _count(self, exported: int, rejected: int, failed: int) -> None:
        with self._lock:
            self._counts["spans_exported"] += exported
            self._counts["spans_rejected"] += rejected
            self._counts["spans_failed"] += failed

    def force_flush(self, timeout: float = 30.0) -> bool:
        """Nothing is buffered here: every export is sent when called."""
        return True

    def shutdown(self) -> None:
        """Stop: later exports fail, backoff waits end now, and a client this exporter made is
        closed (a client passed in belongs to the caller and stays open). Idempotent.
        """
        if self._stop.is_set():
            return
        self._stop.set()
        with self._client_lock:
            client, self._client = self._client, None
            building = self._building
        if building is not None:
            building.set()  # an export waiting for the client stops waiting
        if client is not None and self._owns_client:
            try:
                client.transport.close()
            except Exception:  # closing is best effort; shutdown must return
                _log.debug("closing the Cloud Trace client failed", exc_info=True)

    def stats(self) -> Dict[str, int]:
        """Counts: spans exported, rejected (refused as invalid, here or by Cloud Trace) and
        failed (not delivered), requests sent, attempts and retries.
        """
        with self._lock:
            return dict(self._counts)
