"""Span processors: ``simple`` exports on the ending thread, ``batch`` on a background worker.

Every span a processor takes is, in the end, exported, dropped or still queued, and counted as
such: ``ended == exported + dropped + queued`` (``failed`` counts the dropped spans whose export
failed). The batch processor never blocks the application: a full queue drops the span and counts
it, and export runs on the worker thread with the exporter's own time bounds.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable, Deque, Dict, List, Mapping, Optional, Sequence, Type

from . import _log
from ._forks import export_lock_for, watch_forks
from .export import ExportResult, PartialSuccess, SpanData, SpanExporter


def _export(
    exporter: SpanExporter, batch: Sequence[SpanData],
    catching: Type[BaseException] = BaseException,
) -> int:
    """How many spans of ``batch`` the exporter delivered; an exception ``catching`` covers
    counts as none (any other propagates)."""
    try:
        result = exporter.export(batch)
        if result is ExportResult.SUCCESS:
            return len(batch)
        if isinstance(result, PartialSuccess):
            return min(max(int(result.exported), 0), len(batch))
        return 0
    except catching:  # on the worker, even a gevent.Timeout: it must not die with a batch in hand
        try:  # logging needs stack too: near the recursion limit it raises in turn
            _log.warn(f"raise:{id(exporter)}", "span exporter %r raised; %d spans dropped",
                      exporter, len(batch), exc_info=True)
        except Exception:
            pass
        return 0


def _bounded(timeout: float) -> float:
    """``timeout`` as a wait the threading module accepts (an infinite one is its maximum)."""
    try:
        return min(max(float(timeout), 0.0), threading.TIMEOUT_MAX)
    except (TypeError, ValueError):
        return 0.0


MIN_SCHEDULE_DELAY = 0.01
"""The shortest wait between the batch worker's passes (seconds); a smaller delay is raised to it."""

def _stop_exporter(exporter: SpanExporter, deadline: float) -> bool:
    """Shut ``exporter`` down on a thread of its own, waiting for it until ``deadline``
    (``time.monotonic()``); whether it finished in time and without raising. Where no thread can
    be started, only the built-in local exporters are shut down (inline), others not at all."""
    failed: List[bool] = []

    def stop() -> None:
        try:
            exporter.shutdown()
        except Exception:
            failed.append(True)
            _log.warn("shutdown", "span exporter %r failed to shut down", exporter, exc_info=True)

    stopper = threading.Thread(target=stop, name="tracing-api-shutdown", daemon=True)
    try:
        stopper.start()
    except RuntimeError:  # no new threads at interpreter exit (Python 3.12+)
        # Called here, an exporter's shutdown() that hangs would hold the exit with no bound, so
        # it is skipped; but not the built-in local exporters', which cannot hang and may still
        # hold spans (console prints a trace whose root has not ended at shutdown).
        if type(exporter).__module__ != "tracing_api._local":
            return False
        stop()
        return not failed
    stopper.join(max(0.0, deadline - time.monotonic()))
    return not stopper.is_alive() and not failed


