"""WSGI middleware: one SERVER span per request, current while the application runs.

::

    from tracing_api_http import WSGIMiddleware

    app = WSGIMiddleware(app)                                  # Flask: app.wsgi_app = ...

The span ends when the server closes the response body (PEP 3333 ``close()``), so a streamed
body is inside it. Name it after a route template with ``route=`` (a function of the environ)
or by calling ``tracing_api_http.set_route("/users/{id}")`` from the handler.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

from tracing_api.context import AttachToken, Context, attach, detach
from tracing_api.propagation import ENVIRON

from . import _semconv, _server
from ._server import Public, Request

_log = logging.getLogger("tracing_api_http")

Environ = Dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]


class WSGIMiddleware:
    """Traces every request to the WSGI application ``app``.

    ``route``: a function of the environ returning the route template (``/users/{id}``) or None.
    ``public``: True, or a predicate of the environ, for endpoints at the trust boundary: the
    caller's context becomes a link, not the parent. ``trusted_networks``: when given, callers
    whose address is outside these networks (``"10.0.0.0/8"``) are treated as public too.
    """

    def __init__(
        self, app: WSGIApp, *, route: Optional[Callable[[Environ], Optional[str]]] = None,
        public: Public = False, trusted_networks: Optional[Iterable[str]] = None,
    ) -> None:
        self.app = app
        self._options = _server.Options(route, public, trusted_networks)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        """Run the application inside a SERVER span."""
        try:
            span, context, request = self._start(environ)
        except Exception:  # tracing must never stop the request
            _log.debug("could not start a server span", exc_info=True)
            return self.app(environ, start_response)

        def traced_start_response(
            status: str, headers: List[Tuple[str, str]], *args: Any, **kwargs: Any
        ) -> Any:
            # PEP 3333 lets the application pass ``exc_info`` by position or by keyword: it is
            # forwarded exactly as given, so the server sees the call the application made.
            try:
                request.set_status(int(str(status)[:3]))
            except Exception:
                _log.debug("unreadable WSGI status line", exc_info=True)
            return start_response(status, headers, *args, **kwargs)

        token = attach(context)
        request_token = _server.enter(request)
        try:
            result = self.app(environ, traced_start_response)
        except BaseException as exc:
            request.fail(exc)
            span.end()
            raise
        finally:
            _server.leave(request_token)
            detach(token)
        if type(result) is list or type(result) is tuple:
            # No application code runs while a list is iterated: only closing matters.
            return _ListBody(result, span)
        return _Body(result, span, context, request)

    def _start(self, environ: Environ) -> Tuple[Any, Context, Request]:
        options = self._options
        method, original = _semconv.method(environ.get("REQUEST_METHOD"))
        client = environ.get("REMOTE_ADDR")
        attributes = _attributes(environ, method, original, client)
        public = options.is_public(environ, client if isinstance(client, str) else None)
        return _server.start(
            environ, ENVIRON, method, options.resolve_route(environ), attributes, public
        )


def _text(value: object) -> Optional[str]:
    """A WSGI string (bytes carried as Latin-1) as the text the client meant (UTF-8)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        value = value.encode("latin-1").decode("utf-8", "replace")
    except UnicodeEncodeError:  # already real text (some servers decode themselves)
        pass
    return _semconv.cap(value)


def _attributes(
    environ: Environ, method: str, original: Optional[str], client: object
) -> Dict[str, object]:
    scheme = environ.get("wsgi.url_scheme")
    scheme = scheme if scheme in ("http", "https") else "http"
    attributes: Dict[str, object] = {"http.request.method": method, "url.scheme": scheme}
    if original is not None:
        attributes["http.request.method_original"] = original
    path = _text(str(environ.get("SCRIPT_NAME") or "") + str(environ.get("PATH_INFO") or ""))
    attributes["url.path"] = path or "/"
    query = _text(environ.get("QUERY_STRING"))
    if query:
        attributes["url.query"] = _semconv.redact_query(query)
    default_port = 443 if scheme == "https" else 80
    host = environ.get("HTTP_HOST")
    if isinstance(host, str) and host:
        address, port = _semconv.split_host(host, default_port)
    else:
        address = _semconv.cap(str(environ.get("SERVER_NAME") or ""))
        port_text = str(environ.get("SERVER_PORT") or "")
        digits = port_text.isascii() and port_text.isdigit() and len(port_text) <= 5
        port = int(port_text) if digits else None
    if address:
        attributes["server.address"] = address
    if port is not None:
        attributes["server.port"] = port
    if isinstance(client, str) and client:
        attributes["client.address"] = _semconv.cap(client)
    agent = _text(environ.get("HTTP_USER_AGENT"))
    if agent:
        attributes["user_agent.original"] = agent
    protocol = environ.get("SERVER_PROTOCOL")
    version = _semconv.protocol_version(protocol) if isinstance(protocol, str) else None
    if version:
        attributes["network.protocol.version"] = version
    return attributes


class _ListBody:
    """A body the application returned whole: iterated as is; ends the span on close."""

    __slots__ = ("_result", "_span")

    def __init__(self, result: Iterable[bytes], span: Any) -> None:
        self._result = result
        self._span = span

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._result)

    def __len__(self) -> int:  # lets a server set Content-Length for a one-chunk body
        return len(self._result)  # type: ignore[arg-type]

    def close(self) -> None:
        """End the span (the server has sent the body)."""
        self._span.end()


class _Body:
    """The response body: iterated with the request's context current; ends the span on close."""

    __slots__ = ("_context", "_iterator", "_request", "_result", "_span")

    def __init__(self, result: Iterable[bytes], span: Any, context: Context, request: Request):
        self._result = result
        self._iterator: Optional[Iterator[bytes]] = None
        self._span = span
        self._context = context
        self._request = request

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        token = self._enter()
        try:
            if self._iterator is None:
                self._iterator = iter(self._result)
            return next(self._iterator)
        except StopIteration:
            raise
        except BaseException as exc:
            self._request.fail(exc)
            self._span.end()
            raise
        finally:
            self._leave(token)

    def close(self) -> None:
        """Close the application's body (PEP 3333) and end the span."""
        token = self._enter()
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                close()
        except BaseException as exc:
            self._request.fail(exc)
            raise
        finally:
            self._leave(token)
            self._span.end()

    def _enter(self) -> Tuple[AttachToken, Any]:
        return attach(self._context), _server.enter(self._request)

    def _leave(self, token: Tuple[AttachToken, Any]) -> None:
        _server.leave(token[1])
        detach(token[0])
