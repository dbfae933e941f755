"""atheris harness: the WSGI and ASGI middleware and the gRPC server interceptor, hostile requests.

Run locally (see docs/reliability.md)::

    python fuzz/fuzz_requests.py -atheris_runs=100000

Every installed propagator is configured. A crash is an exception out of the middleware or the
interceptor, or a request whose handler did not run or whose answer did not come back.
"""

from __future__ import annotations

import asyncio
import sys
from importlib.metadata import entry_points
from typing import Any, Dict, List

import atheris  # type: ignore[import-not-found,import-untyped,unused-ignore]

with atheris.instrument_imports():
    import grpc
    import tracing_api_grpc
    from tracing_api_http import ASGIMiddleware, WSGIMiddleware

    from tracing_api.testing import capture

_GROUP = entry_points().select(group="tracing_api.propagators")
PROPAGATORS = [ep.load()() for ep in sorted(_GROUP, key=lambda ep: ep.name)]
KEYS = ["traceparent", "tracestate", "baggage", "b3", "x-b3-traceid", "x-cloud-trace-context",
        "grpc-trace-bin", "uber-trace-id", "uberctx-user", "host", "user-agent"]
LOOP = asyncio.new_event_loop()


def _headers(data: Any) -> List[Any]:
    return [(KEYS[data.ConsumeIntInRange(0, len(KEYS) - 1)] if data.ConsumeBool()
             else data.ConsumeUnicode(12), data.ConsumeBytes(data.ConsumeIntInRange(0, 300)))
            for _ in range(data.ConsumeIntInRange(0, 8))]


def _wsgi(headers: List[Any], public: bool) -> None:
    def app(environ: Dict[str, Any], start_response: Any) -> List[bytes]:
        start_response("200 OK", [])
        return [b"ok"]

    environ: Dict[str, Any] = {"REQUEST_METHOD": "GET", "PATH_INFO": "/"}
    for name, value in headers:
        environ["HTTP_" + name.upper().replace("-", "_")] = value.decode("latin-1")
    body = WSGIMiddleware(app, public=public)(environ, lambda *a: None)
    assert list(body) == [b"ok"]
    getattr(body, "close", lambda: None)()


def _asgi(headers: List[Any], public: bool) -> None:
    sent: List[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def receive() -> Dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/", "query_string": b"",
             "headers": [(n.encode("utf-8", "surrogatepass"), v) for n, v in headers]}
    LOOP.run_until_complete(ASGIMiddleware(app, public=public)(scope, receive, send))
    assert len(sent) == 2


class _Context:
    def __init__(self, metadata: Any) -> None:
        self.metadata = metadata

    def invocation_metadata(self) -> Any:
        return self.metadata

    def peer(self) -> str:
        return "ipv4:127.0.0.1:1"

    def add_callback(self, callback: Any) -> bool:
        return True


class _Details:
    def __init__(self, method: str, metadata: Any) -> None:
        self.method = method
        self.invocation_metadata = metadata


def _grpc(headers: List[Any], method: str) -> None:
    metadata = [(n, v if n.endswith("-bin") else v.decode("latin-1")) for n, v in headers]
    (interceptor,) = tracing_api_grpc.server_interceptors()
    handler: Any = interceptor.intercept_service(
        lambda details: grpc.unary_unary_rpc_method_handler(lambda request, context: b"ok"),
        _Details(method, metadata))
    assert handler.unary_unary(b"", _Context(metadata)) == b"ok"


def one_input(raw: bytes) -> None:
    """One hostile request through each entry point."""
    data = atheris.FuzzedDataProvider(raw)
    headers = _headers(data)
    public = data.ConsumeBool()
    _wsgi(headers, public)
    _asgi(headers, public)
    _grpc(headers, data.ConsumeUnicode(40))


def main() -> None:
    """Fuzz the integrations' entry points."""
    with capture(propagators=PROPAGATORS):
        atheris.Setup(sys.argv, one_input)
        atheris.Fuzz()


if __name__ == "__main__":
    main()
