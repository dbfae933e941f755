"""``urllib.request`` tracing: handlers that start a CLIENT span per request and inject headers.

::

    from tracing_api_http import build_opener

    opener = build_opener()                      # same arguments as urllib.request.build_opener
    with opener.open("http://127.0.0.1:8080/hello", timeout=5) as response:
        body = response.read()

    urllib.request.install_opener(build_opener())   # or trace urllib.request.urlopen(url)

``urlopen(..., context=...)`` (and ``cafile=``/``capath=``) builds its own untraced opener and
ignores the installed one: for your own TLS context open through
``build_opener(TracingHTTPSHandler(context=context))``.

Each hop of a followed redirect is its own span (a sibling under the caller's span). The span
ends when the response headers arrive; 4xx and 5xx responses mark it as an error, as do
connection failures (recorded as exceptions).
"""

from __future__ import annotations

import urllib.request
from typing import Any

from . import _client


class _UnredirectedSetter:
    """Writes trace headers as unredirected headers, so a redirect hop never forwards the
    previous hop's ``traceparent``: each hop injects its own.
    """

    __slots__ = ()

    def set(self, carrier: Any, key: str, value: Any) -> None:
        carrier.add_unredirected_header(
            key, value if isinstance(value, str) else value.decode("latin-1")
        )


_SETTER = _UnredirectedSetter()


class _Traced:
    """Wraps ``do_open``, where one HTTP exchange happens, in a CLIENT span."""

    def do_open(self, http_class: Any, req: urllib.request.Request, **kwargs: Any) -> Any:
        """Open ``req`` inside a CLIENT span."""
        span, context = _client.start(req.get_method(), req.full_url)
        _client.inject(context, req, _SETTER)
        try:
            response = super().do_open(http_class, req, **kwargs)  # type: ignore[misc]
        except BaseException as exc:
            _client.fail(span, exc)
            raise
        version = getattr(response, "version", None)
        _client.finish(
            span, getattr(response, "status", None),
            {10: "1.0", 11: "1.1"}.get(version) if isinstance(version, int) else None,
        )
        return response


class TracingHTTPHandler(_Traced, urllib.request.HTTPHandler):
    """``urllib.request.HTTPHandler`` with a CLIENT span per request."""


class TracingHTTPSHandler(_Traced, urllib.request.HTTPSHandler):
    """``urllib.request.HTTPSHandler`` with a CLIENT span per request; takes the same
    arguments (``context=`` for an ``ssl.SSLContext``).
    """


def build_opener(*handlers: Any) -> urllib.request.OpenerDirector:
    """``urllib.request.build_opener(*handlers)`` with traced HTTP and HTTPS handlers.

    Pass a ``TracingHTTPSHandler(context=...)`` rather than an ``HTTPSHandler`` to use your own
    TLS context.
    """
    for handler in handlers:
        kind = handler if isinstance(handler, type) else type(handler)
        if issubclass(kind, (urllib.request.HTTPHandler, urllib.request.HTTPSHandler)) and (
            not issubclass(kind, _Traced)
        ):
            raise TypeError(
                f"{kind.__name__} would bypass tracing: pass TracingHTTPHandler or "
                "TracingHTTPSHandler (same arguments) from tracing_api_http instead"
            )
    defaults = [
        h for h in (TracingHTTPHandler, TracingHTTPSHandler)
        if not any(
            (isinstance(x, type) and issubclass(x, h)) or isinstance(x, h) for x in handlers
        )
    ]
    return urllib.request.build_opener(*defaults, *handlers)
