"""HTTP tracing for tracing-api: server middleware (WSGI, ASGI) and client tracing (urllib,
requests, httpx), with OpenTelemetry's HTTP semantic-convention attribute names.

::

    from tracing_api_http import ASGIMiddleware, WSGIMiddleware, build_opener

    app = WSGIMiddleware(wsgi_app)          # SERVER spans, the caller's trace continued
    app = ASGIMiddleware(asgi_app)          # Starlette: starlette_app.add_middleware(ASGIMiddleware)
    opener = build_opener()                 # urllib.request with CLIENT spans and traceparent

``requests`` and ``httpx`` are optional: ``traced_session`` / ``TracingAdapter`` and
``TracingTransport`` / ``AsyncTracingTransport`` import them when first used. Import these
four by name; they are left out of ``__all__`` so that ``from tracing_api_http import *``
works without requests or httpx installed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._server import set_route
from ._version import __version__
from .asgi import ASGIMiddleware, starlette_route
from .urllib_client import TracingHTTPHandler, TracingHTTPSHandler, build_opener
from .wsgi import WSGIMiddleware

if TYPE_CHECKING:  # the ``as`` form re-exports them for type checkers
    from .httpx_client import AsyncTracingTransport as AsyncTracingTransport
    from .httpx_client import TracingTransport as TracingTransport
    from .requests_client import TracingAdapter as TracingAdapter
    from .requests_client import traced_session as traced_session

_LAZY = {
    "AsyncTracingTransport": "httpx_client",
    "TracingTransport": "httpx_client",
    "TracingAdapter": "requests_client",
    "traced_session": "requests_client",
}


def __getattr__(name: str) -> Any:
    # requests and httpx load only when their tracing is asked for, so neither is a dependency.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tracing_api_http' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


# The lazy names (``_LAZY``) are public too, but a star import would load their libraries.
__all__ = [
    "ASGIMiddleware",
    "TracingHTTPHandler",
    "TracingHTTPSHandler",
    "WSGIMiddleware",
    "__version__",
    "build_opener",
    "set_route",
    "starlette_route",
]
