"""WSGI middleware against a real wsgiref server on 127.0.0.1."""

from __future__ import annotations

import json
import sys
from typing import Any, Callable, Dict, Iterable, Iterator, List

import pytest
from tracing_api_http import WSGIMiddleware, build_opener, set_route

import tracing_api
from tracing_api import SpanKind, StatusCode, sampling
from tracing_api.context import baggage
from tracing_api.export import SpanData
from tracing_api.testing import CapturedSpans, capture

tracer = tracing_api.get_tracer(__name__)

TRACE_HEX = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_HEX = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_HEX}-{PARENT_HEX}-01"


def make_app(backend_url: str = "") -> Callable[..., Iterable[bytes]]:
    """A small WSGI application with one path per behaviour under test."""

    def app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ["PATH_INFO"]
        if path == "/ok":
            with tracer.span("handler"):
                start_response("200 OK", [("Content-Type", "text/plain")])
                return [b"ok"]
        if path == "/missing":
            start_response("404 Not Found", [])
            return [b"missing"]
        if path == "/broken":
            start_response("500 Internal Server Error", [])
            return [b"broken"]
        if path == "/raise":
            raise RuntimeError("boom")
        if path.startswith("/users/"):
            set_route("/users/{id}")
            start_response("200 OK", [])
            return [b"user"]
        if path == "/stream":
            start_response("200 OK", [])
            return _chunks()
        if path == "/baggage":
            start_response("200 OK", [])
            return [json.dumps(dict(baggage())).encode()]
        if path == "/forward":
            with build_opener().open(backend_url + "/ok", timeout=5) as response:
                body = response.read()
            start_response("200 OK", [])
            return [body]
        start_response("404 Not Found", [])
        return [b""]

    return app


def _chunks() -> Iterator[bytes]:
    for index in range(3):
        with tracer.span(f"chunk-{index}"):
            yield b"part"


def _server_span(spans: CapturedSpans, wait_span: Callable[..., SpanData]) -> SpanData:
    return wait_span(spans, lambda s: s.kind == SpanKind.SERVER)


def test_success_span_has_route_less_name_and_semconv_attributes(
    trace_capture: CapturedSpans, serve: Any, fetch: Any, wait_span: Any
) -> None:
    url = serve("wsgi", WSGIMiddleware(make_app()))
    status, _ = fetch(url, "/ok?x=1", [("User-Agent", "probe/1.0")])
    span = _server_span(trace_capture, wait_span)
    assert status == 200
    assert span.name == "GET"
    port = int(url.rsplit(":", 1)[1])
    expected = {
        "http.request.method": "GET", "url.path": "/ok", "url.query": "x=1", "url.scheme": "http",
        "http.response.status_code": 200, "server.address": "127.0.0.1", "server.port": port,
        "client.address": "127.0.0.1", "user_agent.original": "probe/1.0",
        "network.protocol.version": "1.1",
    }
    assert {k: span.attributes.get(k) for k in expected} == expected
    assert span.status.code == StatusCode.UNSET


def test_handler_span_is_child_of_server_span(
    trace_capture: CapturedSpans, serve: Any, fetch: Any, wait_span: Any
) -> None:
    url = serve("wsgi", WSGIMiddleware(make_app()))
    fetch(url, "/ok")
    server = _server_span(trace_capture, wait_span)
    assert [c.name for c in trace_capture.children(server)] == ["handler"]


def test_not_found_is_not_an_error_for_a_server(
    trace_capture: CapturedSpans, serve: Any, fetch: Any, wait_span: Any
) -> None:
    url = serve("wsgi", WSGIMiddleware(make_app()))
    assert fetch(url, "/missing")[0] == 404
    span = _server_span(trace_capture, wait_span)
    assert span.attributes["http.response.status_code"] == 404
    assert span.status.code == StatusCode.UNSET


def test_server_error_response_marks_span_as_error(
    trace_capture: CapturedSpans, serve: Any, fetch: Any, wait_span: Any
) -> None:
    url = serve("wsgi", WSGIMiddleware(make_app()))
    assert fetch(url, "/broken")[0] == 500
    span = _server_span(trace_capture, wait_span)
    assert span.status.code == StatusCode.ERROR
    assert span.attributes["error.type"] == "500"


def test_exception_is_recorded_and_reraised_to_the_server(
    trace_capture: CapturedSpans, serve: Any, fetch: Any, wait_span: Any
) -> None:
    url = serve("wsgi", WSGIMiddleware(make_app()))
    assert fetch(url, "/raise")[0] == 500  # wsgiref answered 500: the exception reached it
    span = _server_span(trace_capture, wait_span)
    assert span.status.code == StatusCode.ERROR
    assert span.attributes["error.type"] == "RuntimeError"
    assert [e.attributes["exception.message"] for e in span.events] == ["boom"]


def test_route_set_by_handler_names_the_span(
    trace_capture: CapturedSpans, serve: Any, fetch: Any, wait_span: Any
) -> None:
    url = serve("wsgi", WSGIMiddleware(make_app()))
    fetch(url, "/users/42")
    span = _server_span(trace_capture, wait_span)
    assert span.name == "GET /users/{id}"
    assert span.attributes["http.route"] == "/users/{id}"


