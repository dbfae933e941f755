"""Trace gRPC calls: interceptors for ``grpc`` and ``grpc.aio`` clients and servers.

Every call becomes a CLIENT span on the caller's side and a SERVER span, its child, on the
server's side; the handler runs with the server span current, so what it calls joins the trace::

    import grpc
    import tracing_api_grpc

    server = grpc.server(pool, interceptors=tracing_api_grpc.server_interceptors())
    channel = grpc.intercept_channel(
        grpc.insecure_channel(target), *tracing_api_grpc.client_interceptors(target)
    )

    aio_server = grpc.aio.server(
        pool, interceptors=tracing_api_grpc.aio_server_interceptors(thread_pool=pool)
    )
    aio_channel = grpc.aio.insecure_channel(
        target, interceptors=tracing_api_grpc.aio_client_interceptors(target)
    )

Clients write the configured propagators' headers into the call metadata (W3C ``traceparent``,
``tracestate`` and ``baggage`` by default). Add ``grpc_binary`` to the propagators
(``tracing_api.configure(propagators="tracecontext,baggage,grpc_binary")``) to also send
OpenCensus' ``grpc-trace-bin`` for Go and Java services; Python servers never see that key
(grpcio keeps it from handlers and interceptors), so between Python services ``traceparent``
carries the trace.
"""

from __future__ import annotations

from concurrent.futures import Executor
from typing import List, Optional

import grpc
import grpc.aio

from tracing_api import Propagator

from ._aio_client import (
    StreamStreamInterceptor,
    StreamUnaryInterceptor,
    UnaryStreamInterceptor,
    UnaryUnaryInterceptor,
)
from ._aio_server import AioServerInterceptor
from ._client import ClientInterceptor, ResponseStream
from ._server import ServerInterceptor

__version__ = "0.1.0"


def client_interceptors(
    target: Optional[str] = None, *, propagator: Optional[Propagator] = None
) -> List[grpc.UnaryUnaryClientInterceptor]:
    """The interceptors that trace a ``grpc`` channel's calls, for ``grpc.intercept_channel``.

    ``target`` is the address the channel was made with (it names the server on each span);
    ``propagator`` replaces the configured propagators for this channel's metadata.
    """
    # One object serves the four call shapes; typed as the first, as ``intercept_channel`` takes it.
    return [ClientInterceptor(target, propagator)]


def server_interceptors() -> List[grpc.ServerInterceptor]:
    """The interceptors that trace a ``grpc`` server's calls: ``grpc.server(..., interceptors=)``."""
    return [ServerInterceptor()]


def aio_client_interceptors(
    target: Optional[str] = None, *, propagator: Optional[Propagator] = None
) -> List[grpc.aio.ClientInterceptor]:
    """The interceptors that trace a ``grpc.aio`` channel's calls, one per call shape:
    ``grpc.aio.insecure_channel(target, interceptors=aio_client_interceptors(target))``.
    """
    return [
        UnaryUnaryInterceptor(target, propagator),
        UnaryStreamInterceptor(target, propagator),
        StreamUnaryInterceptor(target, propagator),
        StreamStreamInterceptor(target, propagator),
    ]


def aio_server_interceptors(*, thread_pool: Optional[Executor] = None) -> List[grpc.aio.ServerInterceptor]:
    """The interceptors that trace a ``grpc.aio`` server's calls:
    ``grpc.aio.server(interceptors=aio_server_interceptors())``.

    List them first, before the application's own. While tracing, plain-function (not
    ``async``) handlers become coroutine handlers that run the function in ``thread_pool``:
    pass the server's ``migration_thread_pool`` when it has one; None (the default) runs them
    in the event loop's default executor. With tracing off grpc.aio runs them as it would
    without these interceptors.
    """
    return [AioServerInterceptor(thread_pool)]


__all__ = [
    "AioServerInterceptor",
    "ClientInterceptor",
    "ResponseStream",
    "ServerInterceptor",
    "StreamStreamInterceptor",
    "StreamUnaryInterceptor",
    "UnaryStreamInterceptor",
    "UnaryUnaryInterceptor",
    "__version__",
    "aio_client_interceptors",
    "aio_server_interceptors",
    "client_interceptors",
    "server_interceptors",
]
