"""Incoming context is data from strangers, and secrets stay out of spans and logs.

Header values are never logged at INFO or above; no password, token or cookie reaches an
exported span (checked in what the real Zipkin exporter delivers) or a log record; and a public
endpoint turns a caller's context into a link, ignores its sampling decision and drops its
baggage (checked over a real HTTP server on loopback).
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.request
from importlib.metadata import entry_points
from typing import Any, Dict, Iterator, List
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

import tracing_api as tracing
from tracing_api.testing import capture

tracer = tracing.get_tracer(__name__)

SECRET = "s3cr3t-Zq8w"
TOKEN = f"Bearer tok-{SECRET}"

_found: Any = entry_points()
_group = (_found.select(group="tracing_api.propagators") if hasattr(_found, "select")
          else _found.get("tracing_api.propagators", []))
ALL = [ep.load()() for ep in sorted(_group, key=lambda ep: ep.name)]

# Each format's header, holding the secret where a value goes, valid or not, so that parse
# failures (the likeliest place to log a value) are taken too.
SECRET_HEADERS = {
    "traceparent": f"00-{SECRET}-00f067aa0ba902b7-01",
    "tracestate": f"rojo={SECRET},{SECRET}",
    "baggage": f"user={SECRET},{SECRET};%zz",
    "b3": f"{SECRET}-e457b5a2e4d86bd1-1",
    "x-b3-traceid": SECRET,
    "x-b3-spanid": SECRET,
    "x-b3-sampled": SECRET,
    "x-cloud-trace-context": f"{SECRET}/1;o=1",
    "uber-trace-id": f"{SECRET}:1:0:1",
    "uberctx-session": SECRET,
    "jaeger-baggage": f"k={SECRET}",
    "grpc-trace-bin": SECRET.encode(),
    "authorization": TOKEN,
    "cookie": f"session={SECRET}",
}


def _leaks(records: List[logging.LogRecord], level: int = logging.INFO) -> List[str]:
    """The records at ``level`` or above that mention the secret, message or traceback."""
    found = []
    for record in records:
        if record.levelno < level:
            continue
        text = record.getMessage()
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        if SECRET in text:
            found.append(f"{record.name} {record.levelname}: {text[:300]}")
    return found


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every record of every logger, down to DEBUG."""
    caplog.set_level(logging.DEBUG)
    return caplog


def _span_text(spans: Any) -> str:
    return repr([(s.name, dict(s.attributes), s.events, s.links, s.status) for s in spans])


def test_extract_never_logs_a_header_value_at_info_or_above(all_logs: Any) -> None:
    with capture(propagators=ALL):
        for name, value in SECRET_HEADERS.items():
            for carrier in ({name: value}, [(name, value)], SECRET_HEADERS):
                tracing.extract(carrier)
    assert not _leaks(all_logs.records)


def test_wsgi_request_with_secrets_in_headers_leaks_them_nowhere(all_logs: Any) -> None:
    from tracing_api_http import WSGIMiddleware

    def app(environ: Dict[str, Any], start_response: Any) -> List[bytes]:
        start_response("200 OK", [])
        return [b"ok"]

    environ: Dict[str, Any] = {"REQUEST_METHOD": "GET", "PATH_INFO": "/login",
                               "QUERY_STRING": f"sig={SECRET}", "wsgi.url_scheme": "http",
                               "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80"}
    for name, value in SECRET_HEADERS.items():
        environ["HTTP_" + name.upper().replace("-", "_")] = (
            value.decode() if isinstance(value, bytes) else value)
    with capture(propagators=ALL) as spans:
        body = WSGIMiddleware(app)(environ, lambda *a: None)
        list(body)
        body.close()  # type: ignore[attr-defined]  # the span ends when the server closes the body
    assert len(spans) == 1
    assert SECRET not in _span_text(spans)
    assert not _leaks(all_logs.records)


def test_grpc_call_with_secrets_in_metadata_leaks_them_nowhere(all_logs: Any) -> None:
    import grpc
    import tracing_api_grpc

    metadata = [(k, v) for k, v in SECRET_HEADERS.items()]

    class Context:
        def invocation_metadata(self) -> Any:
            return metadata

        def peer(self) -> str:
            return "ipv4:127.0.0.1:1"

        def add_callback(self, callback: Any) -> bool:
            return True

    class Details:
        method = "/svc.S/M"
        invocation_metadata = metadata

    interceptor: Any = tracing_api_grpc.server_interceptors()[0]
    handler = interceptor.intercept_service(
        lambda details: grpc.unary_unary_rpc_method_handler(lambda request, context: b"ok"),
        Details())
    with capture(propagators=ALL) as spans:
        assert handler.unary_unary(b"", Context()) == b"ok"
    assert len(spans) == 1
    assert SECRET not in _span_text(spans)
    assert not _leaks(all_logs.records)


