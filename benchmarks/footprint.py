"""Import time, memory per finished span, and batch-processor drops under load, with OpenTelemetry.

    .venv/bin/python benchmarks/footprint.py            # prints a markdown table
    .venv/bin/python benchmarks/footprint.py --json     # the same figures as JSON

Each figure is measured in fresh processes: import times are the median of 15 interpreter starts
(measured inside the process around the import statement); memory is what ``tracemalloc`` sees
retained per finished span kept by an in-memory exporter; drops come from 4 threads ending
50,000 spans each as fast as they can, with default batch settings.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import textwrap
from typing import Dict

IMPORT = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"

MEMORY_OURS = """
import gc, tracemalloc, tracing_api as tracing
from tracing_api._local import MemoryExporter
exporter = MemoryExporter(max_spans=10**9)
tracing.configure(exporter=exporter, processor="simple")
tracer = tracing.get_tracer("bench")
for _ in range(100):
    tracer.start_span("warm").end()
exporter.clear(); gc.collect()
tracemalloc.start()
before = tracemalloc.get_traced_memory()[0]
for _ in range(20000):
    tracer.start_span("span").end()
gc.collect()
print((tracemalloc.get_traced_memory()[0] - before) / 20000)
"""

MEMORY_OTEL = """
import gc, tracemalloc
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
tracer = provider.get_tracer("bench")
for _ in range(100):
    tracer.start_span("warm").end()
exporter.clear(); gc.collect()
tracemalloc.start()
before = tracemalloc.get_traced_memory()[0]
for _ in range(20000):
    tracer.start_span("span").end()
gc.collect()
print((tracemalloc.get_traced_memory()[0] - before) / 20000)
"""

DROPS_OURS = """
import threading, tracing_api as tracing
from tracing_api.export import ExportResult
class Count:
    n = 0
    def export(self, spans):
        Count.n += len(spans); return ExportResult.SUCCESS
    def force_flush(self, timeout=30.0): return True
    def shutdown(self): pass
tracing.configure(exporter=Count())
tracer = tracing.get_tracer("bench")
def work():
    for _ in range(50000):
        with tracer.span("s") as s:
            s.set_attribute("a", 1)
threads = [threading.Thread(target=work) for _ in range(4)]
[t.start() for t in threads]; [t.join() for t in threads]
tracing.shutdown(timeout=60)
stats = tracing.stats()
print(200000 - Count.n, stats["dropped"])
"""

DROPS_OTEL = """
import threading
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
class Count(SpanExporter):
    n = 0
    def export(self, spans):
        Count.n += len(spans); return SpanExportResult.SUCCESS
    def shutdown(self): pass
provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(Count()))
tracer = provider.get_tracer("bench")
def work():
    for _ in range(50000):
        with tracer.start_as_current_span("s") as s:
            s.set_attribute("a", 1)
threads = [threading.Thread(target=work) for _ in range(4)]
[t.start() for t in threads]; [t.join() for t in threads]
provider.shutdown()
print(200000 - Count.n, -1)
"""


def run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                         text=True, timeout=600, check=True)
    return out.stdout.strip()


def import_ms(module: str, runs: int = 15) -> float:
    # Byte-compiled first: with PYTHONDONTWRITEBYTECODE set, or a cache older than the sources,
    # every start would compile the modules again and time the compiler instead.
    package = module.partition(".")[0]
    run(f"import compileall, importlib.util\n"
        f"for path in importlib.util.find_spec({package!r}).submodule_search_locations:\n"
        f"    compileall.compile_dir(path, quiet=1)")
    return statistics.median(float(run(IMPORT.format(module=module))) for _ in range(runs)) * 1000


def measure() -> Dict[str, float]:
    """Every figure, by name."""
    figures: Dict[str, float] = {
        "import tracing_api (ms)": import_ms("tracing_api"),
        "import opentelemetry.sdk.trace (ms)": import_ms("opentelemetry.sdk.trace"),
        "import opentelemetry.trace, API only (ms)": import_ms("opentelemetry.trace"),
        "memory per finished span, tracing-api (bytes)": float(run(MEMORY_OURS)),
        "memory per finished span, opentelemetry (bytes)": float(run(MEMORY_OTEL)),
    }
    lost, counted = run(DROPS_OURS).split()
    figures["spans lost of 200,000 from 4 threads, tracing-api"] = float(lost)
    figures["spans counted as dropped by stats(), tracing-api"] = float(counted)
    figures["spans lost of 200,000 from 4 threads, opentelemetry"] = float(run(DROPS_OTEL).split()[0])
    return figures


def main() -> None:
    figures = measure()
    if "--json" in sys.argv:
        print(json.dumps(figures, indent=2))
        return
    print("| measure | value |\n| --- | ---: |")
    for name, value in figures.items():
        print(f"| {name} | {value:,.1f} |")


if __name__ == "__main__":
    main()
