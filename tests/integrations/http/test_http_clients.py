"""Client tracing for urllib, requests and httpx (sync and async) against a real http.server."""

from __future__ import annotations

import asyncio
import socket
import urllib.error
import urllib.request
from typing import Any, Callable, Dict

import httpx
import pytest
import requests
from tracing_api_http import (
    AsyncTracingTransport,
    TracingTransport,
    build_opener,
    traced_session,
)

import tracing_api
from tracing_api import SpanKind, StatusCode
from tracing_api.export import SpanData
from tracing_api.testing import CapturedSpans, capture

tracer = tracing_api.get_tracer(__name__)


def _urllib(url: str) -> int:
    try:
        with build_opener().open(url, timeout=5) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as error:
        error.close()
        return error.code


def _requests(url: str) -> int:
    with traced_session() as session:
        return session.get(url, timeout=5).status_code


def _httpx(url: str) -> int:
    with httpx.Client(transport=TracingTransport(), follow_redirects=True, timeout=5) as client:
        return client.get(url).status_code


def _httpx_async(url: str) -> int:
    async def get() -> int:
        async with httpx.AsyncClient(
            transport=AsyncTracingTransport(), follow_redirects=True, timeout=5
        ) as client:
            return (await client.get(url)).status_code

    return asyncio.run(get())


CLIENTS: Dict[str, Callable[[str], int]] = {
    "urllib": _urllib, "requests": _requests, "httpx": _httpx, "httpx-async": _httpx_async,
}


@pytest.fixture(params=sorted(CLIENTS))
def get(request: pytest.FixtureRequest) -> Callable[[str], int]:
    """A traced GET through one client library; returns the status code."""
    return CLIENTS[request.param]


def _clients(spans: CapturedSpans) -> list[SpanData]:
    return [s for s in spans if s.kind == SpanKind.CLIENT]


def test_success_span_has_semconv_attributes(
    trace_capture: CapturedSpans, backend: Any, get: Callable[[str], int]
) -> None:
    with tracer.span("caller"):
        assert get(backend.url + "/ok?x=1") == 200
    (span,) = _clients(trace_capture)
    assert span.name == "GET"
    expected = {
        "http.request.method": "GET", "url.full": backend.url + "/ok?x=1",
        "server.address": "127.0.0.1", "server.port": backend.port,
        "http.response.status_code": 200,
    }
    assert {k: span.attributes.get(k) for k in expected} == expected
    assert span.status.code == StatusCode.UNSET


def test_client_span_is_child_of_caller_and_injected(
    trace_capture: CapturedSpans, backend: Any, get: Callable[[str], int]
) -> None:
    with tracer.span("caller"):
        get(backend.url + "/ok")
    span = trace_capture.assert_span("GET", kind=SpanKind.CLIENT, parent="caller")
    context = span.context
    assert backend.requests[-1]["traceparent"] == (
        f"00-{context.trace_id_hex}-{context.span_id_hex}-{context.trace_flags:02x}"
    )


@pytest.mark.parametrize(("path", "status"), [("/missing", 404), ("/broken", 500)])
def test_error_status_marks_client_span_as_error(
    trace_capture: CapturedSpans, backend: Any, get: Callable[[str], int], path: str, status: int
) -> None:
    assert get(backend.url + path) == status
    (span,) = _clients(trace_capture)
    assert span.status.code == StatusCode.ERROR
    assert span.attributes["error.type"] == str(status)


def test_connection_refused_is_recorded_and_raised(
    trace_capture: CapturedSpans, get: Callable[[str], int]
) -> None:
    with socket.socket() as sock:  # a port that was bound and closed refuses connections
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(OSError if get is _urllib else Exception):
        get(f"http://127.0.0.1:{port}/ok")
    (span,) = _clients(trace_capture)
    assert span.status.code == StatusCode.ERROR
    assert [e.name for e in span.events] == ["exception"]
    assert "error.type" in span.attributes


def test_each_redirect_hop_is_a_sibling_span_with_its_own_traceparent(
    trace_capture: CapturedSpans, backend: Any, get: Callable[[str], int]
) -> None:
    with tracer.span("caller"):
        assert get(backend.url + "/redirect") == 200
    hops = sorted(_clients(trace_capture), key=lambda s: s.start_time)
    caller = trace_capture.find("caller")
    assert [h.attributes["http.response.status_code"] for h in hops] == [302, 200]
    assert all(h.parent is not None and h.parent.span_id == caller.context.span_id for h in hops)
    sent = [r["traceparent"].split("-")[2] for r in backend.requests]
    assert sent == [h.context.span_id_hex for h in hops]


def test_credentials_in_url_are_never_exported(
    trace_capture: CapturedSpans, backend: Any
) -> None:
    url = backend.url.replace("http://", "http://user:secret@") + "/ok?sig=signed&x=1"
    _requests(url)
    _httpx(url)
    exported = [s.attributes["url.full"] for s in _clients(trace_capture)]
    assert len(exported) == 2
    for value in exported:
        assert "secret" not in str(value)
        assert "signed" not in str(value)
        assert str(value).startswith("http://REDACTED:REDACTED@127.0.0.1")


def test_requests_session_keeps_custom_adapter_settings(backend: Any) -> None:
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(max_retries=3))
    traced_session(session)
    traced_session(session)  # twice: still one layer of tracing
    adapter = session.get_adapter(backend.url)
    assert adapter.max_retries.total == 3  # type: ignore[attr-defined]
    assert not isinstance(adapter.adapter, type(adapter))  # type: ignore[attr-defined]