class SimpleProcessor:
    """Exports each span as it ends, on the ending thread. For tests and scripts."""

    def __init__(
        self, exporter: SpanExporter, *,
        make_exporter: Optional[Callable[[], SpanExporter]] = None,
    ) -> None:
        self.exporter = exporter
        self.release_exporter = True  # False: shutdown leaves the exporter open (reconfigure)
        self._make_exporter = make_exporter
        # Held for each export; shared with any other processor of ours sending to the same
        # exporter object.
        self._export_lock = export_lock_for(self)
        self._lock = threading.Lock()  # guards the counts and _closed, never held while exporting
        self._closed = False
        self._exported = self._dropped = self._failed = 0
        watch_forks(self)

    def _reset_after_fork(self) -> None:
        # The locks may have been held by threads that do not exist here; the counts are the
        # parent's spans.
        self._lock = threading.Lock()
        self._exported = self._dropped = self._failed = 0
        if self._make_exporter is not None and not self._closed:
            # The parent's sockets and channels are not the child's to use.
            try:
                self.exporter = self._make_exporter()
            except Exception:
                _log.warn("fork", "could not rebuild the span exporter after fork", exc_info=True)
        self._export_lock = export_lock_for(self)

    def on_end(self, span: SpanData) -> None:
        """Export ``span`` now."""
        export_lock = self._export_lock
        me = threading.get_ident()
        if export_lock.owner == me:
            # Ended on this thread in the middle of its own export to this exporter (the GC
            # finalizing a traced generator, the exporter tracing its own HTTP call): waiting
            # for the lock would wait for ourselves, and exporting would re-enter the exporter.
            with self._lock:
                self._dropped += 1
            return
        delivered = 0
        exporting = False
        try:
            with export_lock.lock:
                try:
                    export_lock.owner = me
                    if not self._closed:
                        exporting = True
                        delivered = _export(self.exporter, (span,), Exception)
                finally:
                    export_lock.owner = 0
        except BaseException:  # Ctrl-C, SystemExit, a gevent.Timeout, while exporting or waiting
            with self._lock:  # for the lock: the application's to handle, the span is counted
                self._dropped += 1
                if exporting:
                    self._failed += 1
            raise
        with self._lock:
            if delivered == 1:
                self._exported += 1
            else:
                self._dropped += 1
                if exporting:  # not when shut down: that span was never sent
                    self._failed += 1

    def force_flush(self, timeout: float = 30.0) -> bool:
        """Nothing is buffered here; flush the exporter."""
        try:
            return bool(self.exporter.force_flush(timeout))
        except Exception:
            return False

    def shutdown(self, timeout: float = 30.0) -> bool:
        """Stop taking spans and shut the exporter down, within ``timeout`` seconds even while
        another thread's export is in flight (shutting the exporter down cuts its retries short).
        """
        with self._lock:  # not the export lock: an export holds that for as long as it retries
            if self._closed:
                return True
            self._closed = True
        if not self.release_exporter:
            return True
        return _stop_exporter(self.exporter, time.monotonic() + _bounded(timeout))

    def stats(self) -> Dict[str, int]:
        """Span counts."""
        with self._lock:
            ended = self._exported + self._dropped
            return {"ended": ended, "exported": self._exported, "dropped": self._dropped,
                    "failed": self._failed, "queued": 0}


