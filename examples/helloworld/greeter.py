"""The gRPC greeter: ``helloworld.Greeter/SayHello`` asks the HTTP backend for the greeting.

Neither the servicer nor the backend call has tracing code: the server interceptor makes the
SERVER span current, and the traced ``urllib`` opener continues the trace from there.
"""

from __future__ import annotations

from concurrent import futures
from typing import Any
from urllib.parse import quote

import grpc
import tracing_api_grpc
from tracing_api_http import build_opener

from examples.helloworld import helloworld_pb2, helloworld_pb2_grpc


class Greeter(helloworld_pb2_grpc.GreeterServicer):
    """Greets by asking the backend at ``backend_url`` what to say."""

    def __init__(self, backend_url: str) -> None:
        self._backend_url = backend_url
        self._opener = build_opener()

    def SayHello(  # the name the generated code calls
        self, request: helloworld_pb2.HelloRequest, context: grpc.ServicerContext
    ) -> helloworld_pb2.HelloReply:
        """Answer the greeting the backend composes for ``request.name``."""
        url = f"{self._backend_url}/greeting?name={quote(request.name)}"
        with self._opener.open(url, timeout=5) as response:
            message = response.read().decode("utf-8")
        return helloworld_pb2.HelloReply(message=message)


class GreeterServer:
    """A traced ``grpc`` server of ``Greeter`` on 127.0.0.1."""

    def __init__(self, backend_url: str) -> None:
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=4),
            interceptors=tracing_api_grpc.server_interceptors(),
        )
        helloworld_pb2_grpc.add_GreeterServicer_to_server(  # type: ignore[no-untyped-call]
            Greeter(backend_url), self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")

    @property
    def target(self) -> str:
        """The address clients dial."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> GreeterServer:
        """Start serving; returns self."""
        self._server.start()
        return self

    def stop(self, grace: float = 2.0) -> None:
        """Finish the calls in flight (for at most ``grace`` seconds) and stop."""
        event: Any = self._server.stop(grace)
        event.wait(grace + 1)
