"""What ending a span costs the application when the backend is healthy, down, failing or hung.

    .venv/bin/python benchmarks/bench_backend_faults.py --fast -o /tmp/faults.json
    .venv/bin/python -m pyperf compare_to --table /tmp/faults.json   # or: pyperf stats

Benchmarks are named ``span_end.{exporter}.{backend}``: one ``with tracer.span(...)`` block with
an attribute, in an application configured with the defaults (batch processor, queue of 32,768,
batches of 512) and the real ``zipkin`` or ``otlp`` exporter. The backend is on loopback in a
separate process: ``healthy`` accepts every batch, ``refused`` has nothing listening, ``http_503``
answers 503, ``hanging`` accepts connections and never answers. The figures should stay in one
cost range: the application never waits for the network (a full queue drops and counts).

The second mode measures the load held without a single drop (the figures in
docs/reliability.md): spans per second from 1 and 8 threads, paced, for some seconds each, at
rising rates until the first drop::

    .venv/bin/python benchmarks/bench_backend_faults.py load [--seconds 5] [--exporter zipkin]
"""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

import tracing_api as tracing

BACKENDS = ("healthy", "refused", "http_503", "hanging")
EXPORTERS = ("zipkin", "otlp")

# A backend in its own process, so its work does not take the application's interpreter lock.
_SERVER = textwrap.dedent("""
    import socket, sys, threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    mode = sys.argv[1]
    if mode == "hanging":
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(1024)
        print(sock.getsockname()[1], flush=True)
        held = []
        while True:
            held.append(sock.accept()[0])
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(503 if mode == "http_503" else 202)
            self.send_header("Content-Length", "0")
            self.end_headers()
        def log_message(self, *args):
            pass
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()
""")


def start_backend(mode: str) -> Tuple[int, Optional[subprocess.Popen[str]]]:
    """A backend behaving as ``mode``; its port and process (None for ``refused``)."""
    if mode == "refused":
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1]), None
    process = subprocess.Popen([sys.executable, "-c", _SERVER, mode], stdout=subprocess.PIPE,
                               text=True)
    assert process.stdout is not None
    return int(process.stdout.readline()), process


def configure(exporter: str, port: int, **settings: Any) -> None:
    """The application's configuration: defaults, and the real exporter pointed at ``port``."""
    from tracing_api.delivery import RetryPolicy

    retry = RetryPolicy(deadline=5.0)
    if exporter == "zipkin":
        tracing.configure(exporter="zipkin", endpoint=f"http://127.0.0.1:{port}/api/v2/spans",
                          timeout=30.0, retry=retry, **settings)
    else:
        tracing.configure(exporter="otlp", endpoint=f"http://127.0.0.1:{port}", timeout=30.0,
                          retry=retry, **settings)


# ------------------------------------------------------------------------------ span-end cost

_current: Dict[str, Any] = {}


def _span_end(loops: int, exporter: str, backend: str) -> float:
    if _current.get("key") != (exporter, backend):
        port, process = start_backend(backend)
        _current.update(key=(exporter, backend), process=process)
        if process is not None:
            atexit.register(process.kill)
        # The failing backends' warnings (once a minute each) would interleave with the output.
        logging.getLogger("tracing_api").setLevel(logging.ERROR)
        configure(exporter, port)
    tracer = tracing.get_tracer("bench")
    start = time.perf_counter()
    for i in range(loops):
        with tracer.span("GET /users/{id}") as span:
            span.set_attribute("i", i)
    return time.perf_counter() - start


def bench() -> None:
    """The pyperf benchmarks."""
    import pyperf  # type: ignore[import-untyped]

    runner = pyperf.Runner()
    for exporter in EXPORTERS:
        for backend in BACKENDS:
            runner.bench_time_func(f"span_end.{exporter}.{backend}", _span_end, exporter, backend)


# --------------------------------------------------------------------------------- load held


def _produce(rate: float, seconds: float, threads: int) -> int:
    """End spans at ``rate`` per second in all, from ``threads`` threads; the number ended."""
    tracer = tracing.get_tracer("load")
    chunk = 50
    per_thread = rate / threads
    counts: List[int] = [0] * threads

    def work(n: int) -> None:
        start = time.perf_counter()
        done = 0
        while True:
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                break
            due = int(elapsed * per_thread) + chunk
            while done < due:
                with tracer.span("GET /users/{id}") as span:
                    span.set_attribute("http.response.status_code", 200)
                done += 1
            time.sleep(chunk / per_thread / 2)
        counts[n] = done

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(counts)


def held_load(exporter: str, seconds: float) -> None:
    """Print, for 1 and 8 threads, the highest rate tried that ended without a drop."""
    port, process = start_backend("healthy")
    try:
        print(f"exporter {exporter}, default queue (32768) and batch (512), {seconds:g} s a rate")
        for threads in (1, 8):
            best = 0
            for rate in (5_000, 10_000, 20_000, 30_000, 40_000, 50_000, 60_000, 80_000, 100_000,
                         120_000, 150_000):
                configure(exporter, port)
                ended = _produce(rate, seconds, threads)
                tracing.shutdown(timeout=60.0)
                stats = tracing.stats()
                achieved = ended / seconds
                ok = stats["dropped"] == 0 and stats["exported"] == ended
                print(f"  {threads} thread(s) at {rate:>7,}/s: ended {ended:>8,} "
                      f"({achieved:>9,.0f}/s), exported {stats['exported']:>8,}, "
                      f"dropped {stats['dropped']:>7,}")
                if not ok or achieved < rate * 0.9:
                    break
                best = rate
            print(f"held with zero drops from {threads} thread(s): {best:,} spans/s")
    finally:
        if process is not None:
            process.kill()


def main() -> None:
    """``load`` measures the load held; anything else runs the pyperf benchmarks."""
    if len(sys.argv) > 1 and sys.argv[1] == "load":
        parser = argparse.ArgumentParser(prog="bench_backend_faults.py load")
        parser.add_argument("--seconds", type=float, default=5.0)
        parser.add_argument("--exporter", choices=EXPORTERS, default="zipkin")
        args = parser.parse_args(sys.argv[2:])
        os.environ.pop("TRACING_EXPORTER", None)
        held_load(args.exporter, args.seconds)
        return
    bench()


if __name__ == "__main__":
    main()
