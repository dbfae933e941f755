"""Encoding 1,000 finished spans for Zipkin (v2 JSON) and OTLP (protobuf), ours beside
OpenTelemetry Python's encoders, with pyperf.

    .venv/bin/python benchmarks/bench_exporters.py --fast -o /tmp/exp.json
    .venv/bin/python -m pyperf compare_to --table /tmp/exp.json   # or: pyperf dump / stats

Benchmarks are named ``{zipkin_json|otlp_protobuf}.encode_1000.{ours|otel}``. Both sides encode
the same spans: one trace, a SERVER span each with a local parent, five attributes (two
strings, an int, a float, a bool) and one event with one attribute, one resource and one scope.
Ours is ``tracing_api_zipkin.encode_spans`` and ``tracing_api_otlp.encode_protobuf``;
OpenTelemetry's is the ``JsonV2Encoder`` of ``opentelemetry-exporter-zipkin-json`` and
``encode_spans(...).SerializeToString()`` of ``opentelemetry-exporter-otlp-proto-common``.
A summary with spans per second and the ratios is printed at the end (in the main process).
"""

from __future__ import annotations

import sys
from types import MappingProxyType
from typing import Any, Callable, Dict, List

import pyperf  # type: ignore[import-untyped]
from tracing_api_otlp import encode_protobuf
from tracing_api_zipkin import encode_spans

import tracing_api as tracing
from tracing_api.export import InstrumentationScope, SpanData

SPANS = 1000
TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
PARENT_ID = 0x00F067AA0BA902B7
START = 1_700_000_000_000_000_000
ATTRIBUTES: Dict[str, Any] = {"http.request.method": "GET", "url.path": "/users/7",
              "http.response.status_code": 200, "server.duration": 12.5, "cache.hit": True}
EVENT_ATTRIBUTES: Dict[str, Any] = {"message": "request received"}


def ours() -> List[SpanData]:
    """The spans, as our exporters receive them."""
    resource = MappingProxyType({"service.name": "bench"})
    scope = InstrumentationScope("bench", "1.0")
    parent = tracing.SpanContext(TRACE_ID, PARENT_ID, 1)
    return [
        SpanData("GET /users/{id}", tracing.SpanContext(TRACE_ID, i + 1, 1), parent,
                 tracing.SpanKind.SERVER, START + i * 1000, START + i * 1000 + 5_000_000,
                 MappingProxyType(dict(ATTRIBUTES)),
                 (tracing.Event("received", START + i * 1000 + 1000,
                                MappingProxyType(dict(EVENT_ATTRIBUTES))),),
                 (), tracing.Status(), resource, scope)
        for i in range(SPANS)
    ]


def otel() -> List[Any]:
    """The same spans, as OpenTelemetry's exporters receive them."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope as Scope
    from opentelemetry.trace import SpanContext, SpanKind, TraceFlags

    resource = Resource({"service.name": "bench"})
    scope = Scope("bench", "1.0")
    parent = SpanContext(TRACE_ID, PARENT_ID, False, TraceFlags(1))
    return [
        ReadableSpan(
            name="GET /users/{id}", context=SpanContext(TRACE_ID, i + 1, False, TraceFlags(1)),
            parent=parent, resource=resource, attributes=dict(ATTRIBUTES),
            events=(Event("received", dict(EVENT_ATTRIBUTES), START + i * 1000 + 1000),),
            links=(), kind=SpanKind.SERVER, instrumentation_scope=scope,
            start_time=START + i * 1000, end_time=START + i * 1000 + 5_000_000)
        for i in range(SPANS)
    ]


def encoders() -> Dict[str, Callable[[], object]]:
    """Every benchmark by name: a call that encodes the 1,000 spans once."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as otlp
    from opentelemetry.exporter.zipkin.json.v2 import JsonV2Encoder
    from opentelemetry.exporter.zipkin.node_endpoint import NodeEndpoint

    our_spans, otel_spans = ours(), otel()
    zipkin_otel, endpoint = JsonV2Encoder(), NodeEndpoint()
    return {
        "zipkin_json.encode_1000.ours": lambda: encode_spans(our_spans),
        "zipkin_json.encode_1000.otel": lambda: zipkin_otel.serialize(otel_spans, endpoint),
        "otlp_protobuf.encode_1000.ours": lambda: encode_protobuf(our_spans),
        "otlp_protobuf.encode_1000.otel": lambda: otlp(otel_spans).SerializeToString(),
    }


def _summary(benchmarks: List[Any]) -> None:
    means = {b.get_name(): b.mean() for b in benchmarks if b is not None}
    print("\nspans per second (1,000 spans per call):")
    for name, mean in means.items():
        print(f"  {name:36s} {SPANS / mean:12,.0f}")
    for encoding in ("zipkin_json", "otlp_protobuf"):
        ours_mean = means.get(f"{encoding}.encode_1000.ours")
        otel_mean = means.get(f"{encoding}.encode_1000.otel")
        if ours_mean and otel_mean:
            print(f"  {encoding}: ours is {otel_mean / ours_mean:.2f}x OpenTelemetry's")


def main() -> None:
    runner = pyperf.Runner()
    runner.metadata["description"] = "encode 1,000 spans: tracing-api vs OpenTelemetry Python"
    results = [runner.bench_func(name, call) for name, call in encoders().items()]
    if not runner.args.worker and all(r is not None for r in results):
        _summary(results)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
