"""One trace from a traced client through a traced server to a backend, over real sockets."""

from __future__ import annotations

from typing import Any

import httpx
from tracing_api_http import ASGIMiddleware, TracingTransport, WSGIMiddleware, build_opener

import tracing_api
from tracing_api import SpanKind
from tracing_api.testing import CapturedSpans

tracer = tracing_api.get_tracer(__name__)


def _forwarding_wsgi(backend_url: str) -> Any:
    def app(environ: Any, start_response: Any) -> Any:
        with build_opener().open(backend_url + "/ok", timeout=5) as response:
            response.read()
        start_response("200 OK", [])
        return [b"done"]

    return WSGIMiddleware(app)


def _forwarding_asgi(backend_url: str) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        async with httpx.AsyncClient(timeout=5, transport=_async_transport()) as client:
            await client.get(backend_url + "/ok")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})

    return ASGIMiddleware(app)


def _async_transport() -> Any:
    from tracing_api_http import AsyncTracingTransport

    return AsyncTracingTransport()


def _assert_one_trace(spans: CapturedSpans, wait_span: Any, backend: Any) -> None:
    wait_span(spans, lambda s: s.kind == SpanKind.SERVER)
    spans.assert_tree("""
        caller
          GET
            GET
              GET
    """)
    assert len({s.context.trace_id for s in spans}) == 1
    kinds = {s.context.span_id: s.kind for s in spans}
    server = next(s for s in spans if s.kind == SpanKind.SERVER)
    assert server.parent is not None
    assert kinds[server.parent.span_id] == SpanKind.CLIENT
    inner = next(s for s in spans if s.parent is not None and s.parent.span_id == server.context.span_id)
    assert backend.requests[-1]["traceparent"].split("-")[2] == inner.context.span_id_hex


def test_urllib_to_wsgi_to_backend_is_one_trace(
    trace_capture: CapturedSpans, backend: Any, serve: Any, wait_span: Any
) -> None:
    url = serve("wsgi", _forwarding_wsgi(backend.url))
    with tracer.span("caller"), build_opener().open(url + "/", timeout=5) as response:
        assert response.read() == b"done"
    _assert_one_trace(trace_capture, wait_span, backend)


def test_httpx_to_asgi_to_backend_is_one_trace(
    trace_capture: CapturedSpans, backend: Any, serve: Any, wait_span: Any
) -> None:
    url = serve("asgi", _forwarding_asgi(backend.url))
    with tracer.span("caller"), httpx.Client(transport=TracingTransport(), timeout=5) as client:
        assert client.get(url + "/").content == b"done"
    _assert_one_trace(trace_capture, wait_span, backend)
