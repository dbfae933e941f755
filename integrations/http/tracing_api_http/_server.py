"""What the WSGI and ASGI middleware share: the trust boundary, the SERVER span, the route.

A trusted caller's context becomes the parent of the SERVER span, so the trace continues. At a
public endpoint (the trust boundary) the caller's context becomes a link instead: the trace
restarts here, the caller's sampling decision is not obeyed and its baggage is dropped.
"""

from __future__ import annotations

import ipaddress
import logging
from contextvars import ContextVar, Token
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

import tracing_api
from tracing_api import INVALID_SPAN, Link, SpanKind, StatusCode
from tracing_api.context import EMPTY_CONTEXT, Context
from tracing_api.propagation import Getter

from . import _semconv
from ._version import __version__

_log = logging.getLogger("tracing_api_http")
_tracer = tracing_api.get_tracer("tracing_api_http", __version__)

Public = Union[bool, Callable[[Any], bool]]
"""``public=``: True for every request, or a predicate given the WSGI environ / ASGI scope."""

_Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


class Request:
    """The server span of the request being handled, for ``set_route``."""

    __slots__ = ("method", "route", "span")

    def __init__(self, span: Any, method: str) -> None:
        self.span = span
        self.method = method
        self.route: Optional[str] = None

    def set_route(self, route: str) -> None:
        """Name the span ``METHOD route`` and set ``http.route``."""
        route = _semconv.cap(str(route))
        self.route = route
        self.span.update_name(_semconv.span_name(self.method, route))
        self.span.set_attribute("http.route", route)

    def set_status(self, status_code: int) -> None:
        """Record the response status code (5xx marks the span as failed)."""
        span = self.span
        span.set_attribute("http.response.status_code", status_code)
        code, extra = _semconv.server_status(status_code)
        if code is StatusCode.ERROR:
            span.set_attributes(extra)
            span.set_status(StatusCode.ERROR)

    def fail(self, exc: BaseException) -> None:
        """Record an exception that escaped the application."""
        span = self.span
        span.record_exception(exc, escaped=True)
        span.set_attribute("error.type", _semconv.error_type(exc))
        span.set_status(StatusCode.ERROR, _describe(exc))


_REQUEST: ContextVar[Optional[Request]] = ContextVar("tracing_api_http.request", default=None)


def set_route(route: str) -> bool:
    """Name the current request's SERVER span after ``route`` (a template such as
    ``/users/{id}``, never the raw path). Call it from a handler or a framework hook.

    Returns False when no traced request is being handled.
    """
    request = _REQUEST.get()
    if request is None:
        return False
    request.set_route(route)
    return True


def _describe(exc: BaseException) -> str:
    try:
        return f"{type(exc).__name__}: {exc}"
    except Exception:
        return type(exc).__name__


class Options:
    """The settings both middlewares take, checked once when the middleware is built."""

    __slots__ = ("_networks", "public", "route")

    def __init__(
        self, route: Optional[Callable[[Any], Optional[str]]], public: Public,
        trusted_networks: Optional[Iterable[str]],
    ) -> None:
        if not (isinstance(public, bool) or callable(public)):
            raise TypeError(f"public must be a bool or a predicate, not {type(public).__name__}")
        if route is not None and not callable(route):
            raise TypeError(f"route must be a callable returning a route or None, not {route!r}")
        self.route = route
        self.public = public
        # A programmer's mistake in a network fails here, at startup, with the bad value named.
        self._networks: Optional[Tuple[_Network, ...]] = None
        if trusted_networks is not None:
            if isinstance(trusted_networks, str):
                trusted_networks = [trusted_networks]
            self._networks = _with_ipv4_forms(
                ipaddress.ip_network(n, strict=False) for n in trusted_networks
            )

    def is_public(self, carrier: Any, client: Optional[str]) -> bool:
        """Whether this request crosses the trust boundary."""
        public = self.public
        if public is True:
            return True
        if public is not False:
            try:
                if public(carrier):
                    return True
            except Exception:
                # A failing predicate must not break the request; treat the caller as a
                # stranger, the safe side of the boundary.
                _log.debug("public= predicate failed; request treated as public", exc_info=True)
                return True
        networks = self._networks
        if networks is None:
            return False
        if not client:
            return True
        try:
            address = ipaddress.ip_address(client)
        except ValueError:  # a unix socket path or a name: not in any trusted network
            return True
        # A dual-stack server reports an IPv4 caller as IPv4-mapped IPv6 (::ffff:10.1.2.3):
        # it is trusted when either form is inside a trusted network.
        mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
        return not any(
            address in network or (mapped is not None and mapped in network)
            for network in networks
        )

    def resolve_route(self, carrier: Any) -> Optional[str]:
        """The user's route resolver's answer, or None (also when it fails)."""
        if self.route is None:
            return None
        try:
            route = self.route(carrier)
        except Exception:
            _log.debug("route resolver failed", exc_info=True)
            return None
        return route if isinstance(route, str) and route else None


_IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


def _with_ipv4_forms(networks: Iterable[_Network]) -> Tuple[_Network, ...]:
    """``networks`` plus the IPv4 form of each IPv4-mapped IPv6 one (``::ffff:10.0.0.0/104``
    is also ``10.0.0.0/8``), so a network written either way matches a caller seen either way.
    """
    result: List[_Network] = []
    for network in networks:
        result.append(network)
        if (
            isinstance(network, ipaddress.IPv6Network)
            and network.prefixlen >= 96
            and network.subnet_of(_IPV4_MAPPED)
        ):
            mapped = network.network_address.ipv4_mapped
            if mapped is not None:
                result.append(ipaddress.IPv4Network((mapped, network.prefixlen - 96)))
    return tuple(result)


def start(
    carrier: Any, getter: Getter, method: str, route: Optional[str],
    attributes: Dict[str, object], public: bool,
) -> Tuple[Any, Context, Request]:
    """Extract the caller's context, start the SERVER span, and return it with the context to
    make current while the application runs.
    """
    incoming = tracing_api.extract(carrier, getter=getter)
    remote = incoming.span.context
    name = _semconv.span_name(method, route)
    if route:
        attributes["http.route"] = route
    if public:
        links = [Link(remote, {})] if remote.is_valid else None
        span: Any = _tracer.start_span(name, SpanKind.SERVER, attributes, links=links, parent=None)
        context = EMPTY_CONTEXT if span is INVALID_SPAN else Context(span)
    else:
        span = _tracer.start_span(name, SpanKind.SERVER, attributes, parent=incoming)
        # With nothing configured there is no span: the caller's context is made current as
        # it came, so outgoing calls still carry the trace on.
        context = incoming if span is INVALID_SPAN else incoming._replace(span=span)
    request = Request(span, method)
    request.route = route
    return span, context, request


def enter(request: Request) -> Token[Optional[Request]]:
    """Make ``request`` the one ``set_route`` acts on."""
    return _REQUEST.set(request)


def leave(token: Token[Optional[Request]]) -> None:
    """Undo ``enter``; never raises, even from another context."""
    try:
        _REQUEST.reset(token)
    except (ValueError, RuntimeError):
        _log.debug("request left from another context")
