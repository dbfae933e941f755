"""``httpx`` tracing: sync and async transports that start a CLIENT span per request.

::

    import httpx
    from tracing_api_http import AsyncTracingTransport, TracingTransport

    client = httpx.Client(transport=TracingTransport())
    async_client = httpx.AsyncClient(transport=AsyncTracingTransport())
    # wrap a configured transport: TracingTransport(httpx.HTTPTransport(retries=2))

httpx follows redirects above the transport, so each hop is its own span (a sibling under the
caller's span) with its own ``traceparent``. The span ends when the response headers arrive;
4xx and 5xx mark it as an error, as do transport errors (recorded as exceptions).
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Optional

import httpx

from . import _client


def _version(response: httpx.Response) -> Optional[str]:
    value = response.extensions.get("http_version")
    return value.decode("ascii", "replace") if isinstance(value, bytes) else None


class TracingTransport(httpx.BaseTransport):
    """Wraps an ``httpx`` transport (by default ``httpx.HTTPTransport(**kwargs)``)."""

    def __init__(self, transport: Optional[httpx.BaseTransport] = None, **kwargs: Any) -> None:
        self.transport = transport if transport is not None else httpx.HTTPTransport(**kwargs)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through the wrapped transport inside a CLIENT span."""
        span, context = _client.start(request.method, str(request.url))
        _client.inject(context, request.headers)
        try:
            response = self.transport.handle_request(request)
        except BaseException as exc:
            _client.fail(span, exc)
            raise
        _client.finish(span, response.status_code, _version(response))
        return response

    def close(self) -> None:
        """Close the wrapped transport."""
        self.transport.close()

    def __enter__(self) -> TracingTransport:
        self.transport.__enter__()
        return self

    def __exit__(
        self, exc_type: Optional[type[BaseException]] = None,
        exc: Optional[BaseException] = None, tb: Optional[TracebackType] = None,
    ) -> None:
        self.transport.__exit__(exc_type, exc, tb)


class AsyncTracingTransport(httpx.AsyncBaseTransport):
    """Wraps an async ``httpx`` transport (by default ``httpx.AsyncHTTPTransport(**kwargs)``)."""

    def __init__(
        self, transport: Optional[httpx.AsyncBaseTransport] = None, **kwargs: Any
    ) -> None:
        self.transport = (
            transport if transport is not None else httpx.AsyncHTTPTransport(**kwargs)
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through the wrapped transport inside a CLIENT span."""
        span, context = _client.start(request.method, str(request.url))
        _client.inject(context, request.headers)
        try:
            response = await self.transport.handle_async_request(request)
        except BaseException as exc:
            _client.fail(span, exc)
            raise
        _client.finish(span, response.status_code, _version(response))
        return response

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        await self.transport.aclose()

    async def __aenter__(self) -> AsyncTracingTransport:
        await self.transport.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: Optional[type[BaseException]] = None,
        exc: Optional[BaseException] = None, tb: Optional[TracebackType] = None,
    ) -> None:
        await self.transport.__aexit__(exc_type, exc, tb)
