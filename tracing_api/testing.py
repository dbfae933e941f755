"""For tests of code that traces: an isolated pipeline, and assertions on the finished trace tree.

::

    from tracing_api.testing import capture

    def test_handler_traces_its_query():
        with capture() as spans:
            handle()
        spans.assert_tree('''
            handle
              db.query
        ''')

``capture()`` installs a memory exporter behind the simple processor, samples everything, and
restores the previous configuration afterwards. With pytest, the ``trace_capture`` fixture does the
same (the plugin is registered by the distribution; nothing to import).

For exporter authors: ``check_exporter(make_exporter)`` runs the conformance checks every exporter
must pass (see docs/exporters.md); ``representative_spans()`` and ``span_data_strategy()`` give
spans to encode, and ``RecordingServer`` is a loopback HTTP backend that records requests and can
fail on demand.
"""

from __future__ import annotations

import contextlib
import textwrap
import threading
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from . import _config, _tracer
from ._conformance import check_exporter, representative_spans, span_data_strategy
from ._local import MemoryExporter, format_tree
from ._pipeline import Pipeline
from ._processors import SimpleProcessor, counts_sum
from ._recording_server import RecordingServer, Reply, Request
from ._span import Limits
from ._types import SpanKind, StatusCode
from .export import SpanData, SpanProcessor
from .propagation import Propagator
from .sampling import Sampler, always_on


def _kind(value: Any) -> Any:
    """The attribute type ``value`` stands for (bool before int: True is an int in Python)."""
    return next((t for t in (bool, int, float, str) if isinstance(value, t)), None)


def _same(got: Any, expected: Any) -> bool:
    """Whether an attribute value is the one expected, type included: ``0`` is not ``False``,
    ``200.0`` is not ``200``. Spans keep a sequence as a tuple: the list the code set matches.
    """
    if isinstance(got, (list, tuple)) and isinstance(expected, (list, tuple)):
        return len(got) == len(expected) and all(map(_same, got, expected))
    return bool(_kind(got) is _kind(expected) and got == expected)


class CapturedSpans:
    """The spans finished inside ``capture()``, in the order they ended."""

    def __init__(self, exporter: MemoryExporter, processor: SimpleProcessor) -> None:
        self.exporter = exporter
        self.processor = processor

    @property
    def spans(self) -> List[SpanData]:
        """Every finished span, in the order they ended."""
        return self.exporter.spans

    def __iter__(self) -> Iterator[SpanData]:
        return iter(self.spans)

    def __len__(self) -> int:
        return len(self.spans)

    def __getitem__(self, index: int) -> SpanData:
        return self.spans[index]

    def names(self) -> List[str]:
        """The names of the finished spans, in the order they ended."""
        return [s.name for s in self.spans]

    def find(self, name: str) -> SpanData:
        """The one span called ``name``; AssertionError if there is none or several."""
        found = [s for s in self.spans if s.name == name]
        assert len(found) == 1, f"expected one span {name!r}, found {len(found)}: {self.names()}"
        return found[0]

    def children(self, parent: SpanData) -> List[SpanData]:
        """The direct children of ``parent``, in start order."""
        return sorted(
            (s for s in self.spans if s.parent is not None
             and s.parent.span_id == parent.context.span_id
             and s.context.trace_id == parent.context.trace_id),
            key=lambda s: s.start_time,
        )

    def clear(self) -> None:
        """Forget the spans captured so far."""
        self.exporter.clear()

    def tree(self) -> str:
        """The captured traces drawn as trees (for failure messages)."""
        traces: Dict[int, List[SpanData]] = {}
        for span in self.spans:
            traces.setdefault(span.context.trace_id, []).append(span)
        return "\n".join(format_tree(t) for t in traces.values())

    def outline(self) -> str:
        """Every trace as indented names (two spaces a level), children in start order."""
        ids = {s.context.span_id for s in self.spans}
        roots = [s for s in self.spans if s.parent is None or s.parent.span_id not in ids]
        kids: Dict[Tuple[int, int], List[SpanData]] = {}
        for span in self.spans:
            if span.parent is not None:
                kids.setdefault((span.context.trace_id, span.parent.span_id), []).append(span)
        lines: List[str] = []
        # An explicit stack, not recursion: a trace may nest deeper than Python's call limit.
        # Pushed in reverse so the first child (by start) comes off first.
        stack = [(root, 0) for root in reversed(sorted(roots, key=lambda s: s.start_time))]
        while stack:
            span, depth = stack.pop()
            lines.append("  " * depth + span.name)
            children = sorted(kids.get((span.context.trace_id, span.context.span_id), ()),
                              key=lambda s: s.start_time)
            stack.extend((child, depth + 1) for child in reversed(children))
        return "\n".join(lines)

    def assert_tree(self, expected: str) -> None:
        """Assert the captured traces have exactly the shape ``expected`` draws: one span name a
        line, children indented under their parent, siblings in start order.
        """
        want = textwrap.dedent(expected).strip("\n")
        want = "\n".join(line.rstrip() for line in want.splitlines() if line.strip())
        got = self.outline()
        assert got == want, f"trace tree differs\n--- expected\n{want}\n--- captured\n{got}"

    def assert_span(
        self, name: str, *, kind: Optional[SpanKind] = None,
        attributes: Optional[Mapping[str, Any]] = None, status: Optional[StatusCode] = None,
        parent: Optional[str] = None,
    ) -> SpanData:
        """Assert the one span ``name`` has the given kind, attributes (a subset), status and
        parent (by name); return it. Attribute values compare by type too (``0`` is not
        ``False``, ``200.0`` is not ``200``); a list matches the tuple the span keeps.
        """
        span = self.find(name)
        if kind is not None:
            assert span.kind == kind, f"{name}: kind {span.kind.name}, expected {kind.name}"
        for key, value in (attributes or {}).items():
            assert key in span.attributes, f"{name}: no attribute {key!r} in {dict(span.attributes)}"
            got = span.attributes[key]
            assert _same(got, value), (
                f"{name}: attribute {key!r} is {got!r}, expected {value!r}"
            )
        if status is not None:
            assert span.status.code == status, (
                f"{name}: status {span.status.code.name}, expected {status.name}"
            )
        if parent is not None:
            parents = [s for s in self.spans if span.parent is not None
                       and s.context.span_id == span.parent.span_id]
            assert parents, f"{name}: no parent span, expected {parent!r}"
            assert parents[0].name == parent, (
                f"{name}: parent is {parents[0].name if parents else None!r}, expected {parent!r}"
            )
        return span


