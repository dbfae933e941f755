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
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Union

from . import _config, _tracer
from ._conformance import check_exporter, representative_spans, span_data_strategy
from ._local import MemoryExporter, format_tree
from ._pipeline import Pipeline
from ._processors import SimpleProcessor
from ._recording_server import RecordingServer, Reply, Request
from ._span import Limits
from ._types import SpanKind, StatusCode
from .export import SpanData
from .propagation import Propagator
from .sampling import Sampler, always_on


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
        lines: List[str] = []

        def walk(span: SpanData, depth: int) -> None:
            lines.append("  " * depth + span.name)
            for child in self.children(span):
                walk(child, depth + 1)

        for root in sorted(roots, key=lambda s: s.start_time):
            walk(root, 0)
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
        parent (by name); return it.
        """
        span = self.find(name)
        if kind is not None:
            assert span.kind == kind, f"{name}: kind {span.kind.name}, expected {kind.name}"
        for key, value in (attributes or {}).items():
            assert key in span.attributes, f"{name}: no attribute {key!r} in {dict(span.attributes)}"
            assert span.attributes[key] == value, (
                f"{name}: attribute {key!r} is {span.attributes[key]!r}, expected {value!r}"
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


@contextlib.contextmanager
def capture(
    *, sampler: Optional[Sampler] = None, propagators: Union[str, Sequence[Any], None] = None,
    resource: Optional[Mapping[str, Any]] = None, limits: Optional[Limits] = None,
) -> Iterator[CapturedSpans]:
    """An isolated pipeline for the ``with`` block: every span finished in it is kept in memory.

    The previous configuration (pipeline, propagators, shutdown timeout) is restored afterwards,
    untouched, even when the code under test calls ``configure()``: the pipeline it configured
    is shut down on the way out.
    """
    exporter = MemoryExporter(max_spans=1_000_000)
    processor = SimpleProcessor(exporter)
    attributes: Dict[str, object] = {"service.name": "test"}
    attributes.update(resource or {})
    pipeline = Pipeline(sampler or always_on(), [processor], attributes, limits or Limits())
    new_propagator: Optional[Propagator] = (
        None if propagators is None else _config.make_propagator(propagators)
    )
    # Saved whatever the block does: the code under test may call configure() itself.
    saved = _config.saved_settings()
    previous_pipeline = _tracer.install(pipeline)
    if new_propagator is not None:
        _config.set_propagator(new_propagator)
    try:
        yield CapturedSpans(exporter, processor)
    finally:
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
