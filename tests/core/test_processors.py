"""Span processors: every span is exported or counted, nothing blocks, forks get a fresh worker."""

from __future__ import annotations

import os
import threading
import time
from typing import Any, List, Sequence

import pytest

import tracing_api as tracing
from tracing_api.export import ExportResult, PartialSuccess, SpanData

tracer = tracing.get_tracer(__name__)


class Recorder:
    """An exporter that keeps what it receives, optionally failing or hanging."""

    def __init__(self, fail: bool = False, hang: threading.Event | None = None) -> None:
        self.spans: List[SpanData] = []
        self.fail = fail
        self.hang = hang
        self.shutdowns = 0
        self.lock = threading.Lock()

    def export(self, spans: Sequence[SpanData]) -> ExportResult:
        if self.hang is not None:
            self.hang.wait(30)
        if self.fail:
            return ExportResult.FAILURE
        with self.lock:
            self.spans.extend(spans)
        return ExportResult.SUCCESS

    def force_flush(self, timeout: float = 30.0) -> bool:
        return True

    def shutdown(self) -> None:
        self.shutdowns += 1


class Raising(Recorder):
    def export(self, spans: Sequence[SpanData]) -> ExportResult:
        raise ConnectionError("backend exploded")


def end_spans(count: int) -> None:
    for _ in range(count):
        with tracer.span("s"):
            pass


def test_simple_processor_exports_as_spans_end() -> None:
    exporter = Recorder()
    tracing.configure(exporter=exporter, processor="simple")
    end_spans(3)
    assert len(exporter.spans) == 3
    assert tracing.stats() == {"ended": 3, "exported": 3, "dropped": 0, "failed": 0, "queued": 0}


def test_batch_processor_exports_everything_on_flush() -> None:
    exporter = Recorder()
    tracing.configure(exporter=exporter, schedule_delay=60)
    end_spans(1000)
    assert tracing.force_flush(timeout=10)
    assert len(exporter.spans) == 1000
    assert tracing.stats()["exported"] == 1000


def test_batch_processor_exports_after_schedule_delay_without_flush() -> None:
    exporter = Recorder()
    tracing.configure(exporter=exporter, schedule_delay=0.05)
    end_spans(3)
    deadline = time.monotonic() + 10
    while len(exporter.spans) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(exporter.spans) == 3


