"""The HTTP backend: a WSGI application that composes greetings, traced by ``WSGIMiddleware``."""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict, List, Optional
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from tracing_api_http import WSGIMiddleware

import tracing_api

tracer = tracing_api.get_tracer(__name__)


def greeting_app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> List[bytes]:
    """``GET /greeting?name=Ada`` answers ``Hello, Ada!``; anything else is not found."""
    if environ.get("PATH_INFO") != "/greeting":
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]
    name = parse_qs(environ.get("QUERY_STRING", "")).get("name", ["world"])[0]
    with tracer.span("compose greeting") as span:
        span.set_attribute("greeting.name_length", len(name))
        body = f"Hello, {name}!".encode()
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"),
                              ("Content-Length", str(len(body)))])
    return [body]


def _route(environ: Dict[str, Any]) -> Optional[str]:
    """The route template that names the SERVER span (``GET /greeting``)."""
    return "/greeting" if environ.get("PATH_INFO") == "/greeting" else None


class _QuietHandler(WSGIRequestHandler):
    """Keeps ``wsgiref``'s access log off the demo's output."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Backend:
    """The backend served by ``wsgiref`` on 127.0.0.1 in a thread of its own."""

    def __init__(self) -> None:
        self._server: WSGIServer = make_server(
            "127.0.0.1", 0, WSGIMiddleware(greeting_app, route=_route),
            handler_class=_QuietHandler,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
            name="helloworld-backend", daemon=True,
        )

    @property
    def url(self) -> str:
        """The base URL the backend answers on."""
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> Backend:
        """Start serving; returns self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

