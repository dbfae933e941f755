"""An example exporter: one line of text per span, POSTed to an HTTP endpoint.

``trace_id span_id parent_id duration_us name`` per line; a minimal but complete exporter that
reuses the core's delivery rules (timeouts, retries, Retry-After, bounded shutdown, counts).
"""

from __future__ import annotations

import os
from typing import Optional, Sequence

from tracing_api import delivery
from tracing_api.export import SpanData


class LinesExporter(delivery.HttpExporter):
    """POSTs ``text/plain`` lines to ``endpoint`` (default ``TRACING_LINES_ENDPOINT`` or
    ``http://localhost:8000/spans``); ``timeout`` in seconds.
    """

    content_type = "text/plain; charset=utf-8"

    def __init__(self, endpoint: Optional[str] = None, *, timeout: float = 5.0,
                 retry: delivery.RetryPolicy = delivery.DEFAULT_RETRY) -> None:
        url = endpoint or os.environ.get("TRACING_LINES_ENDPOINT", "http://localhost:8000/spans")
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"endpoint: expected an http:// or https:// URL, got {url!r}")
        super().__init__(url, timeout=timeout, retry=retry)

    def encode(self, spans: Sequence[SpanData]) -> bytes:
        """One line per span; names have their line breaks replaced so lines stay lines."""
        lines = []
        for span in spans:
            parent = span.parent.span_id_hex if span.parent else "-"
            micros = (span.end_time - span.start_time) // 1000
            name = span.name.replace("\r", " ").replace("\n", " ")
            lines.append(f"{span.context.trace_id_hex} {span.context.span_id_hex} {parent} "
                         f"{micros} {name}\n")
        return "".join(lines).encode("utf-8", "replace")
