"""Overhead of HTTP server tracing per request, ours beside OpenTelemetry's, with pyperf.

    .venv/bin/python benchmarks/bench_http.py --fast -o /tmp/http.json
    .venv/bin/python -m pyperf compare_to --table /tmp/http.json   # or: pyperf dump / stats

Each benchmark is named ``{wsgi|asgi}.{bare|ours|otel}``: the same tiny application called
directly (no sockets, no server), without middleware (``bare``), behind
``tracing_api_http.WSGIMiddleware`` / ``ASGIMiddleware`` (``ours``), and behind
OpenTelemetry's ``OpenTelemetryMiddleware`` from opentelemetry-instrumentation-wsgi / -asgi
0.66b2 with the 1.45.2 SDK (``otel``). Each request carries a sampled ``traceparent``, so every
request makes one recorded SERVER span. Both pipelines sample everything and hand spans to a
batch processor whose exporter discards them, so what is measured is the per-request cost on
the application's thread. The ASGI cases run many requests inside one coroutine, so the event
loop's own cost per ``run_until_complete`` is paid once per timing, not per request.
OpenTelemetry's ASGI middleware also wraps ``receive``/``send`` in spans of their own by default
(three spans per request here), as it ships; ours makes one.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable, Dict, List, Sequence

import pyperf  # type: ignore[import-untyped]
from tracing_api_http import ASGIMiddleware, WSGIMiddleware

import tracing_api
from tracing_api.export import ExportResult, SpanData

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

ENVIRON: Dict[str, Any] = {
    "REQUEST_METHOD": "GET", "PATH_INFO": "/users/42", "QUERY_STRING": "q=1",
    "SCRIPT_NAME": "", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8080",
    "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", "wsgi.url_scheme": "http",
    "HTTP_HOST": "127.0.0.1:8080", "HTTP_USER_AGENT": "bench/1.0", "HTTP_ACCEPT": "*/*",
    "HTTP_TRACEPARENT": TRACEPARENT,
}

SCOPE: Dict[str, Any] = {
    "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
    "scheme": "http", "path": "/users/42", "raw_path": b"/users/42", "query_string": b"q=1",
    "root_path": "", "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8080),
    "headers": [(b"host", b"127.0.0.1:8080"), (b"user-agent", b"bench/1.0"),
                (b"accept", b"*/*"), (b"traceparent", TRACEPARENT.encode())],
}


def wsgi_app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> List[bytes]:
    """The application under test: one header, one body chunk."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
    """The application under test: one header, one body chunk."""
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"hello"})


class _Discard:
    """An exporter that drops what it is given: the cost left is the tracing itself."""

    def export(self, spans: Sequence[SpanData]) -> ExportResult:
        return ExportResult.SUCCESS

    def force_flush(self, timeout: float = 30.0) -> bool:
        return True

    def shutdown(self) -> None:
        pass


def _start_response(status: str, headers: Any, exc_info: Any = None) -> Callable[[bytes], None]:
    return _write


def _write(data: bytes) -> None:
    pass


def bench_wsgi(app: Callable[..., Any]) -> Callable[[int], float]:
    """Time ``loops`` requests to the WSGI ``app``, iterating and closing the body as a server does."""

    def timed(loops: int) -> float:
        start = time.perf_counter()
        for _ in range(loops):
            result = app(dict(ENVIRON), _start_response)
            for _chunk in result:
                pass
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return time.perf_counter() - start

    return timed


async def _receive() -> Dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: Any) -> None:
    pass


def bench_asgi(app: Any) -> Callable[[int], float]:
    """Time ``loops`` requests to the ASGI ``app`` inside one coroutine."""
    loop = asyncio.new_event_loop()

    async def run(loops: int) -> float:
        start = time.perf_counter()
        for _ in range(loops):
            await app(dict(SCOPE), _receive, _send)
        return time.perf_counter() - start

    def timed(loops: int) -> float:
        return loop.run_until_complete(run(loops))

    return timed


def _otel_apps() -> Dict[str, Any]:
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware as OtelASGI
    from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware as OtelWSGI
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExportResult,
    )
    from opentelemetry.sdk.trace.export import SpanExporter as OtelExporter

    class Discard(OtelExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Discard()))
    return {
        "wsgi": OtelWSGI(wsgi_app, tracer_provider=provider),
        "asgi": OtelASGI(asgi_app, tracer_provider=provider),
    }


def main() -> None:
    """Register every benchmark with pyperf."""
    runner = pyperf.Runner()
    tracing_api.configure(exporter=_Discard(), sampler="always_on", processor="batch")
    runner.bench_time_func("wsgi.bare", bench_wsgi(wsgi_app))
    runner.bench_time_func("wsgi.ours", bench_wsgi(WSGIMiddleware(wsgi_app)))
    runner.bench_time_func("asgi.bare", bench_asgi(asgi_app))
    runner.bench_time_func("asgi.ours", bench_asgi(ASGIMiddleware(asgi_app)))
    try:
        otel = _otel_apps()
    except ImportError:  # the OpenTelemetry instrumentations are optional here
        return
    runner.bench_time_func("wsgi.otel", bench_wsgi(otel["wsgi"]))
    runner.bench_time_func("asgi.otel", bench_asgi(otel["asgi"]))


if __name__ == "__main__":
    main()