def _wait_for_one(spans: Any) -> None:
    # The server ends its span when it closes the body, a moment after the client has read it.
    deadline = time.monotonic() + 10
    while not spans.spans and time.monotonic() < deadline:
        time.sleep(0.005)


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def wsgi_server() -> Iterator[Any]:
    """A real WSGI server on loopback; tests set ``server.app``."""
    holder: Dict[str, Any] = {}

    def dispatch(environ: Dict[str, Any], start_response: Any) -> Any:
        return holder["app"](environ, start_response)

    server: WSGIServer = make_server("127.0.0.1", 0, dispatch, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    holder["server"] = server
    try:
        yield holder
    finally:
        server.shutdown()
        server.server_close()


def test_credentials_in_client_urls_and_headers_never_reach_the_backend(
    make_backend: Any, wsgi_server: Dict[str, Any],
) -> None:
    """Traced requests, httpx and urllib calls carry a password, a token and a signed query;
    the Zipkin collector receives the CLIENT and SERVER spans, and none of the secrets.
    """
    import httpx
    import requests
    from tracing_api_http import TracingTransport, WSGIMiddleware, build_opener, traced_session

    def app(environ: Dict[str, Any], start_response: Any) -> List[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    wsgi_server["app"] = WSGIMiddleware(app)
    port = wsgi_server["server"].server_port
    backend = make_backend("zipkin")
    tracing.configure(**backend.exporter_options(), schedule_delay=60.0)
    url = f"http://alice:{SECRET}@127.0.0.1:{port}/files?X-Goog-Signature={SECRET}&sig={SECRET}"
    headers = {"Authorization": TOKEN, "Cookie": f"session={SECRET}"}

    traced_session().get(url, headers=headers, timeout=10)
    with httpx.Client(transport=TracingTransport()) as client:
        client.get(url, headers=headers, timeout=10)
    request = urllib.request.Request(url.replace(f"alice:{SECRET}@", ""), headers=headers)
    build_opener().open(request, timeout=10).read()
    requests.Session().close()

    # The server ends its span when it closes the body, a moment after the client has read it.
    deadline = time.monotonic() + 10
    while tracing.stats()["ended"] < 6 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert tracing.shutdown(timeout=10.0)
    assert len(backend.span_ids()) == 6  # three CLIENT spans, three SERVER spans
    delivered = b"".join(backend.collector.bodies)
    assert SECRET.encode() not in delivered


@pytest.mark.parametrize("kind", ["zipkin", "otlp_protobuf"])
def test_a_failing_exporter_never_logs_the_password_in_its_endpoint(
    all_logs: Any, kind: str,
) -> None:
    from tracing_api.delivery import NO_RETRY

    options: Dict[str, Any] = {"retry": NO_RETRY, "timeout": 2.0}
    if kind == "zipkin":
        options.update(exporter="zipkin", endpoint=f"http://alice:{SECRET}@127.0.0.1:9/api/v2/spans")
    else:
        options.update(exporter="otlp", endpoint=f"http://alice:{SECRET}@127.0.0.1:9")
    tracing.configure(**options, schedule_delay=60.0)
    with tracer.span("s"):
        pass
    tracing.shutdown(timeout=10.0)
    assert tracing.stats()["failed"] == 1
    processor: Any = tracing._tracer.active().processors[0]  # type: ignore[union-attr]
    assert not _leaks(all_logs.records, logging.DEBUG)
    assert SECRET not in repr(processor.exporter)


def test_public_endpoint_links_the_caller_ignores_its_sampling_and_drops_its_baggage(
    wsgi_server: Dict[str, Any],
) -> None:
    from tracing_api_http import WSGIMiddleware

    seen: Dict[str, Any] = {}

    def app(environ: Dict[str, Any], start_response: Any) -> List[bytes]:
        seen["baggage"] = dict(tracing.context.baggage())
        seen["span"] = tracing.current_span().context
        start_response("200 OK", [])
        return [b"ok"]

    port = wsgi_server["server"].server_port
    caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"  # "do not sample"
    wsgi_server["app"] = WSGIMiddleware(app, public=True)
    with capture() as spans:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/", headers={"traceparent": caller, "baggage": "role=admin"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.read() == b"ok"
        _wait_for_one(spans)
    (server,) = spans
    assert server.parent is None  # a new trace starts here
    assert server.context.trace_id != 0x4BF92F3577B34DA6A3CE929D0E0E4736
    assert server.context.sampled  # recorded although the caller said not to sample
    assert [(link.context.trace_id, link.context.span_id) for link in server.links] == [
        (0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7)]
    assert seen["baggage"] == {}
    assert seen["span"] == server.context


def test_trusted_endpoint_continues_the_callers_trace(wsgi_server: Dict[str, Any]) -> None:
    """The other side of the boundary, so the test above cannot pass by ignoring headers."""
    from tracing_api_http import WSGIMiddleware

    seen: Dict[str, Any] = {}

    def app(environ: Dict[str, Any], start_response: Any) -> List[bytes]:
        seen["baggage"] = dict(tracing.context.baggage())
        start_response("200 OK", [])
        return [b"ok"]

    port = wsgi_server["server"].server_port
    caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    wsgi_server["app"] = WSGIMiddleware(app)
    with capture() as spans:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/", headers={"traceparent": caller, "baggage": "role=admin"})
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
        _wait_for_one(spans)
    (server,) = spans
    assert server.context.trace_id == 0x4BF92F3577B34DA6A3CE929D0E0E4736
    assert server.parent is not None and server.parent.span_id == 0x00F067AA0BA902B7
    assert seen["baggage"] == {"role": "admin"}
