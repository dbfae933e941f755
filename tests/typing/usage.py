"""What the three audiences write, checked by ``mypy --strict`` (and imported by a test).

Library authors take a tracer and start spans; application authors configure; exporter authors
implement the protocol without importing a base class.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import AsyncIterator, Iterator, Sequence

import tracing_api as tracing
from tracing_api import context, sampling
from tracing_api.export import ExportResult, SpanData, SpanExporter
from tracing_api.testing import capture

# --- a library author -------------------------------------------------------------------------
tracer = tracing.get_tracer(__name__, "1.0")


def query(sql: str) -> int:
    with tracer.span("db.query", kind=tracing.SpanKind.CLIENT,
                     attributes={"db.system": "postgresql"}) as span:
        span.set_attribute("db.statement", sql)
        span.add_event("retry", {"attempt": 2})
        return 3


@tracer.span("handle")
def handle(n: int) -> int:
    return query("select 1") + n


@tracer.span("fetch")
async def fetch() -> str:
    await asyncio.sleep(0)
    return "ok"


@tracer.span("rows")
def rows() -> Iterator[int]:
    yield 1


@tracer.span("stream")
async def stream() -> AsyncIterator[int]:
    yield 1


def manual(parent: tracing.Context) -> None:
    span = tracer.start_span("manual", parent=parent)
    with tracing.use_span(span, end_on_exit=True):
        try:
            raise ValueError("bad")
        except ValueError as exc:
            span.record_exception(exc)
            span.set_status(tracing.StatusCode.ERROR, "bad")
    current: tracing.SpanContext = tracing.current_span().context
    assert current.trace_id >= 0


# --- an application author --------------------------------------------------------------------
def start_application() -> None:
    tracing.configure(exporter="console", service_name="greeter",
                      sampler=sampling.parent_based(sampling.ratio(0.25)))
    headers: dict[str, str] = {}
    tracing.inject(headers)
    incoming = tracing.extract(headers)
    with tracing.use_context(incoming), ThreadPoolExecutor() as pool:
        context.wrap_executor(pool).submit(handle, 1).result()
    counts: dict[str, int] = tracing.stats()
    assert counts["ended"] >= 0
    tracing.shutdown(timeout=5.0)


# --- an exporter author -----------------------------------------------------------------------
class PrintExporter:
    """Satisfies SpanExporter structurally: no base class needed."""

    def export(self, spans: Sequence[SpanData]) -> ExportResult:
        for span in spans:
            print(span.name, span.context.trace_id_hex, span.end_time - span.start_time)
        return ExportResult.SUCCESS

    def force_flush(self, timeout: float = 30.0) -> bool:
        return True

    def shutdown(self) -> None:
        pass


def use_my_exporter() -> None:
    exporter: SpanExporter = PrintExporter()
    tracing.configure(exporter=exporter, processor="simple")


def test_my_code() -> None:
    with capture() as spans:
        handle(1)
    spans.assert_tree("""
        handle
          db.query
    """)
