"""The built-in exporters: ``console`` (a readable tree per trace), ``jsonl`` and ``memory``.

Each is registered as an entry point of the core distribution, exactly as third-party exporters
are; the names here are the factories those entry points point at.
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading
from collections import OrderedDict
from typing import IO, Any, Dict, List, Optional, Sequence, TextIO, Tuple

from ._types import SpanKind, StatusCode
from .export import ExportResult, SpanData


def span_to_dict(span: SpanData) -> Dict[str, Any]:
    """A finished span as plain JSON-ready data (ids in lower-case hex, times in ns)."""
    context = span.context
    return {
        "trace_id": context.trace_id_hex,
        "span_id": context.span_id_hex,
        "parent_span_id": span.parent.span_id_hex if span.parent else None,
        "name": span.name,
        "kind": span.kind.name,
        "start_time_unix_nano": span.start_time,
        "end_time_unix_nano": span.end_time,
        "attributes": dict(span.attributes),
        "events": [
            {"name": e.name, "time_unix_nano": e.timestamp, "attributes": dict(e.attributes)}
            for e in span.events
        ],
        "links": [
            {"trace_id": link.context.trace_id_hex, "span_id": link.context.span_id_hex,
             "attributes": dict(link.attributes)}
            for link in span.links
        ],
        "status": {"code": span.status.code.name, "description": span.status.description},
        "resource": dict(span.resource),
        "scope": {"name": span.scope.name, "version": span.scope.version},
        "sampled": context.sampled,
        "dropped": {"attributes": span.dropped_attributes, "events": span.dropped_events,
                    "links": span.dropped_links},
    }


def _json_lines(records: Sequence[Dict[str, Any]], ensure_ascii: bool) -> str:
    """One strict JSON object per line: NaN and the infinities become the strings "NaN",
    "Infinity" and "-Infinity" (bare, they are not JSON, and strict readers refuse the line)."""
    lines = []
    for record in records:
        try:
            line = json.dumps(record, ensure_ascii=ensure_ascii, allow_nan=False, default=str)
        except ValueError:
            line = json.dumps(_finite(record), ensure_ascii=ensure_ascii, default=str)
        lines.append(line + "\n")
    return "".join(lines)


def _finite(value: Any) -> Any:
    """``value`` with every float that is not finite, at any depth, as JSON's usual string."""
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


class _Closable:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._closed = False

    def force_flush(self, timeout: float = 30.0) -> bool:
        """Nothing is buffered."""
        return True

    def shutdown(self) -> None:
        """Later exports fail."""
        self._closed = True


class MemoryExporter(_Closable):
    """Keeps finished spans in a list, for tests (at most ``max_spans``; older ones go first)."""

    def __init__(self, max_spans: int = 100_000) -> None:
        super().__init__()
        self._spans: List[SpanData] = []
        self._max = max_spans

    def export(self, spans: Sequence[SpanData]) -> ExportResult:
        """Keep ``spans``."""
        if self._closed:
            return ExportResult.FAILURE
        with self._lock:
            self._spans.extend(spans)
            if len(self._spans) > self._max:
                del self._spans[: len(self._spans) - self._max]
        return ExportResult.SUCCESS

    @property
    def spans(self) -> List[SpanData]:
        """A copy of the spans kept, in the order they ended."""
        with self._lock:
            return list(self._spans)

    def clear(self) -> None:
        """Forget every span kept."""
        with self._lock:
            self._spans.clear()


class JsonLinesExporter(_Closable):
    """Writes one JSON object per span and line to ``path`` (``-`` for standard output)."""

    def __init__(self, path: str = "spans.jsonl") -> None:
        super().__init__()
        self.path = path
        self._file: Optional[IO[str]] = None

    def export(self, spans: Sequence[SpanData]) -> ExportResult:
        """Append ``spans``, one line each."""
        if self._closed:
            return ExportResult.FAILURE
        records = [span_to_dict(s) for s in spans]
        try:
            with self._lock:
                stream: Optional[IO[str]]
                if self.path == "-":
                    # The standard output of now: redirect_stdout and test runners swap it, and
                    # may close the one they swap out.
                    stream = sys.stdout
                    if stream is None:  # no console at all (pythonw)
                        return ExportResult.FAILURE
                else:
                    if self._file is None:
                        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
                    stream = self._file
                try:
                    stream.write(_json_lines(records, ensure_ascii=False))
                except UnicodeEncodeError:
                    # A lone surrogate in a string, or a stream that is not UTF-8: JSON's own
                    # \u escapes are ASCII, which every stream takes. (A text stream encodes a
                    # write whole before writing any of it.)
                    stream.write(_json_lines(records, ensure_ascii=True))
                stream.flush()
        except (OSError, ValueError):  # ValueError: a closed stream
            return ExportResult.FAILURE
        return ExportResult.SUCCESS

    def shutdown(self) -> None:
        """Close the file."""
        with self._lock:
            self._closed = True
            if self._file is not None:
                self._file.close()
            self._file = None


