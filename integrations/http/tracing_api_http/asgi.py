"""ASGI 3 middleware: one SERVER span per HTTP request, current while the application runs.

::

    from tracing_api_http import ASGIMiddleware

    app = ASGIMiddleware(app)                       # any ASGI 3 app
    starlette_app.add_middleware(ASGIMiddleware)    # or as Starlette middleware

The span ends when the last body chunk has been sent (``more_body`` false), or when the
application returns, whichever comes first, so a streamed response is inside it. With
Starlette the span is named after the matched route (``GET /users/{id}``); elsewhere pass
``route=`` (a function of the scope, called when the response starts) or call
``tracing_api_http.set_route``. Lifespan and WebSocket scopes pass through untouched.

An application that returns without starting a response is recorded as the 500 the server
sends, unless the client disconnected first (``http.disconnect`` received): that is the client
leaving, recorded as an ``http.disconnect`` event, with no status code and the status unset.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Awaitable, Callable, Dict, Iterable, MutableMapping, Optional, Tuple

from tracing_api.context import Context, attach, detach
from tracing_api.propagation import PAIRS

from . import _semconv, _server
from ._server import Public, Request

_log = logging.getLogger("tracing_api_http")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def starlette_route(scope: Scope) -> Optional[str]:
    """The path template of the route Starlette matched, or None: ``scope["route"].path``
    under the paths of the ``Mount``s it was reached through (``/api/v1`` + ``/users/{id}``).
    """
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str) or not path:
        return None
    # Starlette keeps only the innermost route in the scope; a Mount on the way leaves
    # ``app_root_path`` behind, and then the mount paths are found from the top router.
    top = scope.get("app_root_path")
    if not isinstance(top, str):
        return path
    full = _mounted(getattr(scope.get("router"), "routes", None), route, _below(scope, top), "", 0)
    return full if full else path


_MOUNT_DEPTH = 32  # deeper than any real application; stops a router that mounts itself


def _below(scope: Scope, root: str) -> str:
    """The request path under the application's root path, as Starlette's top router saw it."""
    path = scope.get("path")
    if not isinstance(path, str):
        return ""
    if root and path.startswith(root) and path[len(root):len(root) + 1] in ("", "/"):
        return path[len(root):]
    return path


def _mounted(routes: Any, target: Any, path: str, prefix: str, depth: int) -> Optional[str]:
    """``prefix`` + the mount paths leading to ``target`` + its path, following the mounts
    that match ``path`` (as Starlette routed), or None when ``target`` is not below ``routes``.
    """
    if not isinstance(routes, (list, tuple)) or depth > _MOUNT_DEPTH:
        return None
    for candidate in routes:
        if candidate is target:
            return prefix + str(target.path)
        inner = getattr(candidate, "routes", None)
        if not inner:
            continue
        regex = getattr(candidate, "path_regex", None)
        if regex is None:  # a Host: routes on the host name, the path passes through
            found = _mounted(inner, target, path, prefix, depth + 1)
        else:
            match = regex.match(path)
            rest = match.groupdict().get("path") if match is not None else None
            mount_path = getattr(candidate, "path", None)
            if not isinstance(rest, str) or not isinstance(mount_path, str):
                continue
            found = _mounted(inner, target, "/" + rest, prefix + mount_path, depth + 1)
        if found:
            return found
    return None


class ASGIMiddleware:
    """Traces every HTTP request to the ASGI 3 application ``app``.

    ``route``: a function of the scope returning the route template, called when the response
    starts (after the framework has routed); by default Starlette's matched route.
    ``public``: True, or a predicate of the scope, for endpoints at the trust boundary: the
    caller's context becomes a link, not the parent. ``trusted_networks``: when given, callers
    whose address is outside these networks (``"10.0.0.0/8"``) are treated as public too.
    """

    def __init__(
        self, app: ASGIApp, *, route: Optional[Callable[[Scope], Optional[str]]] = None,
        public: Public = False, trusted_networks: Optional[Iterable[str]] = None,
    ) -> None:
        self.app = app
        self._options = _server.Options(route or starlette_route, public, trusted_networks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the application inside a SERVER span."""
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        try:
            span, context, request = self._start(scope)
        except Exception:  # tracing must never stop the request
            _log.debug("could not start a server span", exc_info=True)
            await self.app(scope, receive, send)
            return
        state = _Exchange(self._options, scope, span, request)

        async def traced_receive() -> Message:
            message = await receive()
            if not state.started:  # only a disconnect before any response means something
                state.on_receive(message)
            return message

        async def traced_send(message: Message) -> None:
            done = state.on_send(message)
            await send(message)
            if done:  # the span lasts until here; it ends once the app returns (see finish)
                state.responded_at = time.time_ns()

        token = attach(context)
        request_token = _server.enter(request)
        try:
            await self.app(scope, traced_receive, traced_send)
        except BaseException as exc:
            request.fail(exc)  # also after the response: a background task's failure, say
            raise
        else:
            state.check_responded()
        finally:
            _server.leave(request_token)
            detach(token)
            state.finish()

    def _start(self, scope: Scope) -> Tuple[Any, Context, Request]:
        method, original = _semconv.method(scope.get("method"))
        client = _client(scope)
        attributes = _attributes(scope, method, original, client)
        public = self._options.is_public(scope, client)
        # The route is not known before the framework routes: the span is renamed later.
        return _server.start(scope, _HeadersOf(), method, None, attributes, public)


