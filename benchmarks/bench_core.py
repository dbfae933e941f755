"""Hot paths of the core, side by side with OpenTelemetry Python in the same run (pyperf).

    .venv/bin/python benchmarks/bench_core.py -o core.json        # thorough (pyperf defaults)
    .venv/bin/python benchmarks/bench_core.py --fast -o core.json # quick numbers

Every case is a pair: ``<case> [tracing-api]`` and ``<case> [opentelemetry]``, doing the same work.
Both sides export through an exporter that accepts and discards spans, so the figures measure the
library, not a backend. Each pyperf worker process runs one benchmark, so configuring one side
never affects the other.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import pyperf


def _ours(sampled: bool = True, configured: bool = True) -> Any:
    import tracing_api as tracing
    from tracing_api.export import ExportResult

    class Discard:
        def export(self, spans: Sequence[Any]) -> ExportResult:
            return ExportResult.SUCCESS

        def force_flush(self, timeout: float = 30.0) -> bool:
            return True

        def shutdown(self) -> None:
            pass

    if configured:
        tracing.configure(
            exporter=Discard(),
            sampler=tracing.sampling.always_on() if sampled else tracing.sampling.always_off(),
        )
    return tracing


def _theirs(sampled: bool = True, sdk: bool = True) -> Any:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON

    if not sdk:
        return trace.NoOpTracer(), trace

    class Discard(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

        def shutdown(self) -> None:
            pass

    provider = TracerProvider(sampler=ALWAYS_ON if sampled else ALWAYS_OFF)
    provider.add_span_processor(BatchSpanProcessor(Discard()))
    return provider.get_tracer("bench"), trace


def loop(body: Callable[[], None]) -> Callable[[int], float]:
    def timed(loops: int) -> float:
        range_it = range(loops)
        t0 = pyperf.perf_counter()
        for _ in range_it:
            body()
        return pyperf.perf_counter() - t0

    return timed


# ------------------------------------------------------------------------------- the cases


def ours_recording() -> Callable[[int], float]:
    tracer = _ours().get_tracer("bench")

    def body() -> None:
        with tracer.span("request") as span:
            span.set_attribute("a", 1)
            span.set_attribute("b", "two")
            span.set_attribute("c", 3.0)
            span.add_event("event")

    return loop(body)


def otel_recording() -> Callable[[int], float]:
    tracer, _ = _theirs()

    def body() -> None:
        with tracer.start_as_current_span("request") as span:
            span.set_attribute("a", 1)
            span.set_attribute("b", "two")
            span.set_attribute("c", 3.0)
            span.add_event("event")

    return loop(body)


def skeleton_recording() -> Callable[[int], float]:
    import skeleton  # benchmarks/skeleton.py: the floor under any design

    tracer = skeleton.tracer()

    def body() -> None:
        with tracer.span("request") as span:
            span.set_attribute("a", 1)
            span.set_attribute("b", "two")
            span.set_attribute("c", 3.0)
            span.add_event("event")

    return loop(body)


def ours_noop() -> Callable[[int], float]:
    tracer = _ours(configured=False).get_tracer("bench")

    def body() -> None:
        with tracer.span("request") as span:
            span.set_attribute("a", 1)
            span.set_attribute("b", "two")
            span.set_attribute("c", 3.0)

    return loop(body)


def otel_noop() -> Callable[[int], float]:
    tracer, _ = _theirs(sdk=False)

    def body() -> None:
        with tracer.start_as_current_span("request") as span:
            span.set_attribute("a", 1)
            span.set_attribute("b", "two")
            span.set_attribute("c", 3.0)

    return loop(body)


def ours_sampled_out() -> Callable[[int], float]:
    tracer = _ours(sampled=False).get_tracer("bench")

    def body() -> None:
        with tracer.span("request") as span:
            span.set_attribute("a", 1)
            span.set_attribute("b", "two")
            span.set_attribute("c", 3.0)

    return loop(body)


def otel_sampled_out() -> Callable[[int], float]:
    tracer, _ = _theirs(sampled=False)

    def body() -> None:
        with tracer.start_as_current_span("request") as span:
            span.set_attribute("a", 1)
            span.set_attribute("b", "two")
            span.set_attribute("c", 3.0)

    return loop(body)


def ours_set_attribute() -> Callable[[int], float]:
    tracing = _ours()
    span = tracing.get_tracer("bench").start_span("long")

    def body() -> None:
        span.set_attribute("key", "value")

    return loop(body)


def otel_set_attribute() -> Callable[[int], float]:
    tracer, _ = _theirs()
    span = tracer.start_span("long")

    def body() -> None:
        span.set_attribute("key", "value")

    return loop(body)


def ours_context_switch() -> Callable[[int], float]:
    tracing = _ours()
    span = tracing.get_tracer("bench").start_span("long")
    use_span = tracing.use_span

    def body() -> None:
        with use_span(span):
            pass

    return loop(body)


def otel_context_switch() -> Callable[[int], float]:
    tracer, trace = _theirs()
    span = tracer.start_span("long")
    use_span = trace.use_span

    def body() -> None:
        with use_span(span):
            pass

    return loop(body)


CASES = {
    "span + 3 attributes + 1 event, batch processor": (ours_recording, otel_recording),
    "no-op span + 3 attributes (nothing configured)": (ours_noop, otel_noop),
    "sampled-out span + 3 attributes": (ours_sampled_out, otel_sampled_out),
    "set_attribute on a recording span": (ours_set_attribute, otel_set_attribute),
    "make a span current and restore (context switch)": (ours_context_switch, otel_context_switch),
}


def main() -> None:
    runner = pyperf.Runner()
    for case, (ours, theirs) in CASES.items():
        # The setup runs in the worker that measures the case, and only there.
        runner.bench_time_func(f"{case} [tracing-api]", _lazy(ours))
        runner.bench_time_func(f"{case} [opentelemetry]", _lazy(theirs))
    runner.bench_time_func(
        "floor: the recording case with benchmarks/skeleton.py", _lazy(skeleton_recording)
    )


def _lazy(make: Callable[[], Callable[[int], float]]) -> Callable[[int], float]:
    made: list[Callable[[int], float]] = []

    def timed(loops: int) -> float:
        if not made:
            made.append(make())
        return made[0](loops)

    return timed


if __name__ == "__main__":
    main()