_KIND_LABEL = {SpanKind.INTERNAL: "", SpanKind.SERVER: " [server]", SpanKind.CLIENT: " [client]",
               SpanKind.PRODUCER: " [producer]", SpanKind.CONSUMER: " [consumer]"}


def format_tree(spans: Sequence[SpanData]) -> str:
    """The spans of one trace as an indented tree with durations, children in start order."""
    by_id = {s.context.span_id: s for s in spans}
    children: Dict[Optional[int], List[SpanData]] = {}
    for span in spans:
        parent = span.parent.span_id if span.parent and span.parent.span_id in by_id else None
        children.setdefault(parent, []).append(span)
    first = spans[0]
    service = first.resource.get("service.name", "")
    lines = [f"trace {first.context.trace_id_hex}" + (f" ({service})" if service else "")]

    def kids(parent: Optional[int], prefix: str) -> List[Tuple[SpanData, bool, str]]:
        found = sorted(children.pop(parent, []), key=lambda s: s.start_time)
        return [(span, i == len(found) - 1, prefix) for i, span in enumerate(found)]

    # Depth first with a stack of its own: a trace may be deeper than Python's recursion limit.
    # (Popping children's lists also stops a cycle of hand-made parent ids.)
    stack = kids(None, "")[::-1]
    while stack:
        span, last, prefix = stack.pop()
        ms = (span.end_time - span.start_time) / 1e6
        status = "  ERROR" if span.status.code is StatusCode.ERROR else ""
        if span.status.description:
            status += f": {span.status.description}"
        lines.append(
            f"{prefix}{'└─ ' if last else '├─ '}{span.name}{_KIND_LABEL.get(span.kind, '')}"
            f"  {ms:.2f} ms{status}"
        )
        stack.extend(kids(span.context.span_id, prefix + ("   " if last else "│  "))[::-1])
    return "\n".join(lines)


class ConsoleExporter(_Closable):
    """Prints each trace as a tree once its local root span ends (to standard error by default).

    Spans wait for their local root; at most ``max_pending`` of them, oldest traces printed first
    when the limit is reached, and everything left is printed at shutdown.
    """

    def __init__(self, stream: Optional[TextIO] = None, max_pending: int = 10_000) -> None:
        super().__init__()
        self._stream = stream
        self._pending: OrderedDict[int, List[SpanData]] = OrderedDict()
        self._count = 0
        self._max = max_pending

    def _write(self, text: str) -> None:
        stream = self._stream if self._stream is not None else sys.stderr
        try:
            stream.write(text + "\n")
        except UnicodeEncodeError:  # a name the stream cannot encode (a lone surrogate, say)
            encoding = getattr(stream, "encoding", None) or "utf-8"
            stream.write((text + "\n").encode(encoding, "backslashreplace").decode(encoding))
        stream.flush()

    def _write_all(self, traces: List[List[SpanData]]) -> bool:
        """Print ``traces``, each on its own: one that fails does not cost the others."""
        ok = True
        for trace in traces:
            try:
                self._write(format_tree(trace))
            except Exception:  # a closed stream, or a hand-made record format_tree cannot read
                ok = False
        return ok

    def export(self, spans: Sequence[SpanData]) -> ExportResult:
        """Collect ``spans``; print every trace whose local root is among them."""
        if self._closed:
            return ExportResult.FAILURE
        done: List[List[SpanData]] = []
        with self._lock:
            roots = []
            for span in spans:
                self._pending.setdefault(span.context.trace_id, []).append(span)
                self._count += 1
                if span.parent is None or span.parent.is_remote:
                    roots.append(span.context.trace_id)
            # After the whole batch: a trace whose hops all ran in this process has several local
            # roots (one per remote parent) and is printed once, as one tree.
            for trace_id in dict.fromkeys(roots):
                trace = self._pending.pop(trace_id)
                self._count -= len(trace)
                done.append(trace)
            while self._count > self._max and self._pending:
                _, oldest = self._pending.popitem(last=False)
                self._count -= len(oldest)
                done.append(oldest)
        return ExportResult.SUCCESS if self._write_all(done) else ExportResult.FAILURE

    def shutdown(self) -> None:
        """Print what is still waiting for its root."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            rest = list(self._pending.values())
            self._pending.clear()
        self._write_all(rest)


def console(stream: Optional[TextIO] = None, max_pending: int = 10_000) -> ConsoleExporter:
    """The ``console`` exporter."""
    return ConsoleExporter(stream=stream, max_pending=max_pending)


def jsonl(path: Optional[str] = None) -> JsonLinesExporter:
    """The ``jsonl`` exporter: ``path`` defaults to ``TRACING_JSONL_PATH`` or ``spans.jsonl``."""
    return JsonLinesExporter(path or os.environ.get("TRACING_JSONL_PATH") or "spans.jsonl")


def memory(max_spans: int = 100_000) -> MemoryExporter:
    """The ``memory`` exporter."""
    return MemoryExporter(max_spans=max_spans)
