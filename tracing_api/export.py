"""The exporter contract: finished spans as immutable records, and the protocol exporters meet.

Applications choose exporters (``tracing_api.configure``); libraries never do. An exporter is
any object with ``export``, ``force_flush`` and ``shutdown``: ``SpanExporter`` is a
``typing.Protocol``, so a third-party exporter qualifies without importing anything from here.
The pipeline calls ``export`` from one thread at a time (the batch worker, or under the simple
processor's lock); ``shutdown`` may come from any thread, once or more. ``export`` should not
raise: it returns ``ExportResult.FAILURE`` instead (an exception is caught and counted anyway),
or ``PartialSuccess(n)`` when only ``n`` spans of the batch were delivered.
"""

from __future__ import annotations

import enum
from collections import namedtuple

from ._types import Event, Link

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Mapping, NamedTuple, Optional, Tuple

    from ._protocols import SpanExporter, SpanProcessor
    from ._types import Attributes, SpanContext, SpanKind, Status

    class _ScopeFields(NamedTuple):
        name: str
        version: Optional[str] = None

    class _SpanDataFields(NamedTuple):
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

else:
    _ScopeFields = namedtuple("InstrumentationScope", "name version", defaults=(None,))
    _SpanDataFields = namedtuple(
        "SpanData",
        "name context parent kind start_time end_time attributes events links status resource "
        "scope dropped_attributes dropped_events dropped_links",
        defaults=(0, 0, 0),
    )


class ExportResult(enum.Enum):
    """What an exporter reports for a batch."""

    SUCCESS = 0
    FAILURE = 1


class PartialSuccess:
    """What ``export`` returns when only ``exported`` spans of the batch were delivered (the
    backend refused some, or some requests of the batch failed for good): the pipeline counts
    that many as exported and the rest of the batch as failed. Out-of-range counts are clamped.
    """

    __slots__ = ("exported",)

    def __init__(self, exported: int) -> None:
        self.exported = exported

    def __eq__(self, other: object) -> bool:
        return type(other) is PartialSuccess and other.exported == self.exported

    def __hash__(self) -> int:
        return hash((PartialSuccess, self.exported))

    def __repr__(self) -> str:
        return f"PartialSuccess(exported={self.exported!r})"


class InstrumentationScope(_ScopeFields):
    """The tracer (usually a module or library) that made a span."""

    __slots__ = ()


class SpanData(_SpanDataFields):
    """A finished span: an immutable record handed to exporters.

    Times are nanoseconds since the epoch. ``parent`` is the parent's context (local or remote),
    or None for a root span. ``events`` and ``links`` are tuples, empty when none were added;
    ``dropped_*`` count what the limits refused.
    """

    __slots__ = ()


def __getattr__(name: str) -> Any:
    # The protocols need ``typing``: they load when first asked for, not with this module.
    if name in ("SpanExporter", "SpanProcessor"):
        from . import _protocols

        value = getattr(_protocols, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Event",
    "ExportResult",
    "InstrumentationScope",
    "Link",
    "PartialSuccess",
    "SpanData",
    "SpanExporter",
    "SpanProcessor",
]
