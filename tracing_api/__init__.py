"""tracing-api: distributed tracing for Python.

Libraries take a tracer and start spans; they cost next to nothing until an application calls
``configure()``::

    import tracing_api as tracing

    tracer = tracing.get_tracer(__name__)

    with tracer.span("db.query", kind=tracing.SpanKind.CLIENT) as span:
        span.set_attribute("db.rows", 3)

Applications choose where spans go, once, at startup: ``tracing.configure(exporter="console")``.
"""

from . import context, export, propagation, sampling
from ._config import __version__, configure, force_flush, shutdown, stats
from ._span import INVALID_SPAN, Limits, NonRecordingSpan, Span
from ._tracer import SpanScope, Tracer, get_tracer
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
from .context import Context, current_context, current_span, use_context, use_span
from .export import ExportResult, SpanData, SpanExporter, SpanProcessor
from .propagation import Propagator, extract, inject

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
