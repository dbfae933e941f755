"""configure() again: what the old pipeline shuts down, and what the new one keeps using."""

from __future__ import annotations

import threading
import time
from typing import Any, Dict, List, Optional, Sequence

import pytest

import tracing_api as tracing
from tracing_api import _tracer
from tracing_api._processors import counts_sum
from tracing_api.export import ExportResult, SpanData

tracer = tracing.get_tracer(__name__)


class SlotProcessor:
    """An application's processor that takes no new attributes (``__slots__``)."""

    __slots__ = ("ended", "shut")

    def __init__(self) -> None:
        self.ended: List[str] = []
        self.shut = 0

    def on_end(self, span: SpanData) -> None:
        if not self.shut:
            self.ended.append(span.name)

    def force_flush(self, timeout: float = 30.0) -> bool:
        return True

    def shutdown(self, timeout: float = 30.0) -> bool:
        self.shut += 1
        return True

    def stats(self) -> Dict[str, int]:
        return {"ended": len(self.ended), "exported": 0, "dropped": 0, "failed": 0, "queued": 0}


class RecordingExporter:
    """An exporter object that remembers what it got and whether it was shut down."""

    def __init__(self) -> None:
        self.names: List[str] = []
        self.shut = False

    def export(self, spans: Sequence[SpanData]) -> ExportResult:
        self.names.extend(s.name for s in spans)
        return ExportResult.SUCCESS

    def force_flush(self, timeout: Optional[float] = None) -> bool:
        return True

    def shutdown(self, timeout: Optional[float] = None) -> None:
        self.shut = True


def test_reconfigure_from_one_processor_object_to_another_shuts_the_old_one_down() -> None:
    first, second = SlotProcessor(), SlotProcessor()
    tracing.configure(processor=first)
    tracing.configure(processor=second)
    assert first.shut == 1
    assert second.shut == 0


class PlainProcessor(SlotProcessor):
    """The same, taking new attributes like most classes."""

    def __init__(self) -> None:
        super().__init__()


@pytest.mark.parametrize("make", [SlotProcessor, PlainProcessor])
def test_reconfigure_with_the_same_processor_object_keeps_it_working(make: Any) -> None:
    kept = make()
    tracing.configure(processor=kept)
    tracing.configure(processor=kept, sampler="always_on")
    with tracer.span("after"):
        pass
    assert kept.shut == 0
    assert kept.ended == ["after"]


def test_reconfigure_from_a_processor_object_to_exporters_shuts_the_processor_down() -> None:
    first = SlotProcessor()
    tracing.configure(processor=first)
    tracing.configure(exporter="memory", processor="simple")
    assert first.shut == 1


def test_reconfigure_with_the_same_exporter_object_leaves_it_open() -> None:
    exporter = RecordingExporter()
    tracing.configure(exporter=exporter, processor="simple")
    tracing.configure(exporter=exporter, processor="simple", sampler="always_on")
    with tracer.span("after"):
        pass
    assert not exporter.shut
    assert exporter.names == ["after"]


def test_reconfigure_to_another_exporter_shuts_the_old_exporter_down() -> None:
    old, new = RecordingExporter(), RecordingExporter()
    tracing.configure(exporter=old, processor="simple")
    tracing.configure(exporter=new, processor="simple")
    assert old.shut
    assert not new.shut


def test_application_processor_holding_a_kept_exporter_is_still_shut_down() -> None:
    """Only the library's own processors are told to leave their exporter open; the
    application's processor gets its ordinary shutdown, untouched otherwise.
    """
    exporter = RecordingExporter()

    class WithExporter(SlotProcessor):
        __slots__ = ("exporter",)

        def __init__(self) -> None:
            super().__init__()
            self.exporter = exporter

    mine = WithExporter()
    tracing.configure(processor=mine)
    tracing.configure(exporter=exporter, processor="simple")
    assert mine.shut == 1
    active: Any = _tracer.active()
    assert active is not None and active.processors[0].exporter is exporter


class OneCallAtATime:
    """An exporter that counts export() calls overlapping another; the first is held until
    ``gate`` is set (a slow round trip to the collector)."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.exporting = threading.Event()
        self.guard = threading.Lock()
        self.in_flight = self.overlaps = 0
        self.names: List[str] = []

    def export(self, spans: Sequence[SpanData]) -> ExportResult:
        with self.guard:
            self.in_flight += 1
            self.overlaps += self.in_flight > 1
        self.exporting.set()
        self.gate.wait(20)
        with self.guard:
            self.in_flight -= 1
            self.names.extend(s.name for s in spans)
        return ExportResult.SUCCESS

    def force_flush(self, timeout: Optional[float] = None) -> bool:
        return True

    def shutdown(self) -> None:
        pass


@pytest.mark.parametrize("old_kind", ["batch", "simple"])
def test_reconfigure_with_the_same_exporter_object_never_exports_from_two_threads_at_once(
    old_kind: str,
) -> None:
    exporter = OneCallAtATime()
    tracing.configure(exporter=exporter, processor=old_kind, schedule_delay=0.01,
                      shutdown_timeout=0.1)
    old: Any = _tracer.active()
    ending = threading.Thread(target=lambda: tracer.start_span("old").end())
    ending.start()  # the old pipeline's export is in flight, and held
    try:
        assert exporter.exporting.wait(10)
        tracing.configure(exporter=exporter, sampler="always_on", schedule_delay=0.01)
        tracer.start_span("new").end()
        tracing.force_flush(timeout=0.5)  # the new worker's turn comes after the old export
    finally:
        exporter.gate.set()
    ending.join(10)
    assert tracing.force_flush(timeout=10)
    deadline = time.monotonic() + 10  # the old worker counts its export once it returns
    while old.processors[0].stats()["queued"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert exporter.overlaps == 0
    assert exporter.names == ["old", "new"]
    counts = counts_sum([old.processors[0].stats(), tracing.stats()])
    assert counts == {"ended": 2, "exported": 2, "dropped": 0, "failed": 0, "queued": 0}
