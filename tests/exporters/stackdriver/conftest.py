"""A local Cloud Trace server on 127.0.0.1 for the real ``google-cloud-trace`` client, and spans.

The server speaks the Cloud Trace v2 ``BatchWriteSpans`` method over gRPC and decodes every
request with the client package's own protobuf types; tests tell it how to answer.
"""

from __future__ import annotations

import threading
from concurrent import futures
from types import MappingProxyType
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import grpc
import pytest
from google.cloud import trace_v2
from google.cloud.trace_v2.services.trace_service.transports import TraceServiceGrpcTransport
from google.cloud.trace_v2.types import BatchWriteSpansRequest

from tracing_api import Event, Link, SpanContext, SpanKind, Status, StatusCode
from tracing_api.delivery import RetryPolicy
from tracing_api.export import InstrumentationScope, SpanData

T0 = 1_700_000_000_123_456_789
TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
UNSET = Status()
FAST_RETRY = RetryPolicy(initial_backoff=0.01, max_backoff=0.05, deadline=5.0)

Answer = Callable[[Any, Any], Optional[grpc.StatusCode]]


class CloudTraceServer:
    """Records every ``BatchWriteSpansRequest``; ``answer(request, context)`` may return a
    status code to fail the call with (the request is still recorded in ``attempts``, and in
    ``received`` only when it succeeded).
    """

    def __init__(self) -> None:
        self.attempts: List[Any] = []
        self.received: List[Any] = []
        self.answer: Optional[Answer] = None
        self.release = threading.Event()
        self._lock = threading.Lock()
        handler = grpc.method_handlers_generic_handler(
            "google.devtools.cloudtrace.v2.TraceService",
            {"BatchWriteSpans": grpc.unary_unary_rpc_method_handler(
                self._batch_write_spans,
                request_deserializer=BatchWriteSpansRequest.deserialize,
                response_serializer=lambda empty: empty)},
        )
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        self.server.add_generic_rpc_handlers((handler,))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        # A port with local credentials too: only over such a channel does gRPC run call
        # credentials (ask google.auth for a token before each call), as it does over TLS.
        self.secure_port = self.server.add_secure_port("127.0.0.1:0",
                                                       grpc.local_server_credentials())

    def _batch_write_spans(self, request: Any, context: Any) -> bytes:
        with self._lock:
            self.attempts.append(request)
        code = self.answer(request, context) if self.answer is not None else None
        if code is not None:
            context.abort(code, f"test server says {code.name}")
        with self._lock:
            self.received.append(request)
        return b""  # google.protobuf.Empty, serialized

    @property
    def spans(self) -> List[Any]:
        """Every span received in a successful request, in order."""
        with self._lock:
            return [span for request in self.received for span in request.spans]

    def span(self, span_id: int) -> Any:
        """The one span received with ``span_id``."""
        found = [s for s in self.spans if s.span_id == format(span_id, "016x")]
        assert len(found) == 1, f"{len(found)} spans with id {span_id:016x}"
        return found[0]

    def span_ids(self) -> List[str]:
        """The span ids received so far."""
        return [s.span_id for s in self.spans]

    def client(self) -> Any:
        """A real ``TraceServiceClient`` talking to this server over an insecure channel."""
        channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        return trace_v2.TraceServiceClient(transport=TraceServiceGrpcTransport(channel=channel))

    def client_with_credentials(self, credentials: Any) -> Any:
        """A real ``TraceServiceClient`` whose calls carry the ``google.auth`` ``credentials``,
        refreshed by gRPC before a call as on the way to Google.
        """
        import google.auth.transport.requests
        from google.auth.transport.grpc import AuthMetadataPlugin

        plugin = AuthMetadataPlugin(  # type: ignore[no-untyped-call]
            credentials, google.auth.transport.requests.Request())
        channel = grpc.secure_channel(
            f"127.0.0.1:{self.secure_port}",
            grpc.composite_channel_credentials(grpc.local_channel_credentials(),
                                               grpc.metadata_call_credentials(plugin)))
        return trace_v2.TraceServiceClient(transport=TraceServiceGrpcTransport(channel=channel))


@pytest.fixture
def cloud_trace() -> Iterator[CloudTraceServer]:
    """A started local Cloud Trace server; stopped (and hanging calls released) afterwards."""
    server = CloudTraceServer()
    server.server.start()
    try:
        yield server
    finally:
        server.release.set()
        server.server.stop(grace=None)


@pytest.fixture
def make_exporter(cloud_trace: CloudTraceServer) -> Iterator[Callable[..., Any]]:
    """Makes exporters for project ``p`` talking to the local server; shuts them down after."""
    import tracing_api_stackdriver

    made: List[Any] = []

    def make(**options: Any) -> Any:
        options.setdefault("project_id", "p")
        options.setdefault("client", cloud_trace.client())
        options.setdefault("retry", FAST_RETRY)
        options.setdefault("timeout", 2.0)
        exporter = tracing_api_stackdriver.exporter(**options)
        made.append(exporter)
        return exporter

    yield make
    for exporter in made:
        exporter.shutdown()


def span(
    span_id: int = 0x00F067AA0BA902B7, *, name: str = "GET /users/{id}",
    attributes: Optional[Dict[str, Any]] = None, parent: Optional[SpanContext] = None,
    kind: SpanKind = SpanKind.SERVER, events: Tuple[Event, ...] = (), links: Tuple[Link, ...] = (),
    status: Status = UNSET, resource: Optional[Dict[str, Any]] = None,
    dropped: Tuple[int, int, int] = (0, 0, 0), trace_id: int = TRACE_ID,
) -> SpanData:
    """A finished span with the given fields (times fixed for reproducible requests)."""
    return SpanData(
        name, SpanContext(trace_id, span_id, 0x01), parent, kind, T0, T0 + 1_500_000,
        MappingProxyType(attributes or {}), tuple(events), tuple(links), status,
        MappingProxyType(resource or {"service.name": "shop"}),
        InstrumentationScope("tests"), *dropped,
    )


@pytest.fixture(scope="session")
def make_span() -> Callable[..., SpanData]:
    """The ``span`` factory above, as a fixture (test modules do not import conftest)."""
    return span


__all__ = ["Event", "Link", "StatusCode"]