def test_every_span_from_eight_threads_is_exported_or_counted() -> None:
    exporter = Recorder()
    tracing.configure(exporter=exporter, max_queue_size=256)
    threads = [threading.Thread(target=end_spans, args=(5000,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert tracing.force_flush(timeout=30)
    stats = tracing.stats()
    assert stats["ended"] == 40_000
    assert stats["exported"] + stats["dropped"] == 40_000
    assert stats["exported"] == len(exporter.spans)
    assert stats["queued"] == 0


def test_full_queue_drops_and_counts_without_blocking() -> None:
    release = threading.Event()
    exporter = Recorder(hang=release)
    tracing.configure(exporter=exporter, max_queue_size=10, max_export_batch_size=5,
                      schedule_delay=0.01)
    try:
        end_spans(200)  # the worker is stuck in export: the queue fills, the rest is dropped
        stats = tracing.stats()
        assert stats["dropped"] >= 180
        assert stats["ended"] == 200
    finally:
        release.set()


def test_failed_and_raising_exports_are_counted_as_dropped() -> None:
    tracing.configure(exporter=[Recorder(fail=True), Raising()], schedule_delay=60)
    end_spans(10)
    tracing.force_flush(timeout=10)
    stats = tracing.stats()
    assert stats["failed"] == 20
    assert stats["dropped"] == 20
    assert stats["exported"] == 0


def test_shutdown_returns_within_timeout_when_the_backend_hangs() -> None:
    release = threading.Event()
    tracing.configure(exporter=Recorder(hang=release), schedule_delay=0.01)
    try:
        end_spans(5)
        time.sleep(0.05)  # the worker is now inside the hanging export
        started = time.monotonic()
        assert tracing.shutdown(timeout=0.5) is False
        assert time.monotonic() - started < 5
    finally:
        release.set()


def test_force_flush_honours_its_timeout_when_the_backend_hangs() -> None:
    release = threading.Event()
    tracing.configure(exporter=Recorder(hang=release), schedule_delay=60)
    try:
        end_spans(5)
        started = time.monotonic()
        assert tracing.force_flush(timeout=0.3) is False
        assert time.monotonic() - started < 5
    finally:
        release.set()


def test_second_shutdown_is_harmless_and_later_spans_are_dropped_and_counted() -> None:
    exporter = Recorder()
    tracing.configure(exporter=exporter)
    end_spans(2)
    assert tracing.shutdown(timeout=5)
    assert tracing.shutdown(timeout=5)
    end_spans(3)
    stats = tracing.stats()
    assert stats == {"ended": 5, "exported": 2, "dropped": 3, "failed": 0, "queued": 0}
    assert exporter.shutdowns == 1


def test_reconfigure_flushes_and_shuts_down_the_previous_pipeline() -> None:
    first = Recorder()
    tracing.configure(exporter=first, schedule_delay=60)
    end_spans(4)
    tracing.configure(exporter=Recorder())
    assert len(first.spans) == 4
    assert first.shutdowns == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_forked_child_exports_its_own_spans_through_a_fresh_worker(tmp_path: object) -> None:
    import multiprocessing

    exporter = Recorder()
    tracing.configure(exporter=exporter, schedule_delay=0.01)
    end_spans(50)  # queued in the parent before the fork; the child must not export them
    stop = threading.Event()
    busy = threading.Thread(target=lambda: [end_spans(10) for _ in iter(stop.is_set, True)])
    busy.start()  # forks while another thread is ending spans
    try:
        ctx = multiprocessing.get_context("fork")
        queue = ctx.Queue()
        child = ctx.Process(target=_child_main, args=(queue,))
        child.start()
        child.join(30)
        assert child.exitcode == 0
        exported_in_child, names = queue.get(timeout=10)
    finally:
        stop.set()
        busy.join(10)
    assert exported_in_child == 7
    assert names == {"child"}
    tracing.force_flush(timeout=10)
    assert "child" not in {s.name for s in exporter.spans}


def _child_main(queue: object) -> None:
    import tracing_api._tracer as t

    pipeline = t.active()
    assert pipeline is not None
    processor = pipeline.processors[0]
    recorder = processor.exporter  # type: ignore[attr-defined]
    before = len(recorder.spans)
    for _ in range(7):
        with tracer.span("child"):
            pass
    ok = tracing.force_flush(timeout=10)
    new = recorder.spans[before:]
    queue.put((len(new) if ok else -1, {s.name for s in new}))  # type: ignore[attr-defined]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_fork_while_the_worker_holds_its_lock_does_not_deadlock_the_child(exit_code_within: Any) -> None:
    release = threading.Event()
    tracing.configure(exporter=Recorder(hang=release), schedule_delay=0.01)
    try:
        end_spans(5)
        time.sleep(0.05)  # the worker is parked inside export
        pid = os.fork()
        if pid == 0:  # child: a fresh worker and exporter path must work at once
            code = 1
            try:
                processor = tracing._tracer.active().processors[0]  # type: ignore[union-attr]
                processor.exporter.hang = None  # type: ignore[attr-defined]
                end_spans(3)
                code = 0 if tracing.force_flush(timeout=5) else 2
            finally:
                os._exit(code)
        assert exit_code_within(pid, 30) == 0, "forked child deadlocked"
    finally:
        release.set()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_exporter_chosen_by_name_is_rebuilt_in_a_forked_child() -> None:
    """Sockets and channels of the parent's exporter are not shared with the child."""
    tracing.configure(exporter="memory", schedule_delay=0.01)
    processor = tracing._tracer.active().processors[0]  # type: ignore[union-attr]
    parent_exporter = processor.exporter  # type: ignore[attr-defined]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            child_exporter = processor.exporter  # type: ignore[attr-defined]
            end_spans(4)
            tracing.force_flush(timeout=5)
            rebuilt = child_exporter is not parent_exporter
            os.write(write, f"{int(rebuilt)} {len(child_exporter.spans)}".encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    answer = os.read(read, 100).decode()
    os.close(read)
    assert os.waitstatus_to_exitcode(status) == 0
    assert answer == "1 4"


def test_default_batch_processor_drops_nothing_when_four_threads_flood_it() -> None:
    """4 threads ending 200,000 spans as fast as they can (OpenTelemetry drops 10-30% here)."""
    exporter = Recorder()
    tracing.configure(exporter=exporter)
    threads = [threading.Thread(target=end_spans, args=(50_000,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert tracing.force_flush(timeout=30)
    stats = tracing.stats()
    assert stats["ended"] == 200_000
    assert stats["dropped"] == 0
    assert len(exporter.spans) == 200_000


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_simple_processor_forked_mid_export_works_in_the_child(exit_code_within: Any) -> None:
    release = threading.Event()
    exporter = Recorder(hang=release)
    tracing.configure(exporter=exporter, processor="simple")
    ender = threading.Thread(target=end_spans, args=(1,))
    ender.start()  # holds the processor's lock inside the hanging export
    time.sleep(0.1)
    try:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                exporter.hang = None
                end_spans(2)  # would wait forever on the inherited, held lock
                code = 0 if tracing.stats()["exported"] == 2 else 2
            finally:
                os._exit(code)
        assert exit_code_within(pid, 30) == 0, "forked child deadlocked"
    finally:
        release.set()
        ender.join(10)


def test_a_zero_schedule_delay_does_not_make_the_idle_worker_spin() -> None:
    tracing.configure(exporter=Recorder(), schedule_delay=0)
    cpu = time.process_time()
    time.sleep(1.0)  # nothing is traced: a spinning worker would use the whole second
    assert time.process_time() - cpu < 0.5
    with tracer.span("soon"):
        pass
    assert tracing.force_flush(10.0)
    assert tracing.stats()["exported"] == 1


class RetriesUntilShutDown(Recorder):
    """An exporter whose export retries until it is shut down, as the HTTP exporters do."""

    def __init__(self) -> None:
        super().__init__()
        self.exporting = threading.Event()
        self.stopped = threading.Event()

    def export(self, spans: Sequence[SpanData]) -> ExportResult:
        self.exporting.set()
        self.stopped.wait(30)
        return ExportResult.FAILURE

    def shutdown(self) -> None:
        self.stopped.set()


def test_simple_processor_shutdown_is_bounded_while_another_thread_exports() -> None:
    exporter = RetriesUntilShutDown()
    tracing.configure(exporter=exporter, processor="simple")
    ending = threading.Thread(target=lambda: tracer.start_span("stuck").end(), daemon=True)
    ending.start()
    assert exporter.exporting.wait(10)
    started = time.monotonic()
    assert tracing.shutdown(timeout=5.0)
    assert time.monotonic() - started < 20  # not the export's 30 s: shutdown cut it short
    ending.join(10)
    assert not ending.is_alive() and exporter.stopped.is_set()
    assert tracing.stats()["failed"] == 1


class DeliversSome(Recorder):
    """An exporter whose backend takes only some spans of each batch."""

    def __init__(self, reply: object) -> None:
        super().__init__()
        self.reply = reply

    def export(self, spans: Sequence[SpanData]) -> ExportResult:
        return self.reply  # type: ignore[return-value]


@pytest.mark.parametrize(("reply", "exported"), [
    (PartialSuccess(3), 3), (PartialSuccess(0), 0), (PartialSuccess(-2), 0),
    (PartialSuccess(99), 5), (PartialSuccess("x"), 0),  # type: ignore[arg-type]
])
@pytest.mark.parametrize("processor", ["batch", "simple"])
def test_a_partial_success_counts_what_was_delivered_and_fails_the_rest(
    reply: PartialSuccess, exported: int, processor: str,
) -> None:
    tracing.configure(exporter=DeliversSome(reply), processor=processor)
    if processor == "simple":
        exported = min(exported, 1) * 5  # one span per export: each counts alone
    for i in range(5):
        tracer.start_span(f"s{i}").end()
    assert tracing.force_flush(10.0)
    stats = tracing.stats()
    assert (stats["ended"], stats["exported"], stats["failed"]) == (5, exported, 5 - exported)
    assert stats["dropped"] == 5 - exported


class Slow(Recorder):
    """A backend that takes a few milliseconds per batch (the GIL is free meanwhile)."""

    def export(self, spans: Sequence[SpanData]) -> ExportResult:
        time.sleep(0.005)
        return super().export(spans)


def test_force_flush_succeeds_while_other_threads_keep_ending_spans() -> None:
    exporter = Slow()
    tracing.configure(exporter=exporter, max_export_batch_size=64)
    stop = threading.Event()

    def busy() -> None:
        deadline = time.monotonic() + 30
        while not stop.is_set() and time.monotonic() < deadline:
            tracer.start_span("load").end()
            time.sleep(0.0005)  # a load the exporter keeps up with, never idle for long

    threads = [threading.Thread(target=busy, daemon=True) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.2)
        marker = tracer.start_span("before the flush")
        marker.end()
        assert tracing.force_flush(10.0)
        with exporter.lock:
            assert any(s.name == "before the flush" for s in exporter.spans)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)


def test_one_hung_exporter_does_not_cost_another_its_spans_at_shutdown() -> None:
    hang = threading.Event()
    hung, healthy = Recorder(hang=hang), Recorder()
    tracing.configure(exporter=[hung, healthy], schedule_delay=60.0)  # all wait for shutdown
    try:
        for i in range(100):
            tracer.start_span(f"s{i}").end()
        tracing.shutdown(timeout=1.0)  # the hung one takes all of it
        assert len(healthy.spans) == 100
    finally:
        hang.set()


def test_a_span_ending_after_a_reconfigure_goes_to_the_new_pipeline() -> None:
    first, second = Recorder(), Recorder()
    tracing.configure(exporter=first, processor="simple")
    in_flight = tracer.start_span("in flight")
    tracing.configure(exporter=second, processor="simple")
    in_flight.end()
    later = tracer.start_span("started on the second")
    third = Recorder()
    tracing.configure(exporter=third, processor="simple")
    later.end()  # forwarded along: second -> third
    assert [s.name for s in first.spans] == []
    assert [s.name for s in second.spans] == ["in flight"]
    assert [s.name for s in third.spans] == ["started on the second"]
    assert tracing.stats()["ended"] == 1  # the live pipeline's own books


def test_the_batch_worker_shuts_its_exporter_down_where_no_thread_can_be_started(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tracing_api import _processors

    exporter = Recorder()
    tracing.configure(exporter=exporter)

    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't create new thread at interpreter shutdown")

    monkeypatch.setattr(_processors.threading.Thread, "start", refuse)
    assert tracing.shutdown(timeout=2.0)
    assert exporter.shutdowns == 1


def test_a_span_outliving_many_reconfigurations_ends_into_the_live_pipeline() -> None:
    import sys as _sys

    first = Recorder()
    tracing.configure(exporter=first, processor="simple")
    old = tracer.start_span("long-lived")
    for _ in range(_sys.getrecursionlimit() + 100):  # deeper than calls could follow
        tracing.configure(exporter=first, processor="simple")
    last = Recorder()
    tracing.configure(exporter=last, processor="simple")
    old.end()
    assert [s.name for s in last.spans] == ["long-lived"]
