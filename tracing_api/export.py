"""The exporter contract: finished spans as immutable records, and the protocol exporters meet.

Applications choose exporters (``tracing_api.configure``); libraries never do. An exporter is
any object with ``export``, ``force_flush`` and ``shutdown``: ``SpanExporter`` is a
``typing.Protocol``, so a third-party exporter qualifies without importing anything from here.
The pipeline calls ``export`` from one thread at a time (the batch worker, or under the simple
processor's lock); ``shutdown`` may come from any thread, once or more. ``export`` should not
raise: it returns ``ExportResult.FAILURE`` instead (an exception is caught and counted anyway).
"""

from __future__ import annotations

import enum
from typing import Mapping, NamedTuple, Optional, Protocol, Sequence, Tuple, runtime_checkable

from ._types import Attributes, Event, Link, SpanContext, SpanKind, Status


class ExportResult(enum.Enum):
    """What an exporter reports for a batch."""

    SUCCESS = 0
    FAILURE = 1


class InstrumentationScope(NamedTuple):
    """The tracer (usually a module or library) that made a span."""

    name: str
    version: Optional[str] = None


class SpanData(NamedTuple):
    """A finished span: an immutable record handed to exporters.

    Times are nanoseconds since the epoch. ``parent`` is the parent's context (local or remote),
    or None for a root span. ``events`` and ``links`` are tuples, empty when none were added;
    ``dropped_*`` count what the limits refused.
    """

    name: str
    context: SpanContext
    parent: Optional[SpanContext]
    kind: SpanKind
    start_time: int
    end_time: int
    attributes: Attributes
    events: Tuple[Event, ...]
    links: Tuple[Link, ...]
    status: Status
    resource: Mapping[str, object]
    scope: InstrumentationScope
    dropped_attributes: int = 0
    dropped_events: int = 0
    dropped_links: int = 0


@runtime_checkable
class SpanExporter(Protocol):
    """Sends finished spans somewhere. See the module docstring for who calls what."""

    def export(self, spans: Sequence[SpanData]) -> ExportResult:
        """Deliver ``spans``; bounded in time; never raises."""

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


__all__ = [
    "Event",
    "ExportResult",
    "InstrumentationScope",
    "Link",
    "SpanData",
    "SpanExporter",
    "SpanProcessor",
]