def test_retry_set_on_a_traced_sessions_adapter_after_wrapping_is_used(backend: Any) -> None:
    from urllib3.util.retry import Retry

    def attempts(session: requests.Session) -> int:
        before = len(backend.requests)
        session.get_adapter(backend.url).max_retries = Retry(  # type: ignore[attr-defined]
            total=2, status_forcelist=[503], backoff_factor=0, raise_on_status=False
        )
        with session:
            assert session.get(backend.url + "/unavailable", timeout=5).status_code == 503
        return len(backend.requests) - before

    untraced = attempts(requests.Session())
    assert untraced == 3
    assert attempts(traced_session(requests.Session())) == untraced


def test_a_traced_session_pickles_into_a_working_traced_session(
        trace_capture: CapturedSpans, backend: Any) -> None:
    import pickle

    copy = pickle.loads(pickle.dumps(traced_session(requests.Session())))
    adapter = copy.get_adapter(backend.url)
    # Special names are the wrapper's own: before Python 3.11 objects had no __getstate__, and
    # forwarding it would pickle the wrapped adapter's state as this object's.
    with pytest.raises(AttributeError):
        type(adapter).__getattr__(adapter, "__getstate__")
    with copy:
        assert copy.get(backend.url + "/ok", timeout=5).status_code == 200
    assert [span.kind for span in trace_capture.spans] == [SpanKind.CLIENT]


def test_opener_with_its_own_tls_context_traces_https_requests(
    trace_capture: CapturedSpans, tls_backend: Any
) -> None:
    """``urlopen(url, context=...)`` bypasses the installed opener; this is the traced way."""
    from tracing_api_http import TracingHTTPSHandler

    backend, client_tls = tls_backend
    opener = build_opener(TracingHTTPSHandler(context=client_tls))
    with tracer.span("caller"), opener.open(backend.url + "/ok", timeout=5) as response:
        assert response.status == 200
    span = trace_capture.assert_span("GET", kind=SpanKind.CLIENT, parent="caller")
    assert span.attributes["url.full"] == backend.url + "/ok"
    assert backend.requests[-1]["traceparent"].split("-")[2] == span.context.span_id_hex


def test_build_opener_refuses_untraced_http_handler() -> None:
    import urllib.request

    with pytest.raises(TypeError, match="TracingHTTPSHandler"):
        build_opener(urllib.request.HTTPSHandler())


def test_untraced_caller_context_is_forwarded_when_nothing_is_configured(backend: Any) -> None:
    from tracing_api import SpanContext
    from tracing_api.context import Context, use_context

    remote = SpanContext(0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7, 1, is_remote=True)
    with use_context(Context().with_span_context(remote)):
        _httpx(backend.url + "/ok")
    assert backend.requests[-1]["traceparent"] == (
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    )


def test_failed_request_records_no_url_secret(
    trace_capture: CapturedSpans, get: Callable[[str], int]
) -> None:
    """Transport errors quote the URL: the recorded message and stack trace are scrubbed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(OSError if get is _urllib else Exception):
        get(f"http://127.0.0.1:{port}/obj?X-Amz-Signature=SECRET123&Signature=SECRET456")
    (span,) = _clients(trace_capture)
    exported = repr(span)
    assert "SECRET123" not in exported
    assert "SECRET456" not in exported
    assert str(span.attributes["url.full"]).endswith("X-Amz-Signature=REDACTED&Signature=REDACTED")


def test_binary_propagator_never_breaks_an_http_request(
    backend: Any, get: Callable[[str], int]
) -> None:
    """grpc-trace-bin is bytes in gRPC metadata; over HTTP it travels as base64 text."""
    import base64

    with capture(propagators=["tracecontext", "grpc_binary"]):
        for _ in range(40):  # random ids contain \r and \n bytes often enough
            with tracer.span("caller"):
                assert get(f"{backend.url}/ok") == 200
    sent = [r["grpc-trace-bin"] for r in backend.requests]
    assert len(sent) == 40
    assert all(len(base64.b64decode(v + "=" * (-len(v) % 4))) == 29 for v in sent)


FORWARDED = {"traceparent": "00-11111111111111111111111111111111-2222222222222222-01",
             "tracestate": "vendor=opaque-for-trace-1111", "baggage": "user=mallory"}
SENDERS: Dict[str, Callable[[str], Any]] = {
    "urllib": lambda url: build_opener().open(
        urllib.request.Request(url, headers=FORWARDED), timeout=5).read(),
    "requests": lambda url: traced_session().get(url, headers=FORWARDED, timeout=5),
    "httpx": lambda url: httpx.Client(transport=TracingTransport(), timeout=5).get(
        url, headers=FORWARDED),
}


@pytest.mark.parametrize("client", sorted(SENDERS))
def test_headers_of_another_trace_on_the_request_do_not_travel_with_the_new_traceparent(
    trace_capture: CapturedSpans, backend: Any, client: str,
) -> None:
    with tracer.span("caller"):  # a context with no tracestate and no baggage
        SENDERS[client](backend.url + "/ok")
    sent = backend.requests[-1]
    span = trace_capture.assert_span("GET", kind=SpanKind.CLIENT, parent="caller")
    assert sent["traceparent"].split("-")[1:3] == [span.context.trace_id_hex,
                                                   span.context.span_id_hex]
    assert "tracestate" not in sent and "baggage" not in sent
