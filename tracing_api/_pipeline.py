"""The configured pipeline: ids, sampling, limits, resource, and the processors spans go to.

One ``Pipeline`` is active at a time (installed by ``configure``); tracers read it on every span,
so a tracer taken at import time follows a later ``configure``.
"""

from __future__ import annotations

import random
from typing import Any, Callable, Mapping, Optional, Sequence, Tuple

from ._span import AnySpan, Limits, NonRecordingSpan, Span
from ._types import INVALID_SPAN_CONTEXT, Link, SpanContext, SpanKind
from .context import _SPAN, Context
from .export import InstrumentationScope, SpanData, SpanProcessor
from .sampling import Sampler

_getrandbits = random.getrandbits  # the module's generator is reseeded in forked children
_tuple_new = tuple.__new__


class _Current:
    """The default ``parent``: whatever span is current."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "CURRENT"


CURRENT: Any = _Current()

Parent = Any  # Context, a span, a SpanContext, None (a new trace) or CURRENT


def parent_context(parent: Parent) -> SpanContext:
    """The span context a ``parent=`` argument stands for (invalid for a new trace)."""
    if parent is CURRENT:
        return _SPAN.get().context
    if parent is None:
        return INVALID_SPAN_CONTEXT
    if isinstance(parent, SpanContext):
        return parent
    if isinstance(parent, Context):
        return parent.span.context
    context = getattr(parent, "context", None)
    return context if isinstance(context, SpanContext) else INVALID_SPAN_CONTEXT


class Pipeline:
    """Everything ``configure`` decided, in one immutable-by-convention object."""

    def __init__(
        self, sampler: Sampler, processors: Sequence[SpanProcessor], resource: Mapping[str, object],
        limits: Limits,
    ) -> None:
        self.sampler = sampler
        self.processors: Tuple[SpanProcessor, ...] = tuple(processors)
        self.resource = resource
        self.limits = limits
        self._should_sample = sampler.should_sample
        if len(self.processors) == 1:
            self.on_end: Callable[[SpanData], None] = self.processors[0].on_end
        else:
            self.on_end = self._fan_out

    def _fan_out(self, data: SpanData) -> None:
        for processor in self.processors:
            processor.on_end(data)

    def start(
        self, scope: InstrumentationScope, name: str, kind: SpanKind,
        attributes: Optional[Mapping[str, object]], links: Optional[Sequence[Link]],
        parent: Parent, start_time: Optional[int],
    ) -> AnySpan:
        """A new span: recording when sampled, else non-recording with a valid context."""
        if parent is CURRENT:
            parent_ctx = _SPAN.get().context
        else:
            parent_ctx = parent_context(parent)
        trace_id = parent_ctx.trace_id
        if trace_id:
            flags = parent_ctx.trace_flags & 0x02
        else:  # a new trace: the whole id is random, so the W3C random flag is set
            trace_id = _getrandbits(128) or 1
            flags = 0x02
        # A remote parent may hold only a sampling decision (invalid ids): samplers see it.
        sampler_parent = parent_ctx if trace_id == parent_ctx.trace_id or parent_ctx.is_remote else None
        try:
            sampled = self._should_sample(sampler_parent, trace_id, name, kind, attributes)
        except Exception:
            sampled = False
        span_id = _getrandbits(64) or 1
        if sampled:
            flags |= 0x01
        context = _tuple_new(SpanContext, (
            trace_id, span_id, flags, parent_ctx.trace_state, False, parent_ctx.debug, False,
        ))
        if not sampled:
            return NonRecordingSpan(context)
        return Span(
            name, context, parent_ctx if parent_ctx.span_id and parent_ctx.trace_id else None,
            kind, self, scope, attributes, links, start_time,
        )

    def force_flush(self, timeout: float) -> bool:
        """Flush every processor within ``timeout`` seconds in all."""
        import time

        deadline = time.monotonic() + timeout
        ok = True
        for processor in self.processors:
            ok = processor.force_flush(max(0.0, deadline - time.monotonic())) and ok
        return ok

    def shutdown(self, timeout: float) -> bool:
        """Shut every processor down within ``timeout`` seconds in all."""
        import time

        deadline = time.monotonic() + timeout
        ok = True
        for processor in self.processors:
            try:
                ok = processor.shutdown(max(0.0, deadline - time.monotonic())) and ok
            except Exception:
                ok = False
        return ok