def test_route_resolver_names_the_span(
    trace_capture: CapturedSpans, serve: Any, fetch: Any, wait_span: Any
) -> None:
    app = WSGIMiddleware(make_app(), route=lambda environ: "/static-route")
    fetch(serve("wsgi", app), "/ok")
    assert _server_span(trace_capture, wait_span).name == "GET /static-route"


def test_streamed_body_is_inside_the_server_span(
    trace_capture: CapturedSpans, serve: Any, fetch: Any, wait_span: Any
) -> None:
    url = serve("wsgi", WSGIMiddleware(make_app()))
    assert fetch(url, "/stream")[1] == b"part" * 3
    server = _server_span(trace_capture, wait_span)
    chunks = trace_capture.children(server)
    assert [c.name for c in chunks] == ["chunk-0", "chunk-1", "chunk-2"]
    assert server.end_time >= chunks[-1].end_time


def test_valid_traceparent_continues_the_trace(
    trace_capture: CapturedSpans, serve: Any, fetch: Any, wait_span: Any
) -> None:
    url = serve("wsgi", WSGIMiddleware(make_app()))
    fetch(url, "/ok", [("traceparent", TRACEPARENT)])
    span = _server_span(trace_capture, wait_span)
    assert span.context.trace_id_hex == TRACE_HEX
    assert span.parent is not None
    assert span.parent.span_id_hex == PARENT_HEX


def _forwarded(backend: Any, serve: Any, fetch: Any, headers: List[Any]) -> Dict[str, str]:
    """Send ``headers`` to a traced WSGI service that calls ``backend``; return what the
    backend received.
    """
    url = serve("wsgi", WSGIMiddleware(make_app(backend.url)))
    status, _ = fetch(url, "/forward", headers)
    assert status == 200
    seen: Dict[str, str] = backend.requests[-1]
    return seen


def test_service_forwards_trace_with_its_own_parent_id_and_tracestate(
    trace_capture: CapturedSpans, backend: Any, serve: Any, fetch: Any, wait_span: Any
) -> None:
    seen = _forwarded(backend, serve, fetch, [
        ("traceparent", TRACEPARENT), ("tracestate", "vendor=opaque,other=x")])
    client = wait_span(trace_capture, lambda s: s.kind == SpanKind.CLIENT)
    assert seen["traceparent"] == f"00-{TRACE_HEX}-{client.context.span_id_hex}-01"
    assert seen["tracestate"] == "vendor=opaque,other=x"


def test_invalid_traceparent_restarts_trace_and_drops_tracestate(
    trace_capture: CapturedSpans, backend: Any, serve: Any, fetch: Any, wait_span: Any
) -> None:
    seen = _forwarded(backend, serve, fetch, [
        ("traceparent", TRACEPARENT.upper()), ("tracestate", "vendor=opaque")])
    server = _server_span(trace_capture, wait_span)
    assert server.parent is None
    assert server.context.trace_id_hex != TRACE_HEX
    assert seen["traceparent"].split("-")[1] == server.context.trace_id_hex
    assert "tracestate" not in seen


def test_invalid_tracestate_is_dropped_and_trace_continues(
    trace_capture: CapturedSpans, backend: Any, serve: Any, fetch: Any
) -> None:
    seen = _forwarded(backend, serve, fetch, [
        ("traceparent", TRACEPARENT), ("tracestate", "Bad Key=1")])
    assert seen["traceparent"].split("-")[1] == TRACE_HEX
    assert "tracestate" not in seen


def test_repeated_traceparent_restarts_the_trace(
    trace_capture: CapturedSpans, backend: Any, serve: Any, fetch: Any
) -> None:
    other = f"00-{'1' * 32}-{'2' * 16}-01"
    seen = _forwarded(backend, serve, fetch, [("traceparent", TRACEPARENT), ("traceparent", other)])
    assert seen["traceparent"].split("-")[1] not in (TRACE_HEX, "1" * 32)


def test_future_version_traceparent_is_forwarded_as_version_00(
    trace_capture: CapturedSpans, backend: Any, serve: Any, fetch: Any
) -> None:
    future = f"cc-{TRACE_HEX}-{PARENT_HEX}-01-what-the-future-holds"
    seen = _forwarded(backend, serve, fetch, [("traceparent", future)])
    assert seen["traceparent"].startswith(f"00-{TRACE_HEX}-")


def test_unsampled_caller_is_obeyed_at_a_trusted_endpoint(
    backend: Any, serve: Any, fetch: Any
) -> None:
    with capture(sampler=sampling.parent_based(sampling.always_on())) as spans:
        seen = _forwarded(backend, serve, fetch, [("traceparent", TRACEPARENT[:-2] + "00")])
    assert seen["traceparent"].endswith("-00")
    assert spans.names() == []