class CaptureTap:
    """Passes spans to a capture's processor, from one pipeline (``testing.capture()``).

    Each pipeline gets a tap of its own, so shutting a pipeline down (reconfiguring,
    ``shutdown()``, the end of the block) closes its tap alone, and the capture goes on with the
    next pipeline. Only the tap of the capture's own pipeline reports counts in ``stats()``
    (the capture's, plus the spans it dropped once shut down); the taps in pipelines the
    application configured count nothing, so ``stats()`` stays about its own exporters.
    """

    def __init__(self, target: SpanProcessor, *, counted: bool = False) -> None:
        self.target = target
        self.counted = counted
        self.closed = False
        self.dropped = 0
        self._lock = threading.Lock()

    def on_end(self, span: Any) -> None:
        """Hand ``span`` to the capture, unless this tap's pipeline was shut down."""
        if self.closed:
            with self._lock:
                self.dropped += 1
        else:
            self.target.on_end(span)

    def force_flush(self, timeout: float = 30.0) -> bool:
        """Flush the capture's processor."""
        return bool(self.target.force_flush(timeout))

    def shutdown(self, timeout: float = 30.0) -> bool:
        """Stop passing spans on; the capture's processor stays open for the next pipeline."""
        self.closed = True
        return True

    def stats(self) -> Dict[str, int]:
        """The capture's counts for its own pipeline; none for one the application built."""
        if not self.counted:
            return counts_sum([])
        return counts_sum([self.target.stats(), {"ended": self.dropped, "dropped": self.dropped}])


@contextlib.contextmanager
def capture(
    *, sampler: Optional[Sampler] = None, propagators: Union[str, Sequence[Any], None] = None,
    resource: Optional[Mapping[str, Any]] = None, limits: Optional[Limits] = None,
) -> Iterator[CapturedSpans]:
    """An isolated pipeline for the ``with`` block: every span finished in it is kept in memory.

    When the code under test calls ``configure()`` inside the block (an application factory),
    the pipeline it configures sends every span both to its own exporters and to this capture,
    with the sampler it configured. With nested captures, spans go to the innermost one only.

    The previous configuration (pipeline, propagators, shutdown timeout) is restored afterwards,
    untouched: a pipeline configured inside the block is shut down on the way out.
    """
    exporter = MemoryExporter(max_spans=1_000_000)
    processor = SimpleProcessor(exporter)
    # Behind a tap, so that shutting the pipeline down (the code under test reconfiguring, say)
    # leaves the capture's processor open for the pipelines configured after it.
    tap = CaptureTap(processor, counted=True)
    attributes: Dict[str, object] = {"service.name": "test"}
    attributes.update(resource or {})
    pipeline = Pipeline(sampler or always_on(), [tap], attributes, limits or Limits())
    new_propagator: Optional[Propagator] = (
        None if propagators is None else _config.make_propagator(propagators)
    )
    # Saved whatever the block does: the code under test may call configure() itself.
    saved = _config.saved_settings()
    previous_pipeline = _tracer.install(pipeline)
    if new_propagator is not None:
        _config.set_propagator(new_propagator)
    def make_tap() -> CaptureTap:  # one per pipeline configured inside the block
        return CaptureTap(processor)

    _config.push_capture(make_tap)
    try:
        yield CapturedSpans(exporter, processor)
    finally:
        _config.pop_capture(make_tap)
        timeout = _config.saved_settings()[1]
        left = _tracer.install(previous_pipeline)
        _config.restore_settings(saved)
        if left is not None and left is not pipeline and left is not previous_pipeline:
            # A pipeline configured inside the block: stopped (its worker thread too), leaving
            # what the restored pipeline still uses open.
            left.shutdown(timeout, successor=previous_pipeline)


__all__ = [
    "CapturedSpans",
    "RecordingServer",
    "Reply",
    "Request",
    "capture",
    "check_exporter",
    "representative_spans",
    "span_data_strategy",
]
