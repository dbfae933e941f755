"""The zipkin exporter against a real HTTP server on 127.0.0.1: requests, options, failures."""

from __future__ import annotations

import json
import socket
import threading
from typing import Any, Iterator, List

import pytest
from tracing_api_zipkin import DEFAULT_ENDPOINT, ZipkinExporter

import tracing_api as tracing
from tracing_api import delivery
from tracing_api.export import ExportResult, PartialSuccess
from tracing_api.testing import RecordingServer, Reply, check_exporter, representative_spans

FAST = delivery.RetryPolicy(initial_backoff=0.01, max_backoff=0.05, deadline=5.0)


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    with RecordingServer(default=Reply(202)) as running:
        yield running


def spans_received(server: RecordingServer) -> List[Any]:
    return [span for request in server.requests for span in json.loads(request.body)]


def exporter_for(server: RecordingServer, **options: Any) -> ZipkinExporter:
    return ZipkinExporter(server.url + "/api/v2/spans", retry=FAST, **options)


def test_export_posts_json_to_the_spans_path(server: RecordingServer) -> None:
    assert exporter_for(server).export(representative_spans()) is ExportResult.SUCCESS
    request = server.requests[0]
    assert (request.method, request.path, request.headers["content-type"]) == (
        "POST", "/api/v2/spans", "application/json")


def test_every_request_body_passes_both_schemas(server: RecordingServer, official: Any,
                                                 strict: Any) -> None:
    exporter = exporter_for(server, compression="gzip")
    for span in representative_spans():
        exporter.export([span])
    exporter.export(representative_spans())
    assert [(official(r.body), strict(r.body)) for r in server.requests] == [([], [])] * 10


def test_gzip_compression_sends_a_gzipped_body(server: RecordingServer) -> None:
    exporter_for(server, compression="gzip").export(representative_spans()[:1])
    request = server.requests[0]
    assert request.headers["content-encoding"] == "gzip"
    assert json.loads(request.body)[0]["name"] == "GET /users/{id}"


def test_configure_selects_the_exporter_by_name(server: RecordingServer) -> None:
    tracing.configure(exporter="zipkin", processor="simple", service_name="shop",
                      endpoint=server.url + "/api/v2/spans")
    with tracing.get_tracer("t").span("checkout", kind=tracing.SpanKind.SERVER):
        pass
    tracing.shutdown()
    [span] = spans_received(server)
    assert (span["name"], span["kind"], span["localEndpoint"]["serviceName"]) == (
        "checkout", "SERVER", "shop")


