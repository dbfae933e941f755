"""Processors at the edges of their life: interrupts, flushes during shutdown, exporters that
will not shut down where no thread can start, and forked children's counts."""

from __future__ import annotations

import os
import threading
from typing import Any, List, Sequence

import pytest

import tracing_api as tracing
from tracing_api.export import ExportResult, SpanData

tracer = tracing.get_tracer(__name__)


class Recorder:
    """An exporter that keeps span names; ``gate``, when given, holds each export until set."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.names: List[str] = []
        self.gate = gate
        self.exporting = threading.Event()
        self.shutdowns = 0

    def export(self, spans: Sequence[SpanData]) -> ExportResult:
        self.exporting.set()
        if self.gate is not None:
            self.gate.wait(20)
        self.names.extend(s.name for s in spans)
        return ExportResult.SUCCESS

    def force_flush(self, timeout: float = 30.0) -> bool:
        return True

    def shutdown(self) -> None:
        self.shutdowns += 1


class Interrupted(Recorder):
    """An exporter whose first export is interrupted (Ctrl-C arriving while it waits for the
    backend); the later ones deliver."""

    def __init__(self, error: type[BaseException]) -> None:
        super().__init__()
        self.error: type[BaseException] | None = error

    def export(self, spans: Sequence[SpanData]) -> ExportResult:
        error, self.error = self.error, None
        if error is not None:
            raise error()
        return super().export(spans)


@pytest.mark.parametrize("error", [KeyboardInterrupt, SystemExit])
def test_simple_processor_lets_an_interrupt_during_export_reach_the_application(
    error: type[BaseException],
) -> None:
    tracing.configure(exporter=Interrupted(error), processor="simple")
    with pytest.raises(error):
        tracer.start_span("interrupted").end()
    assert tracing.stats() == {"ended": 1, "exported": 0, "dropped": 1, "failed": 1, "queued": 0}


def test_an_interrupt_in_one_exporter_still_delivers_the_span_to_the_others() -> None:
    first, second = Interrupted(KeyboardInterrupt), Recorder()
    tracing.configure(exporter=[first, second], processor="simple")
    with pytest.raises(KeyboardInterrupt):
        tracer.start_span("interrupted").end()
    assert second.names == ["interrupted"]
    assert tracing.stats() == {"ended": 2, "exported": 1, "dropped": 1, "failed": 1, "queued": 0}


def test_a_failing_export_whose_warning_cannot_be_logged_raises_nothing_into_span_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tracing_api import _log

    def no_stack_left(*args: object, **kwargs: object) -> None:  # logging near the recursion limit
        raise RecursionError("maximum recursion depth exceeded")

    tracing.configure(exporter=Interrupted(ConnectionError), processor="simple")
    monkeypatch.setattr(_log, "warn", no_stack_left)
    tracer.start_span("failed").end()
    assert tracing.stats() == {"ended": 1, "exported": 0, "dropped": 1, "failed": 1, "queued": 0}


def test_batch_worker_counts_an_interrupted_export_and_goes_on() -> None:
    exporter = Interrupted(KeyboardInterrupt)
    tracing.configure(exporter=exporter, schedule_delay=60.0)
    tracer.start_span("interrupted").end()
    assert tracing.force_flush(10.0)
    tracer.start_span("after").end()
    assert tracing.force_flush(10.0)
    assert exporter.names == ["after"]
    assert tracing.stats() == {"ended": 2, "exported": 1, "dropped": 1, "failed": 1, "queued": 0}


def test_force_flush_during_the_last_drain_of_shutdown_is_answered_when_the_drain_ends() -> None:
    gate = threading.Event()
    exporter = Recorder(gate)
    tracing.configure(exporter=exporter, schedule_delay=60.0)
    for i in range(3):
        tracer.start_span(f"s{i}").end()
    stopping = threading.Thread(target=tracing.shutdown, args=(20.0,))
    stopping.start()
    try:
        assert exporter.exporting.wait(10)  # the last drain is under way, and held
        threading.Timer(0.2, gate.set).start()  # the backend answers while the flush waits
        assert tracing.force_flush(timeout=5.0) is True
    finally:
        gate.set()
        stopping.join(20)
    assert exporter.names == ["s0", "s1", "s2"]


class HangsInShutdown(Recorder):
    """An exporter whose shutdown hangs (a vendor client flushing to a collector that is gone)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.shut_down = threading.Event()

    def shutdown(self) -> None:
        self.release.wait(10)
        self.shut_down.set()


@pytest.mark.parametrize("processor", ["batch", "simple"])
def test_a_hanging_exporter_shutdown_is_bounded_where_no_thread_can_be_started(
    monkeypatch: pytest.MonkeyPatch, processor: str,
) -> None:
    exporter = HangsInShutdown()
    tracing.configure(exporter=exporter, processor=processor, schedule_delay=60.0)
    tracer.start_span("queued").end()  # (batch: its worker is running)

    def refuse(self: threading.Thread) -> None:  # Python 3.12+ at interpreter exit
        raise RuntimeError("can't create new thread at interpreter shutdown")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    try:
        # batch: the worker's call did not finish in time; simple: with no thread to bound it,
        # the exporter's shutdown() is not called at all.
        assert tracing.shutdown(timeout=0.5) is False
        assert not exporter.shut_down.is_set()  # returned without waiting for it
        assert exporter.names == ["queued"]  # the drain came first
    finally:
        exporter.release.set()


def test_the_console_exporter_still_prints_at_shutdown_where_no_thread_can_be_started(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import io

    from tracing_api._local import ConsoleExporter

    out = io.StringIO()
    tracing.configure(exporter=ConsoleExporter(stream=out), processor="simple")
    root = tracer.start_span("root-still-open")  # a request still running at exit
    with tracer.span("child", parent=root):
        pass

    def refuse(self: threading.Thread) -> None:  # Python 3.12+ at interpreter exit
        raise RuntimeError("can't create new thread at interpreter shutdown")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    assert tracing.shutdown(timeout=5.0) is True
    assert "child" in out.getvalue()  # the console's waiting spans are printed at shutdown


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
@pytest.mark.parametrize("processor", ["simple", "batch"])
def test_a_forked_child_counts_only_its_own_spans(processor: str, exit_code_within: Any) -> None:
    tracing.configure(exporter="memory", processor=processor)
    for _ in range(5):
        tracer.start_span("parent").end()
    assert tracing.force_flush(10.0)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            tracer.start_span("child").end()
            tracing.force_flush(10.0)
            os.write(write_fd, repr(sorted(tracing.stats().items())).encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        assert exit_code_within(pid, 30) == 0, "forked child deadlocked"
        child = pipe.read()
    expected = {"ended": 1, "exported": 1, "dropped": 0, "failed": 0, "queued": 0}
    assert child == repr(sorted(expected.items()))
    assert tracing.stats()["ended"] == 5  # the parent's books are its own too