class BatchProcessor:
    """Queues spans and exports them in batches from a background thread.

    The queue is bounded (``max_queue_size``); a span that finds it full is dropped and counted.
    A batch goes out when ``max_export_batch_size`` spans are waiting or ``schedule_delay``
    seconds have passed. After ``os.fork()`` the child gets an empty queue and a fresh worker
    (and a fresh exporter, when the processor was given a way to build one).
    """

    def __init__(
        self, exporter: SpanExporter, *, max_queue_size: int = 32768,
        max_export_batch_size: int = 512, schedule_delay: float = 1.0,
        make_exporter: Optional[Callable[[], SpanExporter]] = None,
    ) -> None:
        self.exporter = exporter
        self.release_exporter = True  # False: shutdown leaves the exporter open (reconfigure)
        self._make_exporter = make_exporter
        self._max_queue = max_queue_size
        self._batch_size = max_export_batch_size
        # A worker waiting 0 s would spin; shorter than this, a delay only burns CPU.
        self._delay = max(_bounded(schedule_delay), MIN_SCHEDULE_DELAY)
        self._init_state()
        self._export_lock = export_lock_for(self)
        self._ensure_worker()
        watch_forks(self)

    def _init_state(self) -> None:
        self._queue: Deque[SpanData] = deque()
        # Below this many queued spans, on_end only appends; at or above it, it takes the slow
        # path that wakes the worker, drops on a full queue and drops after shutdown (0 then).
        self._quiet_below = self._batch_size
        self._yield_above = self._max_queue // 4
        self._exporting = False
        self._wake = threading.Event()
        self._wake_pending = False
        self._lock = threading.Lock()  # guards the counters the application threads touch
        self._flush_waiters: List[threading.Event] = []
        self._closed = False
        self._shut_down = False
        self._stopping = False
        self._taken = self._exported = self._dropped = self._failed = 0
        self._finished = False  # the worker is through its last drain: no flush is answered
        self._exporter_claimed = False  # the worker or shutdown() is shutting the exporter down
        self._exporter_failed = False
        self._worker: Optional[threading.Thread] = None
        self._worker_lock = threading.Lock()

    def _reset_after_fork(self) -> None:
        # Locks may have been held by threads that do not exist in the child: replace them all.
        # Spans queued before the fork belong to the parent, which exports them.
        closed, shut_down = self._closed, self._shut_down
        self._init_state()
        self._closed, self._shut_down = closed, shut_down
        if self._make_exporter is not None and not closed:
            try:
                self.exporter = self._make_exporter()
            except Exception:
                _log.warn("fork", "could not rebuild the span exporter after fork", exc_info=True)
        self._export_lock = export_lock_for(self)
        if closed:
            self._quiet_below = 0
        else:
            self._ensure_worker()

    def _ensure_worker(self) -> None:
        with self._worker_lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(
                    target=self._run, name="tracing-api-batch", daemon=True
                )
                self._worker.start()

    def on_end(self, span: SpanData) -> None:
        """Queue ``span``; never blocks. Drops and counts it when the queue is full."""
        queue = self._queue
        if len(queue) < self._quiet_below:
            queue.append(span)
        else:
            self._on_end_busy(span)

    def _on_end_busy(self, span: SpanData) -> None:
        queue = self._queue
        if self._closed or len(queue) >= self._max_queue:
            with self._lock:
                self._dropped += 1
            return
        queue.append(span)
        if not self._wake_pending:
            self._wake_pending = True
            worker = self._worker
            if worker is None or not worker.is_alive():  # it died: the queue must not wait forever
                try:
                    self._ensure_worker()
                except Exception:  # no thread to be had now: the next batch tries again
                    self._wake_pending = False
                    return
            # Until the worker's next pass, only a flood needs more than an append (the worker
            # may wait for the interpreter lock for a while; spans must not pay for that).
            # (Read _closed again: shut down meanwhile, every span must take the path that drops.)
            self._quiet_below = 0 if self._closed else self._yield_above
            self._wake.set()
            time.sleep(0)  # let the worker take the batch now: spans die young, the GC has less to do
        elif len(queue) > self._yield_above and not self._exporting:
            # A flood from several threads: the worker, woken but not exporting, waits for the
            # interpreter lock behind every producer, and could find the queue full. Giving the
            # lock up (never waiting for the worker, nor for the network) lets it drain.
            time.sleep(0)

    def _run(self) -> None:
        while True:
            self._wake.wait(self._delay)
            self._wake.clear()
            self._wake_pending = False
            self._quiet_below = 0 if self._closed else self._batch_size
            waiters, self._flush_waiters = self._flush_waiters, []
            # What was queued when this pass began, so that a flush is answered even while
            # other threads keep ending spans; everything when stopping.
            self._drain(None if self._stopping else len(self._queue))
            for waiter in waiters:
                waiter.set()
            if self._stopping:
                self._drain(None)  # what came during the last pass
                self._finish()
                return
            if len(self._queue) >= self._batch_size:
                self._wake.set()  # a full batch came meanwhile: go round again at once

    def _drain(self, limit: Optional[int]) -> None:
        queue = self._queue
        popleft = queue.popleft
        left = len(queue) if limit is None else limit
        while queue and left > 0:
            batch: List[SpanData] = []
            try:
                for _ in range(min(self._batch_size, len(queue), left)):
                    batch.append(popleft())
            except IndexError:  # emptied by a fork reset; nothing is lost
                pass
            if not batch:
                return
            if limit is not None:
                left -= len(batch)
            else:
                left = len(queue)
            self._taken += len(batch)
            export_lock = self._export_lock
            with export_lock.lock:
                self._exporting = True
                try:
                    export_lock.owner = threading.get_ident()
                    delivered = _export(self.exporter, batch)
                finally:
                    export_lock.owner = 0
                    self._exporting = False
            self._exported += delivered
            self._failed += len(batch) - delivered

    def _finish(self) -> None:
        """After the last drain, on the worker: answer the flushes still waiting, then shut the
        exporter down here, where ``shutdown()``'s wait bounds it (at interpreter exit on
        Python 3.12+ no other thread can be started to do it)."""
        with self._lock:
            self._finished = True
            waiters, self._flush_waiters = self._flush_waiters, []
        for waiter in waiters:
            waiter.set()
        if self.release_exporter and self._claim_exporter():
            try:
                self.exporter.shutdown()
            except BaseException:  # as in export: the worker ends normally whatever happens
                self._exporter_failed = True
                _log.warn("shutdown", "span exporter %r failed to shut down", self.exporter,
                          exc_info=True)

    def _claim_exporter(self) -> bool:
        """Whether the caller is the one to shut the exporter down (only one does)."""
        with self._lock:
            claimed, self._exporter_claimed = self._exporter_claimed, True
        return not claimed

    def force_flush(self, timeout: float = 30.0) -> bool:
        """Export what is queued now, waiting at most ``timeout`` seconds."""
        deadline = time.monotonic() + _bounded(timeout)
        if self._worker is None or not self._worker.is_alive():
            if not self._queue:
                return self._flush_exporter(deadline)
            self._ensure_worker()
        done = threading.Event()
        with self._lock:
            finished = self._finished
            if not finished:
                self._flush_waiters.append(done)
        if finished:  # shut down meanwhile, and the last drain is over: nothing is left to wait for
            return not self._queue and self._flush_exporter(deadline)
        self._wake.set()
        if not done.wait(max(0.0, deadline - time.monotonic())):
            return False
        return self._flush_exporter(deadline)

    def _flush_exporter(self, deadline: float) -> bool:
        try:
            return bool(self.exporter.force_flush(max(0.0, deadline - time.monotonic())))
        except Exception:
            return False

    def begin_shutdown(self) -> None:
        """Stop taking spans and have the worker export what is queued, without waiting for it
        (``shutdown`` waits). A pipeline starts every processor's last drain this way first,
        so that one slow exporter does not eat the others' time."""
        if self._closed:
            return
        self._closed = True
        self._quiet_below = 0
        if self._worker is None and self._queue:
            try:
                self._ensure_worker()
            except Exception:  # no thread to be had: what is queued stays counted as queued
                pass
        self._stopping = True
        self._wake.set()

    def shutdown(self, timeout: float = 30.0) -> bool:
        """Export what is queued and stop, within ``timeout`` seconds. Safe to call twice."""
        if self._shut_down:
            return True
        self._shut_down = True
        deadline = time.monotonic() + _bounded(timeout)
        self.begin_shutdown()
        worker = self._worker
        if worker is not None:
            worker.join(max(0.0, deadline - time.monotonic()))
            finished = not worker.is_alive()
        else:
            finished = True
        self._quiet_below = 0  # again: a span ending during the join may have raised it
        if not self.release_exporter:
            return finished
        if self._claim_exporter():
            # The worker is not through its drain (or there is none): stop the exporter from
            # here, which cuts its retries short.
            return _stop_exporter(self.exporter, deadline) and finished
        return finished and not self._exporter_failed  # the worker stopped it

    def stats(self) -> Dict[str, int]:
        """Span counts; exact whenever the processor is idle."""
        with self._lock:
            dropped_at_queue = self._dropped
        queued = len(self._queue)
        taken, exported, failed = self._taken, self._exported, self._failed
        return {
            "ended": taken + queued + dropped_at_queue,
            "exported": exported,
            "dropped": dropped_at_queue + failed,
            "failed": failed,
            "queued": queued + (taken - exported - failed),
        }


def counts_sum(stats: Sequence[Mapping[str, int]]) -> Dict[str, int]:
    """The counts of several processors added up."""
    total = {"ended": 0, "exported": 0, "dropped": 0, "failed": 0, "queued": 0}
    for one in stats:
        for key in total:
            total[key] += one.get(key, 0)
    return total