class _HeadersOf:
    """Reads the ASGI scope's ``headers`` pairs (the getter ``extract`` needs)."""

    __slots__ = ()

    def get_all(self, carrier: Any, key: str) -> Any:
        headers = carrier.get("headers")
        return PAIRS.get_all(headers, key) if isinstance(headers, (list, tuple)) else []

    def keys(self, carrier: Any) -> Any:
        headers = carrier.get("headers")
        return PAIRS.keys(headers) if isinstance(headers, (list, tuple)) else []


class _Exchange:
    """One request's response progress: status once, route once, end once."""

    __slots__ = ("_disconnected", "_finished", "_options", "_request", "_routed", "_scope",
                 "_span", "responded_at", "started")

    def __init__(self, options: _server.Options, scope: Scope, span: Any, request: Request):
        self._options = options
        self._scope = scope
        self._span = span
        self._request = request
        self._routed = False
        self._finished = False
        self.started = False
        self._disconnected = False  # the client left before the response started
        self.responded_at: Optional[int] = None  # when the last body chunk went out

    def on_send(self, message: Message) -> bool:
        """Record what ``message`` says; True when it completes the response."""
        try:
            kind = message.get("type")
            if kind == "http.response.start":
                self.started = True
                self._route()
                status = message.get("status")
                if isinstance(status, int):
                    self._request.set_status(status)
            elif kind == "http.response.body":
                return not message.get("more_body", False)
        except Exception:
            _log.debug("unreadable ASGI message", exc_info=True)
        return False

    def on_receive(self, message: Message) -> None:
        """Note an ``http.disconnect`` that arrives before the response has started."""
        try:
            if message.get("type") == "http.disconnect" and not self._disconnected:
                self._disconnected = True
                self._span.add_event("http.disconnect")
        except Exception:
            _log.debug("unreadable ASGI message", exc_info=True)

    def _route(self) -> None:
        if self._routed:
            return
        self._routed = True
        if self._request.route is None:
            route = self._options.resolve_route(self._scope)
            if route:
                self._request.set_route(route)

    def check_responded(self) -> None:
        """An app that returned without starting a response: the server answers 500, unless
        the client had already gone (nobody to answer; not the server's failure)."""
        if not self.started and not self._disconnected:
            try:
                self._request.set_status(500)
            except Exception:
                _log.debug("could not record the missing response", exc_info=True)

    def finish(self) -> None:
        """End the span (once), when the app has returned: an exception it raises after the
        response (a background task's) is recorded; the span's end is the response's."""
        if self._finished:
            return
        self._finished = True
        try:
            self._route()
        finally:
            self._span.end(self.responded_at)


def _client(scope: Scope) -> Optional[str]:
    client = scope.get("client")
    if isinstance(client, (list, tuple)) and client and isinstance(client[0], str):
        return client[0]
    return None


def _header(scope: Scope, name: bytes) -> Optional[str]:
    headers = scope.get("headers")
    if not isinstance(headers, (list, tuple)):
        return None
    for pair in headers:
        if isinstance(pair, (list, tuple)) and len(pair) == 2 and pair[0] == name:
            value = pair[1]
            if isinstance(value, bytes):
                return _semconv.cap(value.decode("utf-8", "replace"))
    return None


def _attributes(
    scope: Scope, method: str, original: Optional[str], client: Optional[str]
) -> Dict[str, object]:
    scheme = scope.get("scheme")
    scheme = scheme if scheme in ("http", "https") else "http"
    attributes: Dict[str, object] = {"http.request.method": method, "url.scheme": scheme}
    if original is not None:
        attributes["http.request.method_original"] = original
    path = scope.get("path")
    attributes["url.path"] = _semconv.cap(path) if isinstance(path, str) and path else "/"
    query = scope.get("query_string")
    if isinstance(query, bytes) and query:
        attributes["url.query"] = _semconv.redact_query(
            _semconv.cap(query.decode("utf-8", "replace"))
        )
    default_port = 443 if scheme == "https" else 80
    host = _header(scope, b"host")
    if host:
        address, port = _semconv.split_host(host, default_port)
    else:
        server = scope.get("server")
        address, port = "", None
        if isinstance(server, (list, tuple)) and len(server) == 2:
            address = server[0] if isinstance(server[0], str) else ""
            port = server[1] if isinstance(server[1], int) else None
    if address:
        attributes["server.address"] = address
    if port is not None:
        attributes["server.port"] = port
    if client:
        attributes["client.address"] = _semconv.cap(client)
    agent = _header(scope, b"user-agent")
    if agent:
        attributes["user_agent.original"] = agent
    version = scope.get("http_version")
    version = _semconv.protocol_version(version) if isinstance(version, str) else None
    if version:
        attributes["network.protocol.version"] = version
    return attributes
