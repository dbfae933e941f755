"""ASGI middleware against a real uvicorn server running a Starlette application on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterator, Dict, List

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from tracing_api_http import ASGIMiddleware, AsyncTracingTransport

import tracing_api
from tracing_api import SpanKind, StatusCode, sampling
from tracing_api.context import baggage
from tracing_api.testing import CapturedSpans, capture

tracer = tracing_api.get_tracer(__name__)

TRACE_HEX = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_HEX = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_HEX}-{PARENT_HEX}-01"


def make_app(backend_url: str = "", **options: Any) -> Starlette:
    """A Starlette application with one route per behaviour under test, traced."""

    async def ok(request: Request) -> Response:
        with tracer.span("handler"):
            return PlainTextResponse("ok")

    async def user(request: Request) -> Response:
        return PlainTextResponse(request.path_params["user_id"])

    async def broken(request: Request) -> Response:
        return PlainTextResponse("broken", status_code=500)

    async def explode(request: Request) -> Response:
        raise RuntimeError("boom")

    async def stream(request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            for index in range(3):
                with tracer.span(f"chunk-{index}"):
                    await asyncio.sleep(0)
                    yield b"part"

        return StreamingResponse(chunks())

    async def show_baggage(request: Request) -> Response:
        return JSONResponse(dict(baggage()))

    async def forward(request: Request) -> Response:
        async with httpx.AsyncClient(transport=AsyncTracingTransport(), timeout=5) as client:
            answer = await client.get(backend_url + "/ok")
        return Response(answer.content)

    routes = [
        Route("/ok", ok), Route("/users/{user_id}", user), Route("/broken", broken),
        Route("/raise", explode), Route("/stream", stream), Route("/baggage", show_baggage),
        Route("/forward", forward),
    ]
    return Starlette(routes=routes, middleware=[Middleware(ASGIMiddleware, **options)])


def _server(spans: CapturedSpans, wait_span: Any) -> Any:
    return wait_span(spans, lambda s: s.kind == SpanKind.SERVER)


def test_span_is_named_after_starlette_route(
    trace_capture: CapturedSpans, serve: Any, fetch: Any, wait_span: Any
) -> None:
    url = serve("asgi", make_app())
    assert fetch(url, "/users/42")[1] == b"42"
    span = _server(trace_capture, wait_span)
    assert span.name == "GET /users/{user_id}"
    assert span.attributes["http.route"] == "/users/{user_id}"
    assert span.attributes["url.path"] == "/users/42"


def test_success_span_has_semconv_attributes(
    trace_capture: CapturedSpans, serve: Any, fetch: Any, wait_span: Any
) -> None:
    url = serve("asgi", make_app())
    fetch(url, "/ok?q=1", [("User-Agent", "probe/2")])
    span = _server(trace_capture, wait_span)
    port = int(url.rsplit(":", 1)[1])
    expected = {
        "http.request.method": "GET", "url.path": "/ok", "url.query": "q=1", "url.scheme": "http",
        "http.response.status_code": 200, "server.address": "127.0.0.1", "server.port": port,
        "client.address": "127.0.0.1", "user_agent.original": "probe/2",
        "network.protocol.version": "1.1", "http.route": "/ok",
    }
    assert {k: span.attributes.get(k) for k in expected} == expected
    assert [c.name for c in trace_capture.children(span)] == ["handler"]


def test_unmatched_path_is_named_by_method_and_not_an_error(
    trace_capture: CapturedSpans, serve: Any, fetch: Any, wait_span: Any
) -> None:
    url = serve("asgi", make_app())
    assert fetch(url, "/nowhere")[0] == 404
    span = _server(trace_capture, wait_span)
    assert span.name == "GET"
    assert span.status.code == StatusCode.UNSET


def test_server_error_response_marks_span_as_error(
    trace_capture: CapturedSpans, serve: Any, fetch: Any, wait_span: Any
) -> None:
    url = serve("asgi", make_app())
    assert fetch(url, "/broken")[0] == 500
    assert _server(trace_capture, wait_span).status.code == StatusCode.ERROR


def test_exception_is_recorded_on_server_span(
    trace_capture: CapturedSpans, serve: Any, fetch: Any, wait_span: Any
) -> None:
    url = serve("asgi", make_app())
    assert fetch(url, "/raise")[0] == 500
    span = _server(trace_capture, wait_span)
    assert span.status.code == StatusCode.ERROR
    assert span.attributes["error.type"] == "RuntimeError"
    assert [e.name for e in span.events] == ["exception"]


def test_streamed_response_is_inside_the_server_span(
    trace_capture: CapturedSpans, serve: Any, fetch: Any, wait_span: Any
) -> None:
    url = serve("asgi", make_app())
    assert fetch(url, "/stream")[1] == b"part" * 3
    server = _server(trace_capture, wait_span)
    chunks = trace_capture.children(server)
    assert [c.name for c in chunks] == ["chunk-0", "chunk-1", "chunk-2"]
    assert server.end_time >= chunks[-1].end_time


def test_service_forwards_trace_with_its_own_parent_id_and_tracestate(
    trace_capture: CapturedSpans, backend: Any, serve: Any, fetch: Any, wait_span: Any
) -> None:
    url = serve("asgi", make_app(backend.url))
    fetch(url, "/forward", [("traceparent", TRACEPARENT), ("tracestate", "vendor=opaque")])
    client = wait_span(trace_capture, lambda s: s.kind == SpanKind.CLIENT)
    server = _server(trace_capture, wait_span)
    seen = backend.requests[-1]
    assert seen["traceparent"] == f"00-{TRACE_HEX}-{client.context.span_id_hex}-01"
    assert seen["tracestate"] == "vendor=opaque"
    assert client.parent is not None
    assert client.parent.span_id == server.context.span_id


def test_invalid_traceparent_restarts_the_trace(
    trace_capture: CapturedSpans, backend: Any, serve: Any, fetch: Any, wait_span: Any
) -> None:
    url = serve("asgi", make_app(backend.url))
    fetch(url, "/forward", [("traceparent", TRACEPARENT[:-1] + "x"), ("tracestate", "v=1")])
    server = _server(trace_capture, wait_span)
    assert server.parent is None
    assert backend.requests[-1]["traceparent"].split("-")[1] == server.context.trace_id_hex
    assert "tracestate" not in backend.requests[-1]


def test_repeated_traceparent_headers_restart_the_trace(
    trace_capture: CapturedSpans, serve: Any, fetch: Any, wait_span: Any
) -> None:
    url = serve("asgi", make_app())
    fetch(url, "/ok", [("traceparent", TRACEPARENT), ("traceparent", TRACEPARENT)])
    assert _server(trace_capture, wait_span).parent is None


@pytest.mark.parametrize("options", [{"public": True},
                                     {"public": lambda scope: scope["path"] == "/baggage"},
                                     {"trusted_networks": ["192.168.0.0/16", "::1/128"]}])
def test_public_endpoint_links_caller_and_drops_baggage(
    serve: Any, fetch: Any, wait_span: Any, options: Dict[str, Any]
) -> None:
    with capture(sampler=sampling.parent_based(sampling.always_on())) as spans:
        url = serve("asgi", make_app(**options))
        _, body = fetch(url, "/baggage", [
            ("traceparent", TRACEPARENT[:-2] + "00"), ("baggage", "user=alice")])
        server = wait_span(spans, lambda s: s.kind == SpanKind.SERVER)
    assert json.loads(body) == {}
    assert server.parent is None
    assert server.context.trace_id_hex != TRACE_HEX
    assert [link.context.span_id_hex for link in server.links] == [PARENT_HEX]


def test_trusted_endpoint_passes_baggage_to_the_handler(
    trace_capture: CapturedSpans, serve: Any, fetch: Any
) -> None:
    url = serve("asgi", make_app())
    _, body = fetch(url, "/baggage", [("traceparent", TRACEPARENT), ("baggage", "user=alice")])
    assert json.loads(body) == {"user": "alice"}


def test_lifespan_and_websocket_scopes_pass_through_untraced(trace_capture: CapturedSpans) -> None:
    calls: List[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        calls.append(scope["type"])

    async def main() -> None:
        middleware = ASGIMiddleware(app)
        await middleware({"type": "lifespan"}, _never, _discard)
        await middleware({"type": "websocket", "path": "/ws", "headers": []}, _never, _discard)

    asyncio.run(main())
    assert calls == ["lifespan", "websocket"]
    assert trace_capture.names() == []


async def _never() -> Dict[str, Any]:
    return {"type": "http.disconnect"}


async def _discard(message: Any) -> None:
    pass


def test_span_ends_when_app_returns_without_completing_the_body(
    trace_capture: CapturedSpans,
) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"x", "more_body": True})

    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b""}
    asyncio.run(ASGIMiddleware(app)(scope, _never, _discard))
    assert trace_capture.find("GET").attributes["http.response.status_code"] == 200


def make_mounted_app() -> Starlette:
    """Routes reached through Starlette ``Mount``s: one level, nested, a route list shared by
    two mounts, and a mounted sub-application.
    """

    async def user(request: Request) -> Response:
        return PlainTextResponse(request.path_params["user_id"])

    shared = [Route("/users/{user_id}", user)]
    routes = [
        Mount("/api/v1", routes=shared),
        Mount("/admin", routes=shared),
        Mount("/orgs/{org}", routes=[Mount("/teams/{team}", routes=shared)]),
        Mount("/sub", app=Starlette(routes=[Route("/users/{user_id}", user)])),
    ]
    return Starlette(routes=routes, middleware=[Middleware(ASGIMiddleware)])


@pytest.mark.parametrize(("path", "route"), [
    ("/api/v1/users/42", "/api/v1/users/{user_id}"),
    ("/admin/users/42", "/admin/users/{user_id}"),
    ("/orgs/acme/teams/core/users/42", "/orgs/{org}/teams/{team}/users/{user_id}"),
    ("/sub/users/42", "/sub/users/{user_id}"),
])
def test_route_reached_through_mounts_is_named_with_the_mount_paths(
    trace_capture: CapturedSpans, serve: Any, fetch: Any, wait_span: Any, path: str, route: str
) -> None:
    url = serve("asgi", make_mounted_app())
    assert fetch(url, path) == (200, b"42")
    span = _server(trace_capture, wait_span)
    assert span.name == f"GET {route}"
    assert span.attributes["http.route"] == route
    assert span.attributes["url.path"] == path


def test_a_background_task_failing_after_the_response_is_recorded_on_the_server_span(
    trace_capture: CapturedSpans, serve: Any, fetch: Any, wait_span: Any
) -> None:
    from starlette.background import BackgroundTask

    def job() -> None:
        raise RuntimeError("background job failed")

    async def answer(request: Request) -> Response:
        return PlainTextResponse("accepted", background=BackgroundTask(job))

    app = Starlette(routes=[Route("/later", answer)], middleware=[Middleware(ASGIMiddleware)])
    url = serve("asgi", app)
    assert fetch(url, "/later")[0] == 200
    span = _server(trace_capture, wait_span)
    assert span.status.code == StatusCode.ERROR
    assert span.attributes["error.type"] == "RuntimeError"
    assert [e.name for e in span.events] == ["exception"]
    assert span.attributes["http.response.status_code"] == 200


def test_an_app_returning_without_a_response_is_recorded_as_the_servers_500(
    trace_capture: CapturedSpans, serve: Any, fetch: Any, wait_span: Any
) -> None:
    async def silent(scope: Any, receive: Any, send: Any) -> None:
        return None

    url = serve("asgi", ASGIMiddleware(silent))
    assert fetch(url, "/nothing")[0] == 500
    span = _server(trace_capture, wait_span)
    assert span.status.code == StatusCode.ERROR
    assert span.attributes["http.response.status_code"] == 500


def test_a_client_leaving_before_the_response_is_not_recorded_as_a_server_500(
    trace_capture: CapturedSpans, serve: Any, wait_span: Any
) -> None:
    """A long poll whose client hangs up: the app sees ``http.disconnect`` and returns without
    answering (there is nobody to answer). That is the client's abort, not a server failure.
    """
    import socket
    import threading
    from urllib.parse import urlsplit

    waiting = threading.Event()

    async def long_poll(scope: Any, receive: Any, send: Any) -> None:
        waiting.set()
        while (await receive())["type"] != "http.disconnect":
            pass

    port = urlsplit(serve("asgi", ASGIMiddleware(long_poll))).port
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        client.sendall(b"GET /poll HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert waiting.wait(5)
    span = _server(trace_capture, wait_span)
    assert "http.response.status_code" not in span.attributes
    assert "error.type" not in span.attributes
    assert span.status.code == StatusCode.UNSET
    assert [e.name for e in span.events] == ["http.disconnect"]
