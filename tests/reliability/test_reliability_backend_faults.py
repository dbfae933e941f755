"""A backend that is down, hangs, fails or talks garbage never costs the application anything.

Every real exporter (Zipkin, OTLP protobuf and JSON, Cloud Trace over gRPC) meets every fault
on loopback. The application's spans still end at once, nothing is raised, the queue stays within
its limit, what is lost is counted, and export resumes when the backend comes back.
"""

from __future__ import annotations

import time
from typing import Any, Callable, List

import pytest

import tracing_api as tracing

tracer = tracing.get_tracer(__name__)

HTTP_FAULTS = ["refused", "reset", "garbage", "http_500", "http_503", "http_429"]
GRPC_FAULTS = ["refused", "reset", "garbage", "grpc_internal", "grpc_unavailable",
               "grpc_resource_exhausted"]
CASES = [(kind, fault) for kind in ("zipkin", "otlp_protobuf", "otlp_json") for fault in HTTP_FAULTS]
CASES += [("stackdriver", fault) for fault in GRPC_FAULTS]
KINDS = ["zipkin", "otlp_protobuf", "otlp_json", "stackdriver"]


def end_spans(count: int, name: str) -> List[str]:
    """End ``count`` spans; their ids as the backends write them (16 hex digits)."""
    ids = []
    for i in range(count):
        with tracer.span(name, attributes={"i": i}) as span:
            span.set_attribute("step", "work")
        ids.append(format(span.context.span_id, "016x"))
    return ids


@pytest.mark.parametrize(("kind", "fault"), CASES)
def test_failing_backend_loses_only_counted_spans_and_export_resumes(
    make_backend: Callable[[str], Any], wait_for: Callable[..., bool], kind: str, fault: str,
) -> None:
    backend = make_backend(kind)
    backend.fault(fault)
    tracing.configure(**backend.exporter_options(), schedule_delay=0.01)

    down = end_spans(40, "while-down")  # raises nothing into the application
    tracing.force_flush(timeout=30)
    stats = tracing.stats()
    assert (stats["ended"], stats["exported"], stats["dropped"], stats["queued"]) == (40, 0, 40, 0)

    backend.recover()
    up: List[str] = []

    def delivered() -> bool:
        up.extend(end_spans(1, "after-recovery"))
        tracing.force_flush(timeout=10)
        return bool(backend.span_ids())

    assert wait_for(delivered, timeout=60), "export never resumed"
    received = backend.span_ids()
    assert not set(received) & set(down), "spans counted as dropped were delivered after all"
    assert set(received) <= set(up)
    stats = tracing.stats()
    assert stats["exported"] == len(received)
    assert stats["ended"] == len(down) + len(up) == stats["exported"] + stats["dropped"]


@pytest.mark.parametrize("kind", KINDS)
def test_spans_end_while_the_backend_hangs_and_the_queue_stays_bounded(
    make_backend: Callable[[str], Any], wait_for: Callable[..., bool], kind: str,
) -> None:
    """The worker sits in a request the backend never answers (60 s timeouts) while the
    application ends thousands of spans: none of them waits, the queue holds its limit, and the
    excess is dropped and counted.
    """
    backend = make_backend(kind)
    backend.fault("hang")
    queue, batch = 256, 16
    tracing.configure(**backend.exporter_options(timeout=60.0, deadline=60.0),
                      schedule_delay=0.01, max_queue_size=queue, max_export_batch_size=batch)
    end_spans(1, "first")
    assert wait_for(lambda: backend.raw.accepted >= 1), "the exporter never reached the backend"

    highest_queued = 0
    for _ in range(10):
        end_spans(500, "during-hang")
        highest_queued = max(highest_queued, tracing.stats()["queued"])
    # The loop is over and the backend still sits on the worker's request, unanswered: not one
    # of those 5,000 spans waited for it.
    assert backend.raw.held and backend.raw.accepted >= 1
    stats = tracing.stats()
    assert highest_queued <= queue + batch  # the queue, and one batch in the exporter's hands
    assert stats["dropped"] > 0
    assert stats["ended"] == 5001 == stats["exported"] + stats["dropped"] + stats["queued"]

    started = time.monotonic()
    assert tracing.shutdown(timeout=1.0) is False  # not everything went out, and it says so
    assert time.monotonic() - started < 30  # generous: the backend would hold it for 60 s


@pytest.mark.parametrize("kind", ["zipkin", "otlp_protobuf"])
def test_slow_backend_never_slows_span_end_and_drops_are_counted(
    make_backend: Callable[[str], Any], kind: str,
) -> None:
    """Each answer takes 200 ms, far slower than spans end: the excess is dropped and counted,
    and what is exported arrives once.
    """
    backend = make_backend(kind)
    backend.collector.delay = 0.2
    tracing.configure(**backend.exporter_options(timeout=10.0, deadline=10.0),
                      schedule_delay=0.01, max_queue_size=512, max_export_batch_size=64)
    ids = end_spans(3000, "slow")
    assert tracing.shutdown(timeout=30.0)
    stats = tracing.stats()
    assert stats["ended"] == 3000 == stats["exported"] + stats["dropped"]
    assert stats["dropped"] > 0
    received = backend.span_ids()
    assert len(received) == len(set(received)) == stats["exported"]
    assert set(received) <= set(ids)
