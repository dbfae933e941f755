"""Hostile requests: the middleware never raises into the server, whatever the headers hold."""

from __future__ import annotations

import asyncio
import os
from typing import Any, Dict, Iterator, List

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tracing_api_http import ASGIMiddleware, WSGIMiddleware
from tracing_api_http._semconv import redact_url, split_host

from tracing_api import SpanKind

EXAMPLES = int(os.environ.get("TRACING_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

HEADER_NAMES = ["traceparent", "tracestate", "baggage", "host", "user-agent", "x-other"]
latin1 = st.text(st.characters(min_codepoint=0, max_codepoint=255), max_size=300)
anything = st.one_of(latin1, st.text(max_size=50), st.binary(max_size=50), st.none(),
                     st.integers(), st.lists(st.text(max_size=5), max_size=3))
oversized = st.integers(min_value=10_000, max_value=100_000).map(lambda n: "a" * n)


def _wsgi_app(environ: Dict[str, Any], start_response: Any) -> List[bytes]:
    start_response("200 OK", [])
    return [b"fine"]


@FUZZ
@given(
    headers=st.dictionaries(st.sampled_from(HEADER_NAMES), st.one_of(latin1, oversized), max_size=6),
    extra=st.dictionaries(st.sampled_from(["REQUEST_METHOD", "PATH_INFO", "QUERY_STRING",
                                           "SCRIPT_NAME", "SERVER_PORT", "SERVER_NAME",
                                           "REMOTE_ADDR", "SERVER_PROTOCOL", "wsgi.url_scheme"]),
                          anything, max_size=9),
    public=st.booleans(),
)
def test_wsgi_middleware_never_raises_for_hostile_environ(
    trace_capture: Any, headers: Dict[str, str], extra: Dict[str, Any], public: bool
) -> None:
    environ: Dict[str, Any] = {"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()}
    environ.update(extra)
    app = WSGIMiddleware(_wsgi_app, public=public, trusted_networks=["10.0.0.0/8"])
    statuses: List[str] = []
    trace_capture.clear()
    result = app(environ, lambda status, response_headers, *a: statuses.append(status))
    assert list(result) == [b"fine"]
    result.close()  # type: ignore[attr-defined]
    assert statuses == ["200 OK"]
    assert [s.kind for s in trace_capture] == [SpanKind.SERVER]


header_pair = st.tuples(
    st.one_of(st.sampled_from([n.encode() for n in HEADER_NAMES]), st.binary(max_size=20)),
    st.one_of(st.binary(max_size=300), oversized.map(str.encode)),
)
malformed_entry = st.one_of(st.none(), st.integers(), st.tuples(st.binary()), st.text(max_size=5))


@FUZZ
@given(
    headers=st.lists(st.one_of(header_pair, malformed_entry), max_size=8),
    method=anything, path=anything, client=anything, server=anything, version=anything,
    query=anything,
)
def test_asgi_middleware_never_raises_for_hostile_scope(
    trace_capture: Any, headers: List[Any], method: Any, path: Any, client: Any, server: Any,
    version: Any, query: Any,
) -> None:
    sent: List[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"fine"})

    async def receive() -> Dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "http", "headers": headers, "method": method, "path": path,
             "client": client, "server": server, "http_version": version, "query_string": query}
    trace_capture.clear()
    middleware = ASGIMiddleware(app, trusted_networks=["10.0.0.0/8"])
    _loop().run_until_complete(middleware(scope, receive, send))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert [s.kind for s in trace_capture] == [SpanKind.SERVER]


_LOOP: List[asyncio.AbstractEventLoop] = []


def _loop() -> asyncio.AbstractEventLoop:
    if not _LOOP:
        _LOOP.append(asyncio.new_event_loop())
    return _LOOP[0]


@pytest.fixture(scope="module", autouse=True)
def _close_loop() -> Iterator[None]:
    yield
    while _LOOP:
        _LOOP.pop().close()


userinfo_text = st.text(st.characters(whitelist_categories=("L", "N")), min_size=1, max_size=20)


@FUZZ
@given(user=userinfo_text, password=userinfo_text, path=st.text(max_size=30))
def test_redacted_url_never_contains_the_password(user: str, password: str, path: str) -> None:
    url = f"https://{user}:{password}@example.com/{path}"
    assert redact_url(url).startswith("https://REDACTED:REDACTED@example.com/")


@FUZZ
@given(value=st.one_of(latin1, st.text()))
def test_split_host_never_raises_and_bounds_the_port(value: str) -> None:
    host, port = split_host(value, 80)
    assert isinstance(host, str)
    assert port is None or 0 <= port <= 65535


@FUZZ
@given(url=st.text(max_size=200))
def test_redact_url_never_raises(url: str) -> None:
    assert isinstance(redact_url(url), str)


def test_split_host_ignores_non_ascii_digits_in_port() -> None:
    assert split_host("example.com:\u00b9", 80) == ("example.com", 80)
