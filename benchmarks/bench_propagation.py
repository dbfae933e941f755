"""Inject and extract per propagation format, ours beside OpenTelemetry Python's, with pyperf.

    .venv/bin/python benchmarks/bench_propagation.py --fast -o /tmp/prop.json
    .venv/bin/python -m pyperf compare_to --table /tmp/prop.json   # or: pyperf dump / stats

Each benchmark is named ``{format}.{inject|extract}.{ours|otel}``. Both sides get the same
work: inject writes a sampled remote span context (and, for W3C, a two-entry trace state) into a
fresh ``dict``; extract reads it back from a ``dict`` of lower-case request headers that also
holds a few unrelated headers, as a server sees them (W3C baggage: a three-member ``baggage``
header, one value percent-encoded). OpenTelemetry has no ``grpc-trace-bin``
or ``X-Cloud-Trace-Context`` propagator among the test dependencies, so those two are ours only.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Tuple

import pyperf  # type: ignore[import-untyped]
from tracing_api_propagation import (
    B3MultiPropagator,
    B3Propagator,
    CloudTracePropagator,
    GrpcBinaryPropagator,
    JaegerPropagator,
)

from tracing_api import SpanContext, TraceState
from tracing_api.context import EMPTY_CONTEXT, Context
from tracing_api.propagation import DICT
from tracing_api.w3c import BaggagePropagator, TraceContextPropagator

TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
SPAN_ID = 0x00F067AA0BA902B7
STATE = (("congo", "t61rcWkgMzE"), ("rojo", "00f067aa0ba902b7"))
OTHER_HEADERS = {
    "host": "example.com",
    "user-agent": "bench/1.0",
    "accept": "*/*",
    "accept-encoding": "gzip, deflate",
}


def _ours() -> Tuple[Context, Context]:
    plain = SpanContext(TRACE_ID, SPAN_ID, 0x01, is_remote=True)
    stated = SpanContext(TRACE_ID, SPAN_ID, 0x01, TraceState(list(STATE)), is_remote=True)
    return (EMPTY_CONTEXT.with_span_context(plain), EMPTY_CONTEXT.with_span_context(stated))


def _otel() -> Tuple[Any, Any]:
    from opentelemetry import trace

    def context(state: Any) -> Any:
        span_context = trace.SpanContext(
            TRACE_ID, SPAN_ID, is_remote=True, trace_flags=trace.TraceFlags(0x01),
            trace_state=state,
        )
        return trace.set_span_in_context(trace.NonRecordingSpan(span_context))

    return context(trace.TraceState()), context(trace.TraceState(list(STATE)))


def _loop_inject_ours(propagator: Any, context: Context) -> Callable[[int], float]:
    inject = propagator.inject

    def run(loops: int) -> float:
        start = pyperf.perf_counter()
        for _ in range(loops):
            inject(context, {}, DICT)
        return float(pyperf.perf_counter() - start)

    return run


def _loop_extract_ours(propagator: Any, carrier: Dict[str, Any]) -> Callable[[int], float]:
    extract = propagator.extract

    def run(loops: int) -> float:
        start = pyperf.perf_counter()
        for _ in range(loops):
            extract(carrier, EMPTY_CONTEXT, DICT)
        return float(pyperf.perf_counter() - start)

    return run


def _loop_inject_otel(propagator: Any, context: Any) -> Callable[[int], float]:
    inject = propagator.inject

    def run(loops: int) -> float:
        start = pyperf.perf_counter()
        for _ in range(loops):
            inject({}, context)
        return float(pyperf.perf_counter() - start)

    return run


def _loop_extract_otel(propagator: Any, carrier: Dict[str, Any]) -> Callable[[int], float]:
    extract = propagator.extract

    def run(loops: int) -> float:
        start = pyperf.perf_counter()
        for _ in range(loops):
            extract(carrier)
        return float(pyperf.perf_counter() - start)

    return run


def cases() -> List[Tuple[str, Callable[[int], float]]]:
    """Every (benchmark name, timed loop) pair."""
    from opentelemetry.baggage.propagation import W3CBaggagePropagator
    from opentelemetry.propagators.b3 import B3MultiFormat, B3SingleFormat
    from opentelemetry.propagators.jaeger import JaegerPropagator as OtelJaeger
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    plain, stated = _ours()
    otel_plain, otel_stated = _otel()
    formats: List[Tuple[str, Any, Context, Any, Any]] = [
        ("w3c", TraceContextPropagator(), stated, TraceContextTextMapPropagator(), otel_stated),
        ("b3", B3Propagator(), plain, B3SingleFormat(), otel_plain),
        ("b3multi", B3MultiPropagator(), plain, B3MultiFormat(), otel_plain),
        ("jaeger", JaegerPropagator(), plain, OtelJaeger(), otel_plain),
        ("cloud_trace", CloudTracePropagator(), plain, None, None),
        ("grpc_binary", GrpcBinaryPropagator(), plain, None, None),
    ]
    found: List[Tuple[str, Callable[[int], float]]] = []
    for name, ours, context, theirs, their_context in formats:
        written: Dict[str, Any] = {}
        ours.inject(context, written, DICT)
        carrier = {**OTHER_HEADERS, **written}
        found.append((f"{name}.inject.ours", _loop_inject_ours(ours, context)))
        found.append((f"{name}.extract.ours", _loop_extract_ours(ours, carrier)))
        if theirs is not None:
            found.append((f"{name}.inject.otel", _loop_inject_otel(theirs, their_context)))
            found.append((f"{name}.extract.otel", _loop_extract_otel(theirs, carrier)))
    baggage_carrier = {**OTHER_HEADERS, "baggage": "userId=alice,serverNode=DF%2028,isProduction=false"}
    found.append(("w3c_baggage.extract.ours", _loop_extract_ours(BaggagePropagator(), baggage_carrier)))
    found.append(("w3c_baggage.extract.otel", _loop_extract_otel(W3CBaggagePropagator(), baggage_carrier)))
    return found


def main() -> None:
    """Run every case under pyperf (which forks worker processes and calibrates loops)."""
    runner = pyperf.Runner()
    runner.metadata["description"] = "tracing-api propagation vs OpenTelemetry Python"
    for name, loop in cases():
        runner.bench_time_func(name, loop)


if __name__ == "__main__":
    main()
