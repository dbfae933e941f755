"""The exporter and processor protocols (``tracing_api.export.SpanExporter``, ``SpanProcessor``).

Kept apart from ``export`` because defining a ``typing.Protocol`` needs ``typing``, which the core
does not import until something asks for these.
"""

from __future__ import annotations

from typing import Mapping, Protocol, Sequence, Union, runtime_checkable

from .export import ExportResult, PartialSuccess, SpanData


@runtime_checkable
class SpanExporter(Protocol):
    """Sends finished spans somewhere. ``tracing_api.export`` says who calls what, and when."""

    def export(self, spans: Sequence[SpanData]) -> Union[ExportResult, PartialSuccess]:
        """Deliver ``spans``; bounded in time; never raises. ``PartialSuccess(n)`` when only
        ``n`` of them were delivered."""

    def force_flush(self, timeout: float = 30.0) -> bool:
        """Deliver anything buffered within ``timeout`` seconds; True when all went out."""

    def shutdown(self) -> None:
        """Release resources. Idempotent and bounded in time; later exports return FAILURE."""


@runtime_checkable
class SpanProcessor(Protocol):
    """Receives every finished, sampled span; the built-ins are ``simple`` and ``batch``."""

    def on_end(self, span: SpanData) -> None:
        """Take a finished span. Called on the application's thread: must be cheap."""

    def force_flush(self, timeout: float = 30.0) -> bool:
        """Export everything taken so far within ``timeout`` seconds."""

    def shutdown(self, timeout: float = 30.0) -> bool:
        """Flush and stop within ``timeout`` seconds; later spans are dropped and counted."""

    def stats(self) -> Mapping[str, int]:
        """Counts of spans: ``ended``, ``exported``, ``dropped``, ``failed``, ``queued``."""
