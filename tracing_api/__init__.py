"""tracing-api: distributed tracing for Python.

Libraries take a tracer and start spans; they cost next to nothing until an application calls
``configure()``::

    import tracing_api as tracing

    tracer = tracing.get_tracer(__name__)

    with tracer.span("db.query", kind=tracing.SpanKind.CLIENT) as span:
        span.set_attribute("db.rows", 3)

Applications choose where spans go, once, at startup: ``tracing.configure(exporter="console")``.
"""

from __future__ import annotations

from . import context, export
from ._span import INVALID_SPAN, Limits, NonRecordingSpan, Span
from ._tracer import SpanScope, Tracer, enabled, get_tracer
from ._types import (
    INVALID_SPAN_CONTEXT,
    ConfigurationError,
    Event,
    Link,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceState,
)
from ._version import __version__
from .context import Context, current_context, current_span, use_context, use_span
from .export import ExportResult, PartialSuccess, SpanData

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from . import propagation, sampling
    from ._config import configure, force_flush, shutdown, stats
    from ._protocols import SpanExporter, SpanProcessor
    from .propagation import Propagator, extract, inject

# What only applications and propagating code need loads on first use, so that a library's
# `import tracing_api` stays cheap (see docs/performance.md).
_LAZY = {
    "configure": "._config",
    "force_flush": "._config",
    "shutdown": "._config",
    "stats": "._config",
    "extract": ".propagation",
    "inject": ".propagation",
    "Propagator": ".propagation",
    "SpanExporter": "._protocols",
    "SpanProcessor": "._protocols",
    "propagation": None,
    "sampling": None,
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'tracing_api' has no attribute {name!r}")
    import importlib

    where = _LAZY[name]
    if where is None:
        value: Any = importlib.import_module(f".{name}", __name__)
    else:
        value = getattr(importlib.import_module(where, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "INVALID_SPAN",
    "INVALID_SPAN_CONTEXT",
    "ConfigurationError",
    "Context",
    "Event",
    "ExportResult",
    "Limits",
    "Link",
    "NonRecordingSpan",
    "PartialSuccess",
    "Propagator",
    "Span",
    "SpanContext",
    "SpanData",
    "SpanExporter",
    "SpanKind",
    "SpanProcessor",
    "SpanScope",
    "Status",
    "StatusCode",
    "TraceState",
    "Tracer",
    "__version__",
    "configure",
    "context",
    "current_context",
    "current_span",
    "enabled",
    "export",
    "extract",
    "force_flush",
    "get_tracer",
    "inject",
    "propagation",
    "sampling",
    "shutdown",
    "stats",
    "use_context",
    "use_span",
]
