"""The otlp exporter against a real HTTP server on 127.0.0.1: requests, options, failures."""

from __future__ import annotations

import socket
import sys
import threading
from pathlib import Path
from typing import Any, Iterator, List

import pytest
from tracing_api_otlp import OtlpExporter, parse_headers, traces_url

import tracing_api as tracing
from tracing_api import delivery
from tracing_api.export import ExportResult, PartialSuccess
from tracing_api.testing import RecordingServer, Reply, check_exporter, representative_spans

sys.path.insert(0, str(Path(__file__).parent))
from otlp_decoding import assert_matches, flat, parse_json, parse_protobuf

FAST = delivery.RetryPolicy(initial_backoff=0.01, max_backoff=0.05, deadline=5.0)
@pytest.fixture
def server() -> Iterator[RecordingServer]:
    with RecordingServer() as running:
        yield running


def sent_spans(server: RecordingServer) -> List[Any]:
    spans = []
    for request in server.requests:
        json_body = request.headers["content-type"] == "application/json"
        decoded = parse_json(request.body) if json_body else parse_protobuf(request.body)
        spans.extend(flat(decoded))
    return spans


def test_protobuf_request_goes_to_v1_traces(server: RecordingServer) -> None:
    spans = representative_spans()
    assert OtlpExporter(server.url, retry=FAST).export(spans) is ExportResult.SUCCESS
    request = server.requests[0]
    assert (request.path, request.headers["content-type"]) == ("/v1/traces",
                                                               "application/x-protobuf")
    sent = {s.span_id: (r, sc, s) for r, sc, s in sent_spans(server)}
    for span in spans:
        assert_matches(span, *sent[span.context.span_id.to_bytes(8, "big")])


def test_json_request_carries_every_field(server: RecordingServer) -> None:
    spans = representative_spans()
    OtlpExporter(server.url, protocol="http/json", retry=FAST).export(spans)
    assert server.requests[0].headers["content-type"] == "application/json"
    sent = {s.span_id: (r, sc, s) for r, sc, s in sent_spans(server)}
    for span in spans:
        assert_matches(span, *sent[span.context.span_id.to_bytes(8, "big")])


def test_gzip_compression(server: RecordingServer) -> None:
    OtlpExporter(server.url, compression="gzip", retry=FAST).export(representative_spans()[:1])
    assert server.requests[0].headers["content-encoding"] == "gzip"
    assert len(sent_spans(server)) == 1


def test_configure_selects_the_exporter_by_name(server: RecordingServer) -> None:
    tracing.configure(exporter="otlp", processor="simple", service_name="shop",
                      endpoint=server.url)
    with tracing.get_tracer("t").span("checkout"):
        pass
    tracing.shutdown()
    [(resource, _, span)] = sent_spans(server)
    assert span.name == "checkout"
    assert {kv.key: kv.value.string_value for kv in resource.attributes}["service.name"] == "shop"


