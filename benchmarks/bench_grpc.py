"""Overhead of gRPC tracing per unary call, ours beside OpenTelemetry's, with pyperf.

    .venv/bin/python benchmarks/bench_grpc.py --fast -o /tmp/grpc.json
    .venv/bin/python -m pyperf compare_to --table /tmp/grpc.json   # or: pyperf dump / stats

Each benchmark is named ``grpc.unary.{bare|off|ours|otel}``: one unary call of a real ``grpc``
client to a real ``grpc`` server on 127.0.0.1 (one process, the server on its thread pool), the
request and response a protobuf ``StringValue``. ``bare`` has no interceptors; ``off`` has ours
on both ends with tracing not configured (what a library pays when the application never turns
tracing on); ``ours`` has ours with a configured pipeline; ``otel`` has OpenTelemetry's client
and server interceptors from opentelemetry-instrumentation-grpc 0.66b2 with the 1.45.2 SDK.
Both pipelines sample everything and hand spans to a batch processor whose exporter discards
them, so each call makes two recorded spans (CLIENT and SERVER) and what is measured is their
cost on the calling and serving threads. The loopback round trip dominates a call; the
overhead is the difference to ``bare``.
"""

from __future__ import annotations

import time
from concurrent import futures
from typing import Any, Callable, Dict, List, Optional, Sequence

import grpc
import pyperf  # type: ignore[import-untyped]
import tracing_api_grpc
from google.protobuf.wrappers_pb2 import StringValue  # type: ignore[import-untyped]

import tracing_api
from tracing_api.export import ExportResult, SpanData

METHOD = "/bench.Greeter/SayHello"


def say_hello(request: StringValue, context: grpc.ServicerContext) -> StringValue:
    """The handler under test."""
    return StringValue(value="Hello, " + request.value)


class _Discard:
    """An exporter that drops what it is given: the cost left is the tracing itself."""

    def export(self, spans: Sequence[SpanData]) -> ExportResult:
        return ExportResult.SUCCESS

    def force_flush(self, timeout: float = 30.0) -> bool:
        return True

    def shutdown(self) -> None:
        pass


def _serve(interceptors: List[Any]) -> str:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), interceptors=interceptors)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("bench.Greeter", {
        "SayHello": grpc.unary_unary_rpc_method_handler(
            say_hello, request_deserializer=StringValue.FromString,
            response_serializer=StringValue.SerializeToString,
        ),
    }),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    _keep.append(server)
    return f"127.0.0.1:{port}"


_keep: List[Any] = []  # servers live as long as the worker


def _setup_bare() -> Callable[..., Any]:
    target = _serve([])
    return grpc.insecure_channel(target).unary_unary(
        METHOD, StringValue.SerializeToString, StringValue.FromString)


def _setup_ours(configure: bool) -> Callable[[], Callable[..., Any]]:
    def setup() -> Callable[..., Any]:
        if configure:
            tracing_api.configure(exporter=_Discard(), sampler="always_on", processor="batch")
        target = _serve(tracing_api_grpc.server_interceptors())
        channel = grpc.intercept_channel(
            grpc.insecure_channel(target), *tracing_api_grpc.client_interceptors(target))
        return channel.unary_unary(METHOD, StringValue.SerializeToString, StringValue.FromString)

    return setup


def _setup_otel() -> Callable[..., Any]:
    from opentelemetry.instrumentation.grpc import client_interceptor, server_interceptor
    from opentelemetry.instrumentation.grpc.grpcext import intercept_channel
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult
    from opentelemetry.sdk.trace.export import SpanExporter as OtelExporter

    class Discard(OtelExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Discard()))
    target = _serve([server_interceptor(tracer_provider=provider)])  # type: ignore[no-untyped-call]
    # OpenTelemetry's client interceptor speaks its own interface, wired in by its own helper.
    channel: Any = intercept_channel(  # type: ignore[no-untyped-call]
        grpc.insecure_channel(target),
        client_interceptor(tracer_provider=provider),  # type: ignore[no-untyped-call]
    )
    return channel.unary_unary(  # type: ignore[no-any-return]
        METHOD, StringValue.SerializeToString, StringValue.FromString)


def bench_calls(setup: Callable[[], Callable[..., Any]]) -> Callable[[int], float]:
    """Time ``loops`` unary calls; the server and channel are made on first use, untimed."""
    state: Dict[str, Optional[Callable[..., Any]]] = {"call": None}
    request = StringValue(value="world")

    def timed(loops: int) -> float:
        call = state["call"]
        if call is None:
            call = state["call"] = setup()
            call(request, timeout=10)  # connect before timing
        start = time.perf_counter()
        for _ in range(loops):
            call(request, timeout=10)
        return time.perf_counter() - start

    return timed


def main() -> None:
    """Register every benchmark with pyperf (each runs in worker processes of its own)."""
    runner = pyperf.Runner()
    runner.bench_time_func("grpc.unary.bare", bench_calls(_setup_bare))
    runner.bench_time_func("grpc.unary.off", bench_calls(_setup_ours(configure=False)))
    runner.bench_time_func("grpc.unary.ours", bench_calls(_setup_ours(configure=True)))
    try:
        import opentelemetry.instrumentation.grpc  # noqa: F401
    except ImportError:  # the OpenTelemetry instrumentation is optional here
        return
    runner.bench_time_func("grpc.unary.otel", bench_calls(_setup_otel))


if __name__ == "__main__":
    main()
