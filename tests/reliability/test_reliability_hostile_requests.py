"""Hostile requests at the integrations' entry points, with every propagator configured.

The gRPC server interceptors (sync and ``grpc.aio``) get invocation metadata of any shape, and
the WSGI and ASGI middleware get every format's headers, damaged: the handler always runs, its
answer always comes back, and exactly one SERVER span is recorded. Called directly, as a server
would call them, so hostile values the real transports would refuse reach the code too.
"""

from __future__ import annotations

import asyncio
import os
from importlib.metadata import entry_points
from typing import Any, Dict, List, Optional

import grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tracing_api as tracing
from tracing_api import SpanKind
from tracing_api.testing import capture

EXAMPLES = int(os.environ.get("TRACING_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

_found: Any = entry_points()
_group = (_found.select(group="tracing_api.propagators") if hasattr(_found, "select")
          else _found.get("tracing_api.propagators", []))
# Loaded once: looking entry points up costs milliseconds, every example would pay it.
ALL = [ep.load()() for ep in sorted(_group, key=lambda ep: ep.name)]

KEYS = ["traceparent", "tracestate", "baggage", "b3", "x-b3-traceid", "x-b3-spanid",
        "x-b3-sampled", "x-b3-flags", "x-cloud-trace-context", "grpc-trace-bin",
        "uber-trace-id", "uberctx-user", "jaeger-baggage", "authorization", "user-agent"]
VALID = ["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "k=v,k2=v2;p",
         "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1",
         "105445aa7843bc8bf206b12000100000/1;o=1",
         "4bf92f3577b34da6a3ce929d0e0e4736:00f067aa0ba902b7:0:1"]
text_value = st.one_of(st.sampled_from(VALID), st.text(max_size=120),
                       st.text(st.characters(min_codepoint=0, max_codepoint=255), max_size=120),
                       st.integers(1000, 100_000).map(lambda n: "x" * n))
any_value = st.one_of(text_value, st.binary(max_size=100), st.none(), st.integers(),
                      st.lists(text_value, max_size=2), st.floats())
key = st.one_of(st.sampled_from(KEYS), st.sampled_from(KEYS).map(str.upper), st.text(max_size=12),
                st.binary(max_size=12), st.none(), st.integers())
metadata = st.one_of(
    st.lists(st.one_of(st.tuples(key, any_value), st.none(), st.integers(), st.tuples(key),
                       st.tuples(key, any_value, any_value)), max_size=8),
    st.none(), st.integers(), st.text(max_size=10),
    st.lists(st.tuples(st.sampled_from(KEYS), text_value), max_size=6).map(tuple),
)
method = st.one_of(st.just("/helloworld.Greeter/SayHello"), st.text(max_size=60),
                   st.binary(max_size=60), st.none(), st.integers())


class ServicerContext:
    """What a grpc server hands a handler, reduced to what the interceptor reads."""

    def __init__(self, metadata: Any, peer: Any) -> None:
        self._metadata = metadata
        self._peer = peer

    def invocation_metadata(self) -> Any:
        return self._metadata

    def peer(self) -> Any:
        return self._peer

    def time_remaining(self) -> Optional[float]:
        return None

    def is_active(self) -> bool:
        return True

    def code(self) -> Any:
        return None

    def details(self) -> Any:
        return None

    def add_callback(self, callback: Any) -> bool:
        return True


class Details:
    def __init__(self, method: Any, metadata: Any) -> None:
        self.method = method
        self.invocation_metadata = metadata


def _say_hello(request: Any, context: Any) -> bytes:
    return b"hello " + bytes(request)


@FUZZ
@given(md=metadata, name=method, peer=st.one_of(st.just("ipv4:127.0.0.1:5000"), st.text(max_size=30),
                                                 st.none()))
def test_grpc_server_interceptor_runs_the_handler_for_any_metadata(md: Any, name: Any, peer: Any) -> None:
    import tracing_api_grpc

    interceptor: Any = tracing_api_grpc.server_interceptors()[0]
    handler = interceptor.intercept_service(
        lambda details: grpc.unary_unary_rpc_method_handler(_say_hello), Details(name, md))
    with capture(propagators=ALL) as spans:
        assert handler.unary_unary(b"x", ServicerContext(md, peer)) == b"hello x"
    assert [s.kind for s in spans] == [SpanKind.SERVER]


_LOOP: List[asyncio.AbstractEventLoop] = []


def _run(coroutine: Any) -> Any:
    if not _LOOP:
        _LOOP.append(asyncio.new_event_loop())
    return _LOOP[0].run_until_complete(coroutine)


class AioServicerContext(ServicerContext):
    def add_done_callback(self, callback: Any) -> None:
        pass


async def _say_hello_async(request: Any, context: Any) -> bytes:
    return b"hello " + bytes(request)


@FUZZ
@given(md=metadata, name=method)
def test_grpc_aio_server_interceptor_runs_the_handler_for_any_metadata(md: Any, name: Any) -> None:
    import tracing_api_grpc

    interceptor: Any = tracing_api_grpc.aio_server_interceptors()[0]

    async def continuation(details: Any) -> Any:
        return grpc.unary_unary_rpc_method_handler(_say_hello_async)

    async def call() -> Any:
        handler = await interceptor.intercept_service(continuation, Details(name, md))
        return await handler.unary_unary(b"x", AioServicerContext(md, "ipv6:[::1]:1"))

    with capture(propagators=ALL) as spans:
        assert _run(call()) == b"hello x"
    assert [s.kind for s in spans] == [SpanKind.SERVER]


def _wsgi_app(environ: Dict[str, Any], start_response: Any) -> List[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"fine"]


@FUZZ
@given(headers=st.dictionaries(st.sampled_from(KEYS), any_value, max_size=10), public=st.booleans())
def test_wsgi_middleware_with_every_propagator_answers_any_headers(
    headers: Dict[str, Any], public: bool,
) -> None:
    from tracing_api_http import WSGIMiddleware

    environ: Dict[str, Any] = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "wsgi.url_scheme": "http",
                               "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80"}
    environ.update({"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()})
    statuses: List[str] = []
    with capture(propagators=ALL) as spans:
        body = WSGIMiddleware(_wsgi_app, public=public)(environ, lambda s, h, *a: statuses.append(s))
        assert b"".join(body) == b"fine"
        getattr(body, "close", lambda: None)()
    assert statuses == ["200 OK"]
    assert [s.kind for s in spans] == [SpanKind.SERVER]


@FUZZ
@given(headers=st.lists(st.tuples(st.one_of(st.sampled_from([k.encode() for k in KEYS]),
                                            st.binary(max_size=12)),
                                  st.one_of(st.binary(max_size=200),
                                            text_value.map(lambda s: s.encode("utf-8", "replace")))),
                        max_size=10),
       public=st.booleans())
def test_asgi_middleware_with_every_propagator_answers_any_headers(
    headers: List[Any], public: bool,
) -> None:
    from tracing_api_http import ASGIMiddleware

    sent: List[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"fine"})

    async def receive() -> Dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/", "headers": headers,
             "client": ("203.0.113.9", 1234), "server": ("127.0.0.1", 80), "http_version": "1.1",
             "query_string": b"", "scheme": "http"}
    with capture(propagators=ALL) as spans:
        _run(ASGIMiddleware(app, public=public)(scope, receive, send))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert [s.kind for s in spans] == [SpanKind.SERVER]


def teardown_module() -> None:
    while _LOOP:
        _LOOP.pop().close()
    tracing.shutdown(timeout=1.0)
