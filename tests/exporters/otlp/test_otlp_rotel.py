"""End to end: our OTLP/HTTP requests accepted by rotel, an independent OTLP receiver (Rust)."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest
from tracing_api_otlp import encode_json, encode_protobuf

from tracing_api import delivery
from tracing_api.export import SpanData
from tracing_api.testing import representative_spans


def _binary() -> Path:
    try:
        import rotel
    except ImportError:
        pytest.skip("rotel is not installed")
    path = Path(rotel.__file__).parent / "rotel-agent"
    if not path.exists():
        pytest.skip(f"no rotel-agent binary at {path}")
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def rotel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tuple[str, Path]]:
    """A running rotel agent: its OTLP/HTTP URL and the file its span log goes to."""
    binary = _binary()
    folder = tmp_path_factory.mktemp("rotel")
    log = folder / "rotel.log"
    http_port, grpc_port = _free_port(), _free_port()
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(binary), "start", "--otlp-grpc-endpoint", f"127.0.0.1:{grpc_port}",
             "--otlp-http-endpoint", f"127.0.0.1:{http_port}", "--exporter", "blackhole",
             "--debug-log", "traces", "--debug-log-verbosity", "detailed",
             "--pid-file", str(folder / "rotel.pid")],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "NO_COLOR": "1"})
    try:
        deadline = time.monotonic() + 15.0
        while not _listening(http_port):
            assert process.poll() is None, f"rotel exited: {log.read_text(errors='replace')}"
            assert time.monotonic() < deadline, "rotel did not start listening in 15 s"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{http_port}/v1/traces", log
    finally:
        process.terminate()
        try:
            process.wait(5.0)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5.0)


def _printed(log: Path, needles: List[str], timeout: float = 10.0) -> List[str]:
    """The needles rotel has not printed yet after waiting up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        text = log.read_text(errors="replace")
        missing = [n for n in needles if n not in text]
        if not missing or time.monotonic() > deadline:
            return missing
        time.sleep(0.1)


def _finite(spans: List[SpanData]) -> List[SpanData]:
    """The spans without their NaN and infinite attributes (see the divergence test below)."""
    def keep(value: object) -> bool:
        return not (isinstance(value, float) and not math.isfinite(value))

    return [s._replace(attributes={k: v for k, v in s.attributes.items() if keep(v)})
            for s in spans]


def test_rotel_accepts_our_protobuf_request_and_prints_our_span_ids(
        rotel: Tuple[str, Path]) -> None:
    url, log = rotel
    spans = representative_spans()
    response = delivery.post(url, encode_protobuf(spans),
                             headers={"Content-Type": "application/x-protobuf"}, timeout=10.0)
    assert response.status == 200, response
    assert _printed(log, [s.context.span_id_hex for s in spans]) == []


def test_rotel_accepts_our_json_request_and_prints_our_span_ids(rotel: Tuple[str, Path]) -> None:
    url, log = rotel
    spans = [s._replace(context=s.context._replace(span_id=s.context.span_id ^ 0xFF))
             for s in _finite(representative_spans())]  # ids of their own: not the protobuf's
    response = delivery.post(url, encode_json(spans),
                             headers={"Content-Type": "application/json"}, timeout=10.0)
    assert response.status == 200, response
    assert _printed(log, [s.context.span_id_hex for s in spans]) == []


def test_rotel_diverges_from_the_json_mapping_on_non_finite_doubles(
        rotel: Tuple[str, Path]) -> None:
    """Protobuf's JSON mapping writes NaN and infinities as "NaN", "Infinity", "-Infinity",
    and so do we (the Collector reads them); rotel answers 400. In protobuf, it takes them.
    """
    url, _ = rotel
    span = representative_spans()[0]._replace(attributes={"x": float("nan")})
    as_json = delivery.post(url, encode_json([span]), headers={"Content-Type": "application/json"})
    as_protobuf = delivery.post(url, encode_protobuf([span]),
                                headers={"Content-Type": "application/x-protobuf"})
    assert (as_json.status, as_protobuf.status) == (400, 200)


def test_rotel_rejects_enum_names_in_json(rotel: Tuple[str, Path]) -> None:
    """The receiver is strict where OTLP/JSON is: proof it is checking what we send."""
    url, _ = rotel
    body = (b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"4bf92f3577b34da6a3ce929d0e0e'
            b'4736","spanId":"00f067aa0ba902b7","name":"x","kind":"SPAN_KIND_SERVER"}]}]}]}')
    response = delivery.post(url, body, headers={"Content-Type": "application/json"})
    assert response.status == 400
