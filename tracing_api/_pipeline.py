"""The configured pipeline: sampling, limits, resource, and the processors spans go to.

One ``Pipeline`` is active at a time (installed by ``configure``); tracers read it on every span,
so a tracer taken at import time follows a later ``configure``.
"""

from __future__ import annotations

from typing import Callable, Mapping, Optional, Sequence, Tuple

from . import _log
from ._processors import BatchProcessor, SimpleProcessor
from ._span import Limits
from .export import SpanData
from .sampling import Sampler, constant_decision, follows_parent_else_samples

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .export import SpanProcessor

_OURS = (BatchProcessor, SimpleProcessor)


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
        # What ``Tracer.span`` reads to decide: a constant decision (always_on/always_off), or
        # parent_based(always_on()) decided inline, or else a call of the sampler.
        self.constant: Optional[bool] = constant_decision(sampler)
        self.parent_based_always_on = follows_parent_else_samples(sampler)
        self.should_sample = sampler.should_sample
        if len(self.processors) == 1 and isinstance(self.processors[0], _OURS):
            self.on_end: Callable[[SpanData], None] = self.processors[0].on_end
        else:  # several, or the application's own, whose errors must not reach span.end()
            self.on_end = self._fan_out
        self._deliver = self.on_end  # to this pipeline's own processors, even once replaced
        self.successor: Optional[Pipeline] = None  # the pipeline that replaced this one

    def _forward(self, data: SpanData) -> None:
        # Walked in a loop, not by calls: a span may outlive any number of reconfigurations.
        target = self
        for _ in range(10_000):  # a bound, should the chain ever loop
            following = target.successor
            if following is None:
                break
            target = following
        target._deliver(data)

    def _fan_out(self, data: SpanData) -> None:
        interrupt: Optional[BaseException] = None
        for processor in self.processors:
            try:
                processor.on_end(data)
            except Exception:
                try:  # logging needs stack too: near the recursion limit it raises in turn
                    _log.warn(f"on_end:{id(processor)}", "span processor %r raised", processor,
                              exc_info=True)
                except Exception:
                    pass
            except BaseException as error:  # Ctrl-C in one exporter's export: the application's,
                if interrupt is None:  # once every other processor has had (and counted) the span
                    interrupt = error
        if interrupt is not None:
            try:
                raise interrupt
            finally:
                interrupt = None  # no cycle through this frame

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

    def shutdown(self, timeout: float, successor: Optional[Pipeline] = None) -> bool:
        """Shut every processor down within ``timeout`` seconds in all.

        What ``successor`` (the pipeline replacing this one) still uses is left working: a
        processor in it is not shut down at all, and an exporter one of its processors sends to
        is flushed but not shut down.
        """
        import time

        kept_processors = set()
        kept_exporters = set()
        for processor in successor.processors if successor is not None else ():
            kept_processors.add(id(processor))
            exporter = getattr(processor, "exporter", None)
            if exporter is not None:
                kept_exporters.add(id(exporter))
        deadline = time.monotonic() + timeout
        if successor is not None:
            # A span started here and ending from now on goes to the pipeline that replaced
            # this one (or the one that replaced that, and so on), not to a closed queue.
            self.successor = successor
            self.on_end = self._forward
        leaving = [p for p in self.processors if id(p) not in kept_processors]
        for processor in leaving:
            # Only ours know ``release_exporter``; an application's processor is left as is.
            if isinstance(processor, _OURS) and id(processor.exporter) in kept_exporters:
                processor.release_exporter = False
            if isinstance(processor, BatchProcessor):
                processor.begin_shutdown()  # every last drain starts now, side by side
        ok = True
        for processor in leaving:
            try:
                ok = processor.shutdown(max(0.0, deadline - time.monotonic())) and ok
            except Exception:
                ok = False
        return ok
