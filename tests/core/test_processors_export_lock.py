"""The lock around an exporter's ``export()``: a span ending on the thread that holds it, and an
interrupt arriving while a simple processor waits for it."""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType
from typing import Callable, List, Optional, Sequence

import pytest

import tracing_api as tracing
from tracing_api.export import ExportResult, SpanData

tracer = tracing.get_tracer(__name__)


class Recorder:
    """An exporter that keeps span names and runs ``during_export`` (once) inside an export."""

    def __init__(self) -> None:
        self.names: List[str] = []
        self.during_export: Optional[Callable[[], None]] = None

    def export(self, spans: Sequence[SpanData]) -> ExportResult:
        during, self.during_export = self.during_export, None
        if during is not None:
            during()
        self.names.extend(s.name for s in spans)
        return ExportResult.SUCCESS

    def force_flush(self, timeout: float = 30.0) -> bool:
        return True

    def shutdown(self) -> None:
        pass


def _ends_within(seconds: float, name: str) -> bool:
    """Whether a thread ending a span named ``name`` is through within ``seconds``."""
    ending = threading.Thread(target=lambda: tracer.start_span(name).end(), daemon=True)
    ending.start()
    ending.join(seconds)
    return not ending.is_alive()


def test_a_span_ending_inside_the_simple_processors_own_export_is_dropped_not_waited_for() -> None:
    exporter = Recorder()
    # The exporter traces its own call to the backend: that span ends mid-export.
    exporter.during_export = lambda: tracer.start_span("exporter's own request").end()
    tracing.configure(exporter=exporter, processor="simple")
    assert _ends_within(10, "request"), "the ending thread waited for the lock it holds"
    assert _ends_within(10, "later"), "the export lock was left held"
    assert exporter.names == ["request", "later"]
    assert tracing.stats() == {"ended": 3, "exported": 2, "dropped": 1, "failed": 0, "queued": 0}


def test_a_span_ending_on_the_batch_worker_mid_export_does_not_block_a_simple_successor() -> None:
    exporter = Recorder()
    tracing.configure(exporter=exporter, schedule_delay=60.0, shutdown_timeout=0.5)
    late = tracer.start_span("late")  # started here; ends in the old pipeline's last export
    tracer.start_span("old").end()
    # The old pipeline's worker holds the export lock it shares with the new simple processor
    # (the same exporter object) when ``late`` ends on it and is forwarded to the new pipeline.
    exporter.during_export = late.end
    tracing.configure(exporter=exporter, processor="simple", shutdown_timeout=0.5)
    assert _ends_within(10, "request"), "the worker kept the export lock"
    assert exporter.names == ["old", "request"]
    assert tracing.stats() == {"ended": 2, "exported": 1, "dropped": 1, "failed": 0, "queued": 0}


class Held(Recorder):
    """An exporter whose export waits for ``gate`` (a slow round trip)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.exporting = threading.Event()

    def export(self, spans: Sequence[SpanData]) -> ExportResult:
        self.exporting.set()
        self.gate.wait(20)
        return super().export(spans)


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs POSIX signals")
def test_an_interrupt_while_waiting_for_the_export_lock_counts_the_span_as_dropped() -> None:
    from tracing_api import _processors

    exporter = Held()
    tracing.configure(exporter=exporter, processor="simple")
    other = threading.Thread(target=lambda: tracer.start_span("other thread").end())
    other.start()
    assert exporter.exporting.wait(10)  # the other thread's export holds the lock
    interrupted = threading.Event()
    on_end_code = _processors.SimpleProcessor.on_end.__code__

    def ctrl_c(signum: int, frame: Optional[FrameType]) -> None:
        # Only once the main thread waits in on_end (the lock is held): an interrupt anywhere
        # else would test nothing.
        if frame is not None and frame.f_code is on_end_code and not interrupted.is_set():
            interrupted.set()
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGUSR1, ctrl_c)
    main = threading.main_thread().ident
    assert main is not None and threading.get_ident() == main

    def press_until_interrupted() -> None:
        deadline = time.monotonic() + 10
        while not interrupted.is_set() and time.monotonic() < deadline:
            signal.pthread_kill(main, signal.SIGUSR1)
            time.sleep(0.02)
        exporter.gate.set()

    pressing = threading.Thread(target=press_until_interrupted)
    pressing.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            tracer.start_span("main thread").end()
    finally:
        exporter.gate.set()
        pressing.join(20)
        other.join(20)
        signal.signal(signal.SIGUSR1, previous)
    assert exporter.names == ["other thread"]
    assert tracing.stats() == {"ended": 2, "exported": 1, "dropped": 1, "failed": 0, "queued": 0}
