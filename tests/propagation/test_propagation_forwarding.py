"""What a request being forwarded loses before a new context goes into it: every header of the
configured formats, those a format only reads (B3's ``X-B3-ParentSpanId``) and those it names by
prefix (Jaeger's ``uberctx-*``), through ``propagation.fields()`` and ``field_prefixes()``, and
the HTTP clients that use them, against a real server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, Iterator, Tuple

import httpx
import pytest
import requests
from tracing_api_http import TracingTransport, build_opener, traced_session
from tracing_api_propagation import B3MultiPropagator, B3Propagator, JaegerPropagator

import tracing_api as tracing
from tracing_api.propagation import CompositePropagator, Propagator, field_prefixes, fields
from tracing_api.testing import capture
from tracing_api.w3c import TraceContextPropagator

B3_HEADERS = {"b3", "x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled",
              "x-b3-flags"}


@pytest.mark.parametrize("propagator", [B3Propagator, B3MultiPropagator])
def test_b3_fields_name_every_b3_header_of_either_form(propagator: Callable[[], Propagator]) -> None:
    assert set(propagator().fields) == B3_HEADERS


def test_jaeger_fields_name_the_headers_it_only_reads() -> None:
    assert set(JaegerPropagator().fields) == {"uber-trace-id", "jaeger-debug-id", "jaeger-baggage"}


def test_configured_field_prefixes_name_jaeger_baggage() -> None:
    with capture(propagators=["tracecontext", "baggage", "jaeger"]):
        assert field_prefixes() == ("uberctx-",)


def test_field_prefixes_are_empty_for_formats_without_any() -> None:
    with capture(propagators=["tracecontext", "baggage", "b3multi"]):
        assert field_prefixes() == ()


def test_field_prefixes_of_a_single_configured_propagator_are_read_too() -> None:
    with capture(propagators=[JaegerPropagator()]):
        assert (field_prefixes(), "uber-trace-id" in fields()) == (("uberctx-",), True)


class _Custom:
    """An application's propagator with prefixes of every kind, and nothing to read or write."""

    fields: Tuple[str, ...] = ("x-custom",)

    def __init__(self, prefixes: Any) -> None:
        self.field_prefixes = prefixes

    def inject(self, context: Any, carrier: Any, setter: Any) -> None:
        pass

    def extract(self, carrier: Any, context: Any, getter: Any) -> Any:
        return context


def test_field_prefixes_leave_out_an_empty_one_and_those_that_are_not_text() -> None:
    composite = CompositePropagator([_Custom(("", 7, None, "X-Custom-"))])
    assert composite.field_prefixes == ("x-custom-",)


def test_field_prefixes_given_as_one_string_are_one_prefix() -> None:
    assert CompositePropagator([_Custom("x-custom-")]).field_prefixes == ("x-custom-",)


def test_field_prefixes_that_are_not_iterable_are_none() -> None:
    composite = CompositePropagator([_Custom(42), TraceContextPropagator()])
    assert (composite.field_prefixes, composite.fields) == ((), ("x-custom", "traceparent",
                                                                 "tracestate"))


# ------------------------------------------------------------------ HTTP clients, end to end


class _Echo(BaseHTTPRequestHandler):
    """Answers every GET with the request's headers as JSON, names in lower case."""

    def do_GET(self) -> None:
        body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def echo_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def _requests(url: str, headers: Dict[str, str]) -> Dict[str, str]:
    with traced_session(requests.Session()) as session:
        return dict(session.get(url, headers=headers, timeout=5).json())


def _httpx(url: str, headers: Dict[str, str]) -> Dict[str, str]:
    with httpx.Client(transport=TracingTransport(), timeout=5) as client:
        return dict(client.get(url, headers=headers).json())


def _urllib(url: str, headers: Dict[str, str]) -> Dict[str, str]:
    with build_opener().open(urllib.request.Request(url, headers=headers), timeout=5) as response:
        return dict(json.loads(response.read()))


CLIENTS: Dict[str, Callable[[str, Dict[str, str]], Dict[str, str]]] = {
    "requests": _requests, "httpx": _httpx, "urllib": _urllib,
}
# Another hop's headers, as a proxy forwarding what it received would send them on.
FORWARDED = {
    "X-B3-TraceId": "80f198ee56343ba864fe8b2a57d3eff7", "X-B3-SpanId": "e457b5a2e4d86bd1",
    "X-B3-ParentSpanId": "05e3ac9a4f6e3b90", "X-B3-Sampled": "1",
    "uberctx-tenant": "other-trace", "Uberctx-User": "mallory", "jaeger-debug-id": "abc",
    "jaeger-baggage": "k=v", "x-request-id": "kept",
}


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_client_drops_another_hops_b3_parent_and_jaeger_baggage(echo_url: str, client: str) -> None:
    tracer = tracing.get_tracer("proxy")
    with capture(propagators=["b3multi", "jaeger"]), tracer.span("proxy") as span:
        sent = CLIENTS[client](echo_url, FORWARDED)
    stale = {"x-b3-parentspanid", "uberctx-tenant", "uberctx-user", "jaeger-debug-id",
             "jaeger-baggage"}
    assert (stale & set(sent), sent["x-b3-traceid"], sent["x-request-id"]) == (
        set(), span.context.trace_id_hex, "kept")


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_client_sends_the_new_contexts_jaeger_baggage_in_place_of_forwarded(
    echo_url: str, client: str
) -> None:
    forwarded = {"uberctx-tenant": "theirs", "Uberctx-User": "x"}
    with capture(propagators=["jaeger"]), tracing.context.use_baggage({"tenant": "ours"}), \
            tracing.get_tracer("proxy").span("proxy"):
        sent = CLIENTS[client](echo_url, forwarded)
    assert {k: v for k, v in sent.items() if k.startswith("uberctx-")} == {"uberctx-tenant": "ours"}