@pytest.mark.parametrize("option", [{"public": True},
                                    {"public": lambda environ: environ["PATH_INFO"] == "/baggage"},
                                    {"trusted_networks": ["10.0.0.0/8"]}])
def test_public_endpoint_links_caller_and_drops_baggage(
    serve: Any, fetch: Any, wait_span: Any, option: Dict[str, Any]
) -> None:
    with capture(sampler=sampling.parent_based(sampling.always_on())) as spans:
        url = serve("wsgi", WSGIMiddleware(make_app(), **option))
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
    url = serve("wsgi", WSGIMiddleware(make_app(), trusted_networks=["127.0.0.0/8"]))
    _, body = fetch(url, "/baggage", [("traceparent", TRACEPARENT), ("baggage", "user=alice")])
    assert json.loads(body) == {"user": "alice"}


def test_unconfigured_service_forwards_incoming_context_unchanged(
    backend: Any, serve: Any, fetch: Any
) -> None:
    seen = _forwarded(backend, serve, fetch, [("traceparent", TRACEPARENT)])
    assert seen["traceparent"] == TRACEPARENT


def test_unknown_method_is_reported_as_other(trace_capture: CapturedSpans) -> None:
    environ = {"REQUEST_METHOD": "BREW", "PATH_INFO": "/ok", "wsgi.url_scheme": "http"}
    result = WSGIMiddleware(make_app())(environ, lambda status, headers, *a: None)
    list(result)
    result.close()  # type: ignore[attr-defined]
    span = trace_capture.find("HTTP")
    assert span.attributes["http.request.method"] == "_OTHER"
    assert span.attributes["http.request.method_original"] == "BREW"


def test_span_ends_only_when_server_closes_the_body(trace_capture: CapturedSpans) -> None:
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/stream", "wsgi.url_scheme": "http"}
    result = WSGIMiddleware(make_app())(environ, lambda status, headers, *a: None)
    assert list(result) == [b"part"] * 3
    before_close = [s.name for s in trace_capture if s.kind == SpanKind.SERVER]
    result.close()  # type: ignore[attr-defined]
    assert before_close == []
    assert trace_capture.find("GET").kind == SpanKind.SERVER


def test_header_values_never_reach_the_logs(
    trace_capture: CapturedSpans, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "s3cr3t-value"
    environ = {
        "REQUEST_METHOD": "GET", "PATH_INFO": "/ok", "wsgi.url_scheme": "http",
        "HTTP_TRACEPARENT": f"00-{secret}", "HTTP_TRACESTATE": f"k={secret}=x",
        "HTTP_BAGGAGE": f"{secret};;;=", "HTTP_AUTHORIZATION": f"Bearer {secret}",
    }
    with caplog.at_level("DEBUG"):
        result = WSGIMiddleware(make_app())(environ, lambda status, headers, *a: None)
        list(result)
        result.close()  # type: ignore[attr-defined]
    assert trace_capture.find("GET").parent is None
    assert all(secret not in r.getMessage() and secret not in (r.exc_text or "")
               for r in caplog.records)


def _fails_then_answers_503(exc_info_by: str) -> Callable[..., Iterable[bytes]]:
    """An application whose error handler passes ``exc_info`` to ``start_response`` (PEP 3333),
    by keyword or by position.
    """

    def app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            raise ValueError("handler failed")
        except ValueError:
            headers = [("Content-Type", "text/plain")]
            if exc_info_by == "keyword":
                start_response("503 Service Unavailable", headers, exc_info=sys.exc_info())
            else:
                start_response("503 Service Unavailable", headers, sys.exc_info())
        return [b"try later"]

    return app


@pytest.mark.parametrize("exc_info_by", ["keyword", "position"])
def test_start_response_with_exc_info_reaches_the_server(
    trace_capture: CapturedSpans, serve: Any, fetch: Any, wait_span: Any, exc_info_by: str
) -> None:
    url = serve("wsgi", WSGIMiddleware(_fails_then_answers_503(exc_info_by)))
    assert fetch(url, "/") == (503, b"try later")
    span = _server_span(trace_capture, wait_span)
    assert span.attributes["http.response.status_code"] == 503
    assert span.events == ()  # nothing escaped the application


@pytest.mark.parametrize("exc_info_by", ["keyword", "position"])
def test_start_response_forwards_exc_info_as_the_application_passed_it(
    trace_capture: CapturedSpans, exc_info_by: str
) -> None:
    calls: List[Any] = []

    def start_response(status: str, headers: Any, *args: Any, **kwargs: Any) -> None:
        calls.append((args, kwargs))

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "wsgi.url_scheme": "http"}
    result = WSGIMiddleware(_fails_then_answers_503(exc_info_by))(environ, start_response)
    list(result)
    result.close()  # type: ignore[attr-defined]
    [(args, kwargs)] = calls
    given = kwargs.pop("exc_info") if exc_info_by == "keyword" else args[0]
    assert (len(args), kwargs) == ((0, {}) if exc_info_by == "keyword" else (1, {}))
    assert given[0] is ValueError and str(given[1]) == "handler failed"
