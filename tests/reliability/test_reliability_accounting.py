"""Every span ended is exported or counted as dropped: ``exported + dropped == ended``, exactly.

Load comes from 8 threads and from many asyncio tasks, into the real Zipkin exporter and a
collector on loopback that decodes what it receives, so the counts are checked against what
actually arrived. ``TRACING_RELIABILITY_SPANS`` sets the load (100,000 spans by default).
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any, Callable, Dict, List

import tracing_api as tracing

tracer = tracing.get_tracer(__name__)
SPANS = int(os.environ.get("TRACING_RELIABILITY_SPANS", "100000"))


def _check_books(backend: Any, ended: int) -> Dict[str, int]:
    assert tracing.shutdown(timeout=60.0), "the pipeline did not drain"
    stats = tracing.stats()
    received = backend.span_ids()
    assert stats["ended"] == ended
    assert stats["exported"] + stats["dropped"] == ended
    assert stats["queued"] == 0
    assert len(received) == len(set(received)) == stats["exported"]
    return stats


def test_spans_from_eight_threads_are_all_exported_or_counted(
    make_backend: Callable[[str], Any],
) -> None:
    backend = make_backend("zipkin")
    tracing.configure(**backend.exporter_options(timeout=10.0, deadline=10.0))
    per_thread = SPANS // 8
    start = threading.Barrier(8)
    errors: List[BaseException] = []

    def work() -> None:
        try:
            start.wait(10)
            for i in range(per_thread // 2):
                with tracer.span("parent") as parent:
                    parent.set_attribute("i", i)
                    with tracer.span("child"):
                        pass
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    _check_books(backend, 8 * (per_thread // 2) * 2)


def test_spans_from_many_asyncio_tasks_are_all_exported_or_counted(
    make_backend: Callable[[str], Any],
) -> None:
    backend = make_backend("otlp_protobuf")
    tracing.configure(**backend.exporter_options(timeout=10.0, deadline=10.0))
    tasks, per_task = 1000, SPANS // 1000

    async def request(n: int) -> None:
        for _ in range(per_task // 2):
            with tracer.span("handler"):
                await asyncio.sleep(0)  # other tasks run inside this span
                with tracer.span("query", attributes={"task": n}):
                    pass

    async def main() -> None:
        await asyncio.gather(*(request(n) for n in range(tasks)))

    asyncio.run(main())
    _check_books(backend, tasks * (per_task // 2) * 2)


def test_a_queue_too_small_for_the_load_drops_and_counts_exactly(
    make_backend: Callable[[str], Any],
) -> None:
    """A 64-span queue and a backend taking 20 ms a batch, under 8 threads: most spans are
    dropped, each one counted, and nothing counted as exported is missing at the backend.
    """
    backend = make_backend("zipkin")
    backend.collector.delay = 0.02
    tracing.configure(**backend.exporter_options(timeout=10.0, deadline=10.0),
                      max_queue_size=64, max_export_batch_size=32, schedule_delay=0.001)
    per_thread = 2000

    def work() -> None:
        for _ in range(per_thread):
            with tracer.span("s"):
                pass

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    stats = _check_books(backend, 8 * per_thread)
    assert stats["dropped"] > 0