def test_endpoint_comes_from_the_environment(server: RecordingServer,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_ZIPKIN_ENDPOINT", "http://127.0.0.1:1/nowhere")
    monkeypatch.setenv("TRACING_ZIPKIN_ENDPOINT", server.url + "/api/v2/spans")
    assert ZipkinExporter().url == server.url + "/api/v2/spans"


def test_default_endpoint_is_local_zipkin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRACING_ZIPKIN_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_ZIPKIN_ENDPOINT", raising=False)
    assert ZipkinExporter().url == DEFAULT_ENDPOINT == "http://localhost:9411/api/v2/spans"


def test_timeout_from_the_environment_is_in_milliseconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_ZIPKIN_TIMEOUT", "2500")
    assert ZipkinExporter().timeout == 2.5


def test_bad_timeout_in_the_environment_fails_configure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACING_ZIPKIN_TIMEOUT", "soon")
    with pytest.raises(tracing.ConfigurationError, match="TRACING_ZIPKIN_TIMEOUT"):
        tracing.configure(exporter="zipkin")


def test_bad_endpoint_fails_configure() -> None:
    with pytest.raises(tracing.ConfigurationError, match="endpoint"):
        tracing.configure(exporter="zipkin", endpoint="localhost:9411")


def test_passes_the_conformance_kit(server: RecordingServer) -> None:
    check_exporter(lambda: exporter_for(server),
                   received=lambda: [s["id"] for s in spans_received(server)])


def test_retries_503_and_429_with_retry_after(server: RecordingServer) -> None:
    server.reply_with(Reply(503), Reply(429, {"Retry-After": "0"}))
    exporter = exporter_for(server)
    assert exporter.export(representative_spans()[:2]) is ExportResult.SUCCESS
    assert len(server.requests) == 3


def test_does_not_retry_a_400(server: RecordingServer) -> None:
    server.reply_with(Reply(400, {}, b"bad span"))
    exporter = exporter_for(server)
    assert exporter.export(representative_spans()[:2]) is ExportResult.FAILURE
    assert (len(server.requests), exporter.stats()["spans_failed"]) == (1, 2)


def test_gives_up_on_repeated_500(server: RecordingServer) -> None:
    server.default = Reply(500)
    exporter = exporter_for(server)
    assert exporter.export(representative_spans()[:1]) is ExportResult.FAILURE
    assert len(server.requests) == 1


def test_connection_refused_fails_within_the_deadline() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    policy = delivery.RetryPolicy(initial_backoff=0.01, max_backoff=0.02, deadline=0.3)
    exporter = ZipkinExporter(f"http://127.0.0.1:{port}/api/v2/spans", retry=policy)
    assert exporter.export(representative_spans()[:1]) is ExportResult.FAILURE
    assert exporter.stats()["attempts"] >= 2


def test_hanging_server_fails_after_the_request_timeout() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        exporter = ZipkinExporter(f"http://127.0.0.1:{listener.getsockname()[1]}/",
                                  timeout=0.2, retry=delivery.NO_RETRY)
        assert exporter.export(representative_spans()[:1]) is ExportResult.FAILURE
    finally:
        listener.close()


def test_garbage_reply_is_a_failure_not_an_exception(server: RecordingServer) -> None:
    server.default = Reply(raw=b"SSH-2.0-OpenSSH\r\n")
    exporter = exporter_for(server, timeout=2.0)
    assert exporter.export(representative_spans()[:1]) is ExportResult.FAILURE
    assert len(server.requests) == 1  # a wrong protocol will not come right by retrying


def test_shutdown_interrupts_a_long_retry_after(server: RecordingServer) -> None:
    server.reply_with(Reply(503, {"Retry-After": "60"}))
    exporter = ZipkinExporter(server.url, retry=delivery.RetryPolicy(deadline=120.0))
    results: List[ExportResult] = []
    worker = threading.Thread(
        target=lambda: results.append(exporter.export(representative_spans()[:1])))
    worker.start()
    assert server.wait_for(1)
    exporter.shutdown()
    worker.join(10.0)
    assert results == [ExportResult.FAILURE]


def test_batch_pipeline_shutdown_is_bounded_with_a_hanging_backend() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        tracing.configure(exporter="zipkin", endpoint=f"http://127.0.0.1:{listener.getsockname()[1]}/",
                          timeout=0.3, schedule_delay=0.01)
        with tracing.get_tracer("t").span("lost"):
            pass
        done = threading.Thread(target=lambda: tracing.shutdown(2.0))
        done.start()
        done.join(10.0)
        assert not done.is_alive()
    finally:
        listener.close()


def test_spans_with_times_zipkin_cannot_carry_are_left_out_and_the_rest_sent(
    server: RecordingServer, official: Any,
) -> None:
    spans = representative_spans()
    with_event = next(s for s in spans if s.events)
    bad = [spans[0]._replace(start_time=1.7e18), spans[1]._replace(end_time="later"),
           with_event._replace(events=(with_event.events[0]._replace(timestamp=1.5e18),))]
    exporter = exporter_for(server)
    assert exporter.export([*bad, *spans]) == PartialSuccess(len(spans))
    assert sorted(s["id"] for s in spans_received(server)) == sorted(
        f"{s.context.span_id:016x}" for s in spans)
    assert [official(r.body) for r in server.requests] == [[]]
    assert exporter.stats()["spans_failed"] == len(bad)


def test_a_span_with_an_invalid_context_is_counted_as_failed_not_exported(
        server: RecordingServer) -> None:
    good = representative_spans()[0]
    bad = good._replace(context=tracing.SpanContext(0, 1, 1))
    exporter = exporter_for(server)
    assert exporter.export([bad, good]) == PartialSuccess(1)
    assert len(spans_received(server)) == 1
    stats = exporter.stats()
    assert (stats["spans_exported"], stats["spans_failed"]) == (1, 1)


def test_query_values_in_the_url_are_kept_out_of_repr_and_logs(
        caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as taken:  # a port nobody listens on: the export fails and logs
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
    exporter = ZipkinExporter(f"http://127.0.0.1:{port}/api/v2/spans?sig=TOPSECRET",
                              retry=delivery.RetryPolicy(deadline=0.2, initial_backoff=0.05))
    with caplog.at_level("INFO", logger="tracing_api.delivery"):
        assert exporter.export(representative_spans()[:1]) is ExportResult.FAILURE
    assert "TOPSECRET" not in repr(exporter)
    assert "sig=REDACTED" in repr(exporter)
    assert caplog.records and all("TOPSECRET" not in r.getMessage() for r in caplog.records)


def test_a_bare_query_item_and_a_bad_urls_query_are_not_shown() -> None:
    exporter = ZipkinExporter("http://127.0.0.1:9411/api/v2/spans?TOPSECRET")
    assert "TOPSECRET" not in repr(exporter)
    with pytest.raises(tracing.ConfigurationError) as raised:
        ZipkinExporter("http://127.0.0.1:99999/api/v2/spans?api_key=TOPSECRET")
    assert "TOPSECRET" not in str(raised.value) and "api_key=REDACTED" in str(raised.value)
