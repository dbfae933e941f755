"""``shutdown()`` and interpreter exit flush what they can and return in time, whatever the backend.

Real exporters and real backends on loopback; the exits run in a subprocess. A backend that hangs
holds each request for 60 s, so returning within the configured timeout cannot be luck.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from typing import Any, Callable, Dict, List

import pytest

import tracing_api as tracing

tracer = tracing.get_tracer(__name__)
KINDS = ["zipkin", "otlp_protobuf", "otlp_json", "stackdriver"]


def end_spans(count: int, name: str = "s") -> List[str]:
    ids = []
    for _ in range(count):
        with tracer.span(name) as span:
            pass
        ids.append(format(span.context.span_id, "016x"))
    return ids


@pytest.mark.parametrize("kind", KINDS)
def test_shutdown_returns_within_its_timeout_while_the_backend_hangs(
    make_backend: Callable[[str], Any], wait_for: Callable[..., bool], kind: str,
) -> None:
    backend = make_backend(kind)
    backend.fault("hang")
    tracing.configure(**backend.exporter_options(timeout=60.0, deadline=60.0),
                      schedule_delay=0.01)
    end_spans(20)
    assert wait_for(lambda: backend.raw.accepted >= 1)
    started = time.monotonic()
    assert tracing.shutdown(timeout=1.0) is False
    assert time.monotonic() - started < 30  # generous; the backend would hold it for 60 s
    stats = tracing.stats()
    assert stats["ended"] == 20 == stats["exported"] + stats["dropped"] + stats["queued"]


@pytest.mark.parametrize("kind", KINDS)
def test_second_shutdown_is_harmless_and_later_spans_are_dropped_and_counted(
    make_backend: Callable[[str], Any], kind: str,
) -> None:
    backend = make_backend(kind)
    tracing.configure(**backend.exporter_options(), schedule_delay=60.0)
    sent = end_spans(10)
    assert tracing.shutdown(timeout=10.0) is True
    assert sorted(backend.span_ids()) == sorted(sent)  # the queue was flushed on the way out
    assert tracing.shutdown(timeout=10.0) is True
    end_spans(5, "after-shutdown")  # raises nothing
    assert tracing.force_flush(timeout=5.0) in (True, False)  # answers, never raises
    assert tracing.stats() == {"ended": 15, "exported": 10, "dropped": 5, "failed": 0, "queued": 0}
    assert sorted(backend.span_ids()) == sorted(sent)


def _program(backend: Any, spans: int, *, timeout: float, shutdown_timeout: float) -> str:
    """A script that configures ``backend``'s exporter, ends ``spans`` spans and leaves."""
    options: Dict[str, Any] = backend.exporter_options(timeout=timeout, deadline=timeout)
    kind = backend.kind
    if kind == "stackdriver":
        make = textwrap.dedent(f"""
            import grpc
            from google.cloud import trace_v2
            from google.cloud.trace_v2.services.trace_service.transports import (
                TraceServiceGrpcTransport)
            channel = grpc.insecure_channel("127.0.0.1:{backend.port}")
            client = trace_v2.TraceServiceClient(
                transport=TraceServiceGrpcTransport(channel=channel))
            options = dict(exporter="stackdriver", project_id="p", client=client)
        """)
    else:
        extra = {k: v for k, v in options.items() if k in ("exporter", "endpoint", "protocol")}
        make = f"options = {extra!r}\n"
    return make + textwrap.dedent(f"""
        from tracing_api.delivery import RetryPolicy
        import tracing_api as tracing
        options.update(timeout={timeout!r}, retry=RetryPolicy(deadline={timeout!r}))
        tracing.configure(schedule_delay=60.0, shutdown_timeout={shutdown_timeout!r}, **options)
        tracer = tracing.get_tracer("exit")
        for i in range({spans}):
            with tracer.span("at-exit") as span:
                print(format(span.context.span_id, "016x"))
        print("leaving", flush=True)
    """)


@pytest.mark.parametrize("kind", KINDS)
def test_interpreter_exit_delivers_the_spans_still_queued(
    make_backend: Callable[[str], Any], kind: str,
) -> None:
    backend = make_backend(kind)
    code = _program(backend, 25, timeout=10.0, shutdown_timeout=20.0)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=90)
    assert out.returncode == 0, out.stderr
    *ids, last = out.stdout.split()
    assert last == "leaving"
    assert sorted(backend.span_ids()) == sorted(ids)


@pytest.mark.parametrize("kind", KINDS)
def test_interpreter_exit_is_bounded_by_the_shutdown_timeout_when_the_backend_hangs(
    make_backend: Callable[[str], Any], kind: str,
) -> None:
    backend = make_backend(kind)
    backend.fault("hang")
    code = _program(backend, 25, timeout=60.0, shutdown_timeout=1.0)
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=90)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "leaving"
    assert backend.raw.accepted >= 1  # the export was under way, and the backend never answered
    assert time.monotonic() - started < 45  # generous; the backend would hold it for 60 s


EXIT_WITHOUT_NEW_THREADS = textwrap.dedent("""
    import atexit, threading, time
    import tracing_api as tracing
    from tracing_api.export import ExportResult

    class Exporter:  # a vendor client whose shutdown flushes to a collector that is gone
        def export(self, batch):
            print("exported", len(batch), flush=True)
            return ExportResult.SUCCESS
        def force_flush(self, timeout=30.0):
            return True
        def shutdown(self):
            time.sleep(60)
            print("shutdown returned", flush=True)

    tracing.configure(exporter=Exporter(), schedule_delay=60.0, shutdown_timeout=1.0)
    for _ in range(3):
        tracing.get_tracer("exit").start_span("at-exit").end()

    def no_new_threads():  # Python 3.12+ at interpreter exit; runs before tracing's own hook
        def refuse(self):
            raise RuntimeError("can't create new thread at interpreter shutdown")
        threading.Thread.start = refuse

    atexit.register(no_new_threads)
    print("leaving", flush=True)
""")


def test_interpreter_exit_is_bounded_when_no_thread_can_start_and_exporter_shutdown_hangs() -> None:
    out = subprocess.run([sys.executable, "-c", EXIT_WITHOUT_NEW_THREADS], capture_output=True,
                         text=True, timeout=30)  # the exporter's shutdown would hold it for 60 s
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["leaving", "exported 3"]  # the queue went out first
    assert "shutdown returned" not in out.stdout
