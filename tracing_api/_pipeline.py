"""The configured pipeline: ids, sampling, limits, resource, and the processors spans go to.

One ``Pipeline`` is active at a time (installed by ``configure``); tracers read it on every span,
so a tracer taken at import time follows a later ``configure``.
"""

from __future__ import annotations

import random
from typing import Any, Callable, Collection, Mapping, Optional, Sequence, Tuple

from . import _log
from ._processors import BatchProcessor, SimpleProcessor
from ._span import Limits, NonRecordingSpan, Span
from ._types import Link, SpanContext, SpanKind
from .context import _SPAN, CURRENT, parent_context
from .export import InstrumentationScope, SpanData
from .sampling import Sampler, constant_decision, follows_parent_else_samples

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._span import AnySpan
    from .context import Parent
    from .export import SpanProcessor

_getrandbits = random.getrandbits  # the module's generator is reseeded in forked children
_tuple_new = tuple.__new__
_new_object = object.__new__
_OURS = (BatchProcessor, SimpleProcessor)


def _as_kind(kind: Any) -> SpanKind:
    try:
        return SpanKind(kind)
    except (ValueError, TypeError):
        return SpanKind.INTERNAL


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
        # Read on every attribute set: plain attributes, one lookup each.
        self.max_attributes = limits.attributes
        self.max_value_length = limits.value_length
        self._should_sample = sampler.should_sample
        self._default_sampler = follows_parent_else_samples(sampler)
        self._constant: Optional[bool] = constant_decision(sampler)
        if len(self.processors) == 1 and isinstance(self.processors[0], _OURS):
            self.on_end: Callable[[SpanData], None] = self.processors[0].on_end
        else:  # several, or the application's own, whose errors must not reach span.end()
            self.on_end = self._fan_out

    def _fan_out(self, data: SpanData) -> None:
        for processor in self.processors:
            try:
                processor.on_end(data)
            except Exception:
                _log.warn(f"on_end:{id(processor)}", "span processor %r raised", processor,
                          exc_info=True)

    def start(
        self, scope: InstrumentationScope, name: str, kind: SpanKind,
        attributes: Optional[Mapping[str, object]], links: Optional[Sequence[Link]],
        parent: Parent, start_time: Optional[int],
    ) -> AnySpan:
        """A new span: recording when sampled, else non-recording with a valid context."""
        parent_ctx = _SPAN.get().context if parent is CURRENT else parent_context(parent)
        trace_id = parent_ctx.trace_id
        if trace_id:
            flags = parent_ctx.trace_flags & 0x02  # the random flag travels with the trace id
            sampler_parent: Optional[SpanContext] = parent_ctx
        else:  # a new trace: the whole id is random, so the W3C random flag is set
            trace_id = _getrandbits(128) or 1
            flags = 0x02
            # A remote parent may hold only a sampling decision (B3 "b3: 0"): samplers see it.
            sampler_parent = parent_ctx if parent_ctx.is_remote else None
        if self._default_sampler:  # parent_based(always_on()), decided inline
            sampled = (
                sampler_parent is None or sampler_parent.deferred or sampler_parent.debug
                or sampler_parent.trace_flags & 0x01 == 0x01
            )
        elif self._constant is not None:  # always_on() or always_off()
            sampled = self._constant
        else:
            try:
                sampled = self._should_sample(sampler_parent, trace_id, name, kind, attributes)
            except Exception:
                sampled = False
        context = _tuple_new(SpanContext, (
            trace_id, _getrandbits(64) or 1, flags | 0x01 if sampled else flags,
            parent_ctx.trace_state, False, parent_ctx.debug, False,
        ))
        if type(kind) is not SpanKind:  # a wrong kind is the application's slip, not a crash
            kind = _as_kind(kind)
        if not sampled:
            span = _new_object(NonRecordingSpan)
            span.context = context
            return span
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
            try:
                ok = processor.force_flush(max(0.0, deadline - time.monotonic())) and ok
            except Exception:  # a processor of the application's must not raise into it
                ok = False
        return ok

    def shutdown(self, timeout: float, keep_exporters: Collection[int] = ()) -> bool:
        """Shut every processor down within ``timeout`` seconds in all; the exporters whose
        ``id`` is in ``keep_exporters`` are flushed but not shut down (a new pipeline uses them).
        """
        import time

        deadline = time.monotonic() + timeout
        ok = True
        for processor in self.processors:
            try:
                if id(getattr(processor, "exporter", None)) in keep_exporters:
                    processor.release_exporter = False  # type: ignore[attr-defined]
                ok = processor.shutdown(max(0.0, deadline - time.monotonic())) and ok
            except Exception:
                ok = False
        return ok

