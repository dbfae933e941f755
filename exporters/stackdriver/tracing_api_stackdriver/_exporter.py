"""The Cloud Trace exporter: spans mapped, split into requests, sent with ``BatchWriteSpans``.

Every call carries its own timeout and no client-side retry (the client library's default
retry waits up to 120 s): retries are ``tracing_api.delivery``'s, within one deadline for the
whole ``export`` (its first call is always made). A request the backend refuses as
INVALID_ARGUMENT is cut in halves and the halves sent again, level by level, down to the single
spans at fault, so one bad span never costs its neighbours; where every piece of a level is
refused and none was taken, the fault is likely the whole batch's and cutting stops (see
``REFUSED_WHOLE_PIECES`` and ``ISOLATED_BAD_SPANS``). The client is made on a helper thread at
the first export, so finding credentials never holds an export past its deadline.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from tracing_api.delivery import Outcome, RetryPolicy, Sender
from tracing_api.export import ExportResult, PartialSuccess, SpanData

from . import _batching, _mapping
from ._errors import ClientFailed, ClientNotReady, classify

_log = logging.getLogger("tracing_api.stackdriver")

CLIENT_RETRY_SECONDS = 60.0
"""How long a failure to make the Cloud Trace client is kept before it is tried again."""
REFUSED_WHOLE_PIECES = 8
"""When this many pieces of a refused request (or more), a whole level of cutting, are all
refused and no piece was taken yet, the fault is taken to be in every span: the spans left are
counted as rejected unsent. A request refused as a whole costs 1 + 2 + 4 + 8 = 15 requests,
whatever its size."""
ISOLATED_BAD_SPANS = 8
"""Cutting one refused request of n spans sends at most ``2 * ISOLATED_BAD_SPANS * log2(n)``
more requests (log2 rounded up): enough to isolate that many bad spans, each in its own piece
at every level. Spans still in refused pieces when the budget is spent are counted as rejected
unsent. Up to 7 bad spans are always isolated, wherever they are; 8 or more are too, unless
every eighth of the request holds one (which looks like a request refused whole)."""
_DEFAULT_RETRY = RetryPolicy()


class _ExportState:
    """One export so far: whether it made an attempt yet, and what Cloud Trace refused (logged
    once at its end).
    """

    def __init__(self) -> None:
        self.attempted = False
        self.count = 0
        self.detail = ""

    def add(self, count: int, detail: str) -> None:
        self.count += count
        self.detail = self.detail or detail


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
        seconds. Raises ``ClientFailed`` (carrying the error that made it fail) or
        ``ClientNotReady``.
        """
        with self._client_lock:
            if self._stop.is_set():
                raise RuntimeError("shut down")
            if self._client is not None:
                return self._client
            if self._client_error is not None:
                error, when = self._client_error
                if time.monotonic() - when < CLIENT_RETRY_SECONDS:
                    raise ClientFailed(error) from None
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
            raise ClientFailed(failure[0]) from None
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
                self._client_error = (exc.with_traceback(None), time.monotonic())
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
        state = _ExportState()
        try:
            end = time.monotonic() + self.retry.deadline
            messages, sizes, rejected = self._map(spans)
            exported = failed = 0
            for group in _batching.split(messages, sizes, self._name, self.max_spans_per_request,
                                         self.max_request_bytes):
                done = self._send([messages[i] for i in group], end, state)
                exported += done[0]
                rejected += done[1]
                failed += done[2]
        except Exception as exc:  # a bug must not reach the pipeline; the batch is lost
            _log.warning("Cloud Trace export failed: %s: %s", type(exc).__name__, exc)
            exported, rejected, failed = 0, 0, len(spans)
        if state.count:
            # Once per export, however many spans or requests: a batch refused whole must not
            # flood the application's log. Each refused span is logged at DEBUG.
            _log.warning("Cloud Trace refused %d of %d spans as invalid (%s)", state.count,
                         len(spans), state.detail)
        self._count(exported, rejected, failed)
        if exported == len(spans):
            return ExportResult.SUCCESS
        # Some went through: the pipeline counts exactly those as exported.
        return PartialSuccess(exported) if exported else ExportResult.FAILURE

    def _send(self, messages: List[Any], end: float,
              state: _ExportState) -> Tuple[int, int, int]:
        """Deliver ``messages``, cutting a request refused as invalid in halves, level by level;
        returns how many spans were exported, rejected and failed.
        """
        counts = [0, 0, 0]  # exported, rejected, failed
        if not self._try(messages, end, counts, state) or len(messages) < 2:
            return counts[0], counts[1], counts[2]
        # Halving isolates each bad span in about log2(n) levels of two requests: a budget for
        # ISOLATED_BAD_SPANS of them bounds the cost of a request full of bad spans.
        budget = 2 * ISOLATED_BAD_SPANS * (len(messages) - 1).bit_length()
        refused = [messages]
        while refused:
            pieces = [piece for part in refused
                      for piece in (part[:len(part) // 2], part[len(part) // 2:])]
            if len(pieces) > budget:
                self._give_up(refused, counts, state)
                break
            budget -= len(pieces)
            refused = [piece for piece in pieces if self._try(piece, end, counts, state)]
            if len(refused) == len(pieces) >= REFUSED_WHOLE_PIECES and not counts[0]:
                # Every piece refused, none taken: the fault is most likely not in a few spans
                # but in all of them (a project the backend refuses, clocks far off). Cutting
                # on would cost ever more requests for nothing.
                self._give_up([piece for piece in refused if len(piece) > 1], counts, state)
                break
            refused = [piece for piece in refused if len(piece) > 1]
        return counts[0], counts[1], counts[2]

    @staticmethod
    def _give_up(refused: List[List[Any]], counts: List[int], state: _ExportState) -> None:
        left = sum(len(part) for part in refused)
        counts[1] += left
        state.add(left, "")
        _log.debug("Cloud Trace: %d spans refused with their neighbours, counted as rejected "
                   "without cutting further", left)

    def _try(self, part: List[Any], end: float, counts: List[int],
             state: _ExportState) -> bool:
        """Send ``part`` once (with retries) and count what became of it; True when Cloud Trace
        refused it as invalid (a single span refused is counted here as rejected).
        """
        if self._stop.is_set() or (state.attempted and time.monotonic() >= end):
            counts[2] += len(part)
            return False
        outcome, code = self._deliver(part, end, state)
        if outcome.ok:
            counts[0] += len(part)
        elif code == "INVALID_ARGUMENT" and len(part) > 1:
            state.add(0, outcome.detail)  # the backend's reason, for the one warning
            return True
        elif code == "INVALID_ARGUMENT":
            counts[1] += 1
            state.add(1, f"span {_mapping.span_id_of(part[0])}: {outcome.detail}")
            _log.debug("Cloud Trace refused span %s: %s", part[0].name, outcome.detail)
            return True
        else:
            counts[2] += len(part)
            if not self._stop.is_set():  # failing because shut down is no news to log
                self._note(outcome)
        return False

    def _deliver(self, part: List[Any], end: float,
                 state: _ExportState) -> Tuple[Outcome, str]:
        request = _batching.request(self._name, part)
        codes = ["OK"]

        def attempt(remaining: float) -> Outcome:
            if self._stop.is_set():
                codes[0] = "CANCELLED"
                return Outcome.permanent("shut down")
            first, state.attempted = not state.attempted, True
            try:
                # The first attempt waits for a client still being made as long as its call
                # may take (a deadline of 0 still makes one call); later ones, what is left.
                client = self._get_client(max(remaining, self.timeout) if first else remaining)
                # The export's first call has its whole timeout, whatever the deadline (which
                # bounds the attempts after the first); later ones end by the deadline.
                timeout = self.timeout if first else max(
                    min(self.timeout, end - time.monotonic()), 0.001)
                result = client.batch_write_spans(request=request, retry=None, timeout=timeout)
            except Exception as exc:
                outcome, codes[0] = classify(exc)
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