def test_environment_sets_endpoint_headers_timeout_compression_and_protocol(
        server: RecordingServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", server.url + "/base/")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "api-key=s%20ecret,x-team=core")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "2500")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    exporter = OtlpExporter(retry=FAST)
    exporter.export(representative_spans()[:1])
    request = server.requests[0]
    assert (request.path, request.headers["api-key"], request.headers["x-team"],
            request.headers["content-encoding"], request.headers["content-type"],
            exporter.timeout) == ("/base/v1/traces", "s ecret", "core", "gzip",
                                  "application/json", 2.5)


def test_traces_endpoint_is_used_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://general:4318")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://collector:9999/custom")
    assert traces_url(None) == "http://collector:9999/custom"


def test_tracing_variables_win_over_otel_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel:4318")
    monkeypatch.setenv("TRACING_OTLP_ENDPOINT", "http://ours:4318")
    assert traces_url(None) == "http://ours:4318/v1/traces"


def test_default_endpoint_is_local() -> None:
    assert OtlpExporter().url == "http://localhost:4318/v1/traces"


def test_endpoint_option_gets_v1_traces_once() -> None:
    assert (traces_url("http://c:4318/"), traces_url("http://c:4318/v1/traces")) == (
        "http://c:4318/v1/traces", "http://c:4318/v1/traces")


def test_an_endpoint_with_a_query_gets_v1_traces_in_its_path() -> None:
    assert traces_url("https://c:4318/otlp?tenant=a") == "https://c:4318/otlp/v1/traces?tenant=a"
    assert traces_url("http://c:4318/v1/traces?x=1") == "http://c:4318/v1/traces?x=1"


def test_parse_headers_rejects_a_member_without_a_value() -> None:
    with pytest.raises(ValueError, match="key=value"):
        parse_headers("good=1,bad")


@pytest.mark.parametrize(("option", "value"), [("protocol", "grpc"), ("compression", "zstd"),
                                               ("endpoint", "collector:4318"), ("timeout", -1)])
def test_bad_option_fails_configure(option: str, value: Any) -> None:
    with pytest.raises(tracing.ConfigurationError, match=option):
        tracing.configure(exporter="otlp", **{option: value})


@pytest.mark.parametrize("protocol", ["http/protobuf", "http/json"])
def test_passes_the_conformance_kit(server: RecordingServer, protocol: str) -> None:
    check_exporter(lambda: OtlpExporter(server.url, protocol=protocol, retry=FAST),
                   received=lambda: [int.from_bytes(s.span_id, "big")
                                     for _, _, s in sent_spans(server)])


def test_retries_503_and_429_with_retry_after(server: RecordingServer) -> None:
    server.reply_with(Reply(503), Reply(429, {"Retry-After": "0"}))
    assert OtlpExporter(server.url, retry=FAST).export(
        representative_spans()[:1]) is ExportResult.SUCCESS
    assert len(server.requests) == 3


def test_does_not_retry_a_400(server: RecordingServer) -> None:
    server.reply_with(Reply(400))
    exporter = OtlpExporter(server.url, retry=FAST)
    assert exporter.export(representative_spans()[:1]) is ExportResult.FAILURE
    assert (len(server.requests), exporter.stats()["batches_failed"]) == (1, 1)


def test_hanging_collector_fails_after_the_timeout() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        exporter = OtlpExporter(f"http://127.0.0.1:{listener.getsockname()[1]}", timeout=0.2,
                                retry=delivery.NO_RETRY)
        assert exporter.export(representative_spans()[:1]) is ExportResult.FAILURE
    finally:
        listener.close()


def test_shutdown_interrupts_a_long_retry_after(server: RecordingServer) -> None:
    server.reply_with(Reply(503, {"Retry-After": "60"}))
    exporter = OtlpExporter(server.url, retry=delivery.RetryPolicy(deadline=120.0))
    results: List[ExportResult] = []
    worker = threading.Thread(
        target=lambda: results.append(exporter.export(representative_spans()[:1])))
    worker.start()
    assert server.wait_for(1)
    exporter.shutdown()
    worker.join(10.0)
    assert results == [ExportResult.FAILURE]


@pytest.mark.parametrize("protocol", ["http/protobuf", "http/json"])
def test_a_span_that_cannot_be_encoded_is_left_out_and_the_rest_sent(
    server: RecordingServer, protocol: str,
) -> None:
    spans = representative_spans()
    bad = spans[1]._replace(start_time=-1)  # hand-made: no OTLP fixed64 holds it
    exporter = OtlpExporter(server.url, retry=FAST, protocol=protocol)
    result = exporter.export([*spans[:1], bad, *spans[1:]])
    assert result == PartialSuccess(len(spans))
    sent = sorted(s.span_id for _, _, s in sent_spans(server))
    assert sent == sorted(s.context.span_id.to_bytes(8, "big") for s in spans)
    assert (exporter.stats()["spans_exported"], exporter.stats()["spans_failed"]) == (len(spans), 1)


def test_a_batch_of_spans_none_of_which_encodes_is_not_sent(server: RecordingServer) -> None:
    bad = representative_spans()[0]._replace(end_time=1 << 70)
    exporter = OtlpExporter(server.url, retry=FAST)
    assert exporter.export([bad, bad]) is ExportResult.FAILURE
    assert server.requests == []
    assert exporter.stats()["spans_failed"] == 2


@pytest.mark.parametrize("protocol", ["http/protobuf", "http/json"])
def test_spans_the_collector_reports_as_rejected_are_counted_as_failed(protocol: str) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTracePartialSuccess,
        ExportTraceServiceResponse,
    )

    partial = ExportTracePartialSuccess(rejected_spans=2, error_message="2 spans too old")
    body = (b'{"partialSuccess": {"rejectedSpans": "2", "errorMessage": "2 spans too old"}}'
            if protocol == "http/json"
            else ExportTraceServiceResponse(partial_success=partial).SerializeToString())
    with RecordingServer(default=Reply(200, body=body)) as collector:
        exporter = OtlpExporter(collector.url, retry=FAST, protocol=protocol)
        result = exporter.export(representative_spans()[:3])
        assert len(collector.requests) == 1  # refused spans are not sent again
    assert result == PartialSuccess(1)
    assert (exporter.stats()["spans_exported"], exporter.stats()["spans_failed"]) == (1, 2)


def test_an_empty_success_reply_counts_every_span(server: RecordingServer) -> None:
    exporter = OtlpExporter(server.url, retry=FAST)
    assert exporter.export(representative_spans()[:3]) is ExportResult.SUCCESS
    assert exporter.stats()["spans_exported"] == 3


def test_spans_with_an_invalid_context_are_left_out_and_counted_as_failed(
    server: RecordingServer,
) -> None:
    good = representative_spans()[0]
    no_trace = good._replace(context=good.context._replace(trace_id=0))
    too_wide = good._replace(context=good.context._replace(span_id=1 << 64))
    exporter = OtlpExporter(server.url, retry=FAST)
    assert exporter.export([good, no_trace, too_wide]) == PartialSuccess(1)
    assert len(sent_spans(server)) == 1
    assert exporter.stats()["spans_failed"] == 2


@pytest.mark.parametrize("protocol", ["http/protobuf", "http/json"])
def test_a_tracer_version_given_as_a_number_is_sent_as_text(
    server: RecordingServer, protocol: str,
) -> None:
    from tracing_api.testing import capture

    with capture() as captured, tracing.get_tracer("lib", 1.2).span("s"):  # type: ignore[arg-type]
        pass
    exporter = OtlpExporter(server.url, retry=FAST, protocol=protocol)
    assert exporter.export(captured.spans) is ExportResult.SUCCESS
    request = server.requests[0]
    decoded = parse_json(request.body) if protocol == "http/json" else parse_protobuf(request.body)
    assert decoded.resource_spans[0].scope_spans[0].scope.version == "1.2"


def test_encode_request_replaces_lone_surrogates_as_the_exporter_does() -> None:
    from tracing_api_otlp import encode_request

    span = representative_spans()[0]
    odd = span._replace(name="caf\udce9", attributes={"file\udce9": "report-\udce9.txt"})
    message = encode_request([odd])
    sent = message.resource_spans[0].scope_spans[0].spans[0]
    assert sent.name == "caf?"
    assert (sent.attributes[0].key, sent.attributes[0].value.string_value) == (
        "file?", "report-?.txt")
