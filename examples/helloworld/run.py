"""The traced helloworld: one command that shows a trace cross a gRPC and an HTTP hop.

    python -m examples.helloworld                      # traces drawn as trees (console)
    python examples/helloworld/run.py --exporter jsonl --output spans.jsonl
    python -m examples.helloworld --exporter zipkin --endpoint http://127.0.0.1:9411/api/v2/spans

It starts an HTTP backend (WSGI, ``tracing_api_http.WSGIMiddleware``) and the gRPC greeter
(``tracing_api_grpc`` interceptors, asking the backend through a traced ``urllib`` opener) on
127.0.0.1, sends a few ``SayHello`` calls from a traced client, stops both servers and flushes
the spans. Each call is one trace: client -> greeter -> HTTP backend.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

if not __package__:  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import grpc
import tracing_api_grpc

import tracing_api
from examples.helloworld import helloworld_pb2, helloworld_pb2_grpc
from examples.helloworld.backend import Backend
from examples.helloworld.greeter import GreeterServer

EXPORTERS = ("console", "jsonl", "zipkin", "otlp", "stackdriver")
NAMES = ("Ada", "Grace", "Linus")


def parse(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m examples.helloworld",
        description="Trace gRPC and HTTP calls end to end and show the traces.",
    )
    parser.add_argument("--exporter", choices=EXPORTERS, default="console",
                        help="where the spans go (default: console, drawn as trees)")
    parser.add_argument("--output", metavar="PATH",
                        help="the file the jsonl exporter writes (default: spans.jsonl)")
    parser.add_argument("--endpoint", metavar="URL",
                        help="the collector URL for zipkin or otlp (default: theirs)")
    parser.add_argument("--project", metavar="ID",
                        help="the Google Cloud project for stackdriver (default: from the "
                             "environment or credentials)")
    parser.add_argument("--name", action="append", dest="names", metavar="NAME",
                        help="who to greet (repeatable; default: three names)")
    args = parser.parse_args(argv)
    if args.output and args.exporter != "jsonl":
        parser.error("--output goes with --exporter jsonl")
    if args.endpoint and args.exporter not in ("zipkin", "otlp"):
        parser.error("--endpoint goes with --exporter zipkin or otlp")
    if args.project and args.exporter != "stackdriver":
        parser.error("--project goes with --exporter stackdriver")
    return args


def exporter_options(args: argparse.Namespace) -> Dict[str, Any]:
    """The options of the chosen exporter."""
    if args.exporter == "jsonl":
        return {"path": args.output or "spans.jsonl"}
    if args.endpoint:
        return {"endpoint": args.endpoint}
    if args.project:
        return {"project_id": args.project}
    return {}


def greet(target: str, names: Sequence[str]) -> List[str]:
    """Call ``SayHello`` once per name through a traced channel; the replies."""
    replies = []
    channel = grpc.intercept_channel(
        grpc.insecure_channel(target), *tracing_api_grpc.client_interceptors(target))
    try:
        stub = helloworld_pb2_grpc.GreeterStub(channel)  # type: ignore[no-untyped-call]
        for name in names:
            reply = stub.SayHello(helloworld_pb2.HelloRequest(name=name), timeout=10)
            replies.append(reply.message)
            print(f"greeter answered: {reply.message}", flush=True)
    finally:
        channel.close()
    return replies


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the demo; the process exit status."""
    args = parse(argv)
    try:
        # A long schedule: the spans go out together at shutdown, once both servers have
        # stopped and every span has ended, so each trace is drawn whole.
        tracing_api.configure(
            exporter=args.exporter, service_name="helloworld", processor="batch",
            schedule_delay=60.0, **exporter_options(args),
        )
    except tracing_api.ConfigurationError as exc:
        print(f"cannot trace to {args.exporter}: {exc}", file=sys.stderr)
        return 2
    backend = Backend().start()
    greeter = GreeterServer(backend.url).start()
    print(f"HTTP backend on {backend.url}, gRPC greeter on {greeter.target}", flush=True)
    try:
        greet(greeter.target, args.names or NAMES)
    finally:
        greeter.stop()
        backend.stop()
        flushed = tracing_api.shutdown(timeout=10.0)
    counts = tracing_api.stats()
    delivered = flushed and counts["dropped"] == 0  # shutdown's True says "in time", not "accepted"
    where = {"console": "above", "jsonl": f"in {args.output or 'spans.jsonl'}"}.get(
        args.exporter, f"to {args.exporter}")
    print(f"{counts['exported']} spans exported {where}; {counts['dropped']} dropped"
          + ("" if delivered else " (the exporter did not confirm delivery)"), flush=True)
    return 0 if delivered else 1


if __name__ == "__main__":
    sys.exit(main())
