"""Delivery: bad spans isolated, retries on transient failures only, bounded waits, shutdown."""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any, Callable, List

import grpc
import pytest
from google.auth import credentials as ga_credentials
from google.auth import exceptions as ga_exceptions
from google.protobuf import duration_pb2  # type: ignore[import-untyped]
from google.rpc import code_pb2, error_details_pb2, status_pb2  # type: ignore[import-untyped]
from grpc_status import rpc_status  # type: ignore[import-untyped]

from tracing_api import ExportResult
from tracing_api.delivery import RetryPolicy
from tracing_api.export import PartialSuccess, SpanData
from tracing_api.testing import check_exporter

WATCHDOG = 20.0  # seconds a call may take before the test calls it hung


def _run(function: Callable[[], Any]) -> Any:
    """Run ``function`` on a thread; fail the test if it does not return within WATCHDOG."""
    result: List[Any] = []
    thread = threading.Thread(target=lambda: result.append(function()), daemon=True)
    thread.start()
    thread.join(WATCHDOG)
    assert not thread.is_alive(), "the call did not return: not bounded"
    return result[0]


def _poisoned(request: Any, context: Any) -> Any:
    if any("poison" in span.attributes.attribute_map for span in request.spans):
        return grpc.StatusCode.INVALID_ARGUMENT
    return None


def test_bad_spans_are_isolated_and_the_rest_delivered(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    cloud_trace.answer = _poisoned
    spans = [make_span(i + 1, attributes={"poison": 1} if i in (2, 5) else {}) for i in range(8)]
    exporter = make_exporter()
    assert exporter.export(spans) == PartialSuccess(6)  # the pipeline counts the six as exported
    got = cloud_trace.span_ids()
    assert sorted(got) == [format(i + 1, "016x") for i in range(8) if i not in (2, 5)]
    assert len(got) == len(set(got))  # no span delivered twice
    assert exporter.stats()["spans_rejected"] == 2
    assert exporter.stats()["spans_exported"] == 6


def test_isolation_works_across_split_requests(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    cloud_trace.answer = _poisoned
    spans = [make_span(i + 1, attributes={"poison": 1} if i == 4 else {}) for i in range(9)]
    exporter = make_exporter(max_spans_per_request=3)
    exporter.export(spans)
    assert sorted(cloud_trace.span_ids()) == [format(i + 1, "016x") for i in range(9) if i != 4]


def test_a_few_bad_spans_spread_through_a_big_batch_are_all_isolated(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    cloud_trace.answer = _poisoned
    bad = (10, 30, 70)
    spans = [make_span(i + 1, attributes={"poison": 1} if i in bad else {}) for i in range(100)]
    exporter = make_exporter()
    assert exporter.export(spans) == PartialSuccess(97)
    assert exporter.stats()["spans_rejected"] == 3


def test_four_bad_spans_spread_through_512_cost_no_good_neighbour(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    cloud_trace.answer = _poisoned
    bad = (0, 64, 128, 256)
    spans = [make_span(i + 1, attributes={"poison": 1} if i in bad else {}) for i in range(512)]
    exporter = make_exporter()
    assert exporter.export(spans) == PartialSuccess(508)
    got = cloud_trace.span_ids()
    assert sorted(got) == [format(i + 1, "016x") for i in range(512) if i not in bad]
    assert exporter.stats()["spans_rejected"] == 4


def test_cutting_a_request_full_of_bad_spans_stops_at_its_request_budget(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    cloud_trace.answer = _poisoned
    # The first quarter all bad: its other quarters are taken, so it does not look refused
    # whole, and isolating 128 bad spans one by one would take 255 more requests.
    spans = [make_span(i + 1, attributes={"poison": 1} if i < 128 else {}) for i in range(512)]
    exporter = make_exporter()
    assert exporter.export(spans) == PartialSuccess(384)
    assert len(cloud_trace.attempts) <= 1 + 2 * 8 * 9
    assert exporter.stats()["spans_rejected"] == 128


def test_batch_refused_whole_costs_a_bounded_number_of_requests(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    cloud_trace.answer = lambda request, context: grpc.StatusCode.INVALID_ARGUMENT
    exporter = make_exporter()
    assert exporter.export([make_span(i + 1) for i in range(512)]) is ExportResult.FAILURE
    assert len(cloud_trace.attempts) <= 15  # halving to single spans would be 1,023
    assert exporter.stats()["spans_rejected"] == 512


def test_batch_refused_whole_logs_one_warning_with_the_count(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
    caplog: pytest.LogCaptureFixture,
) -> None:
    cloud_trace.answer = lambda request, context: grpc.StatusCode.INVALID_ARGUMENT
    exporter = make_exporter()
    with caplog.at_level(logging.WARNING, logger="tracing_api.stackdriver"):
        exporter.export([make_span(i + 1) for i in range(64)])
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "refused 64 of 64 spans" in warnings[0]


def test_invalid_argument_is_not_retried(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    cloud_trace.answer = _poisoned
    exporter = make_exporter()
    assert exporter.export([make_span(attributes={"poison": 1})]) is ExportResult.FAILURE
    assert len(cloud_trace.attempts) == 1


def test_permission_denied_is_not_retried(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    cloud_trace.answer = lambda request, context: grpc.StatusCode.PERMISSION_DENIED
    exporter = make_exporter()
    assert exporter.export([make_span(1), make_span(2)]) is ExportResult.FAILURE
    assert len(cloud_trace.attempts) == 1  # a permanent failure is not bisected either
    assert exporter.stats()["spans_failed"] == 2


class _RevokedKey(ga_credentials.Credentials):
    """Credentials the token server refuses, as it does a deleted service account key."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]

    def refresh(self, request: Any) -> None:
        raise ga_exceptions.RefreshError(  # type: ignore[no-untyped-call]
            "invalid_grant: Invalid JWT Signature.")


class _TokenServerAt(ga_credentials.Credentials):
    """Credentials whose token server is at ``url``: each refresh asks it for a token."""

    def __init__(self, url: str) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.url = url

    def refresh(self, request: Any) -> None:
        request(url=self.url, method="POST", timeout=2.0)
        raise AssertionError("the token server was expected to be out of reach")


def test_credentials_google_refuses_are_not_retried(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    exporter = make_exporter(client=cloud_trace.client_with_credentials(_RevokedKey()),
                             retry=RetryPolicy(initial_backoff=0.01, max_backoff=0.02,
                                               deadline=1.0))
    assert _run(lambda: exporter.export([make_span(1)])) is ExportResult.FAILURE
    stats = exporter.stats()
    assert (stats["attempts"], stats["retries"], stats["spans_failed"]) == (1, 0, 1)


def test_token_server_out_of_reach_is_retried(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    with socket.socket() as closed:  # bound, never listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/token"
        exporter = make_exporter(client=cloud_trace.client_with_credentials(_TokenServerAt(url)),
                                 retry=RetryPolicy(initial_backoff=0.01, max_backoff=0.02,
                                                   deadline=0.5))
        assert _run(lambda: exporter.export([make_span(1)])) is ExportResult.FAILURE
    assert exporter.stats()["retries"] >= 1
    assert cloud_trace.attempts == []


class _TokenServerBusy(ga_credentials.Credentials):
    """Credentials whose token server answers 503, as google-auth reports it."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.refreshes = 0

    def refresh(self, request: Any) -> None:
        self.refreshes += 1
        raise ga_exceptions.RefreshError(  # type: ignore[no-untyped-call]
            "Service Unavailable", retryable=True)


def test_a_token_server_answering_503_is_retried(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    credentials = _TokenServerBusy()
    exporter = make_exporter(client=cloud_trace.client_with_credentials(credentials),
                             retry=RetryPolicy(initial_backoff=0.01, max_backoff=0.02,
                                               deadline=0.5))
    assert _run(lambda: exporter.export([make_span(1)])) is ExportResult.FAILURE
    assert exporter.stats()["retries"] >= 1 and credentials.refreshes >= 2
    assert cloud_trace.attempts == []


def test_deadline_of_zero_still_makes_the_first_attempt(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    exporter = make_exporter(retry=RetryPolicy(deadline=0.0))
    assert exporter.export([make_span(1)]) is ExportResult.SUCCESS
    assert cloud_trace.span_ids() == ["0000000000000001"]


def test_unavailable_is_retried_until_it_recovers(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    answers = [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAVAILABLE]
    cloud_trace.answer = lambda request, context: answers.pop(0) if answers else None
    exporter = make_exporter()
    assert exporter.export([make_span(1)]) is ExportResult.SUCCESS
    assert len(cloud_trace.attempts) == 3
    assert cloud_trace.span_ids() == ["0000000000000001"]
    assert exporter.stats()["retries"] == 2


def test_deadline_exceeded_is_retried(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    answers = [grpc.StatusCode.DEADLINE_EXCEEDED]
    cloud_trace.answer = lambda request, context: answers.pop(0) if answers else None
    assert make_exporter().export([make_span(1)]) is ExportResult.SUCCESS
    assert len(cloud_trace.attempts) == 2
    assert cloud_trace.span_ids() == ["0000000000000001"]


def test_unavailable_forever_gives_up_at_the_deadline(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    cloud_trace.answer = lambda request, context: grpc.StatusCode.UNAVAILABLE
    exporter = make_exporter(retry=RetryPolicy(initial_backoff=0.01, max_backoff=0.02,
                                               deadline=0.5))
    assert _run(lambda: exporter.export([make_span(1)])) is ExportResult.FAILURE
    assert len(cloud_trace.attempts) > 1
    assert exporter.stats()["spans_failed"] == 1


def test_hanging_server_is_bounded_by_the_timeout(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    def hang(request: Any, context: Any) -> None:
        cloud_trace.release.wait(60.0)

    cloud_trace.answer = hang
    exporter = make_exporter(timeout=0.2, retry=RetryPolicy(initial_backoff=0.01,
                                                            max_backoff=0.02, deadline=0.6))
    assert _run(lambda: exporter.export([make_span(1)])) is ExportResult.FAILURE
    assert cloud_trace.span_ids() == []


def test_retry_delay_beyond_the_deadline_gives_up_at_once(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    def throttle(request: Any, context: Any) -> None:
        info = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=600))
        status = status_pb2.Status(code=code_pb2.UNAVAILABLE, message="later")
        status.details.add().Pack(info)
        context.abort_with_status(rpc_status.to_status(status))

    cloud_trace.answer = throttle
    exporter = make_exporter()
    assert _run(lambda: exporter.export([make_span(1)])) is ExportResult.FAILURE
    assert len(cloud_trace.attempts) == 1


def test_shutdown_interrupts_a_backoff_wait(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    first = threading.Event()

    def unavailable(request: Any, context: Any) -> grpc.StatusCode:
        first.set()
        return grpc.StatusCode.UNAVAILABLE

    cloud_trace.answer = unavailable
    exporter = make_exporter(retry=RetryPolicy(initial_backoff=30.0, max_backoff=30.0,
                                               jitter=0.0, deadline=60.0))
    results: List[ExportResult] = []
    worker = threading.Thread(target=lambda: results.append(exporter.export([make_span(1)])),
                              daemon=True)
    worker.start()
    assert first.wait(WATCHDOG)
    _run(exporter.shutdown)
    worker.join(WATCHDOG)
    assert not worker.is_alive()
    assert results == [ExportResult.FAILURE]
    assert len(cloud_trace.attempts) == 1


def test_export_after_shutdown_fails_and_sends_nothing(
    make_exporter: Callable[..., Any], cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    exporter = make_exporter()
    exporter.shutdown()
    exporter.shutdown()  # idempotent
    assert exporter.export([make_span(1)]) is ExportResult.FAILURE
    assert cloud_trace.attempts == []


def test_empty_export_succeeds_without_a_request(
    make_exporter: Callable[..., Any], cloud_trace: Any,
) -> None:
    assert make_exporter().export([]) is ExportResult.SUCCESS
    assert cloud_trace.attempts == []


def test_exporter_passes_the_conformance_kit(
    make_exporter: Callable[..., Any], cloud_trace: Any,
) -> None:
    check_exporter(make_exporter, received=cloud_trace.span_ids)


def test_stats_count_exactly_the_spans_cloud_trace_stored_when_some_are_refused(
    make_exporter: Callable[..., Any], cloud_trace: Any,
) -> None:
    import tracing_api as tracing

    cloud_trace.answer = _poisoned
    tracing.configure(exporter=make_exporter())  # the default batch processor
    tracer = tracing.get_tracer("tests")
    for i in range(10):
        with tracer.span(f"span-{i}", attributes={"poison": 1} if i == 4 else None):
            pass
    assert tracing.force_flush(20.0)
    stats = tracing.stats()
    assert len(cloud_trace.span_ids()) == 9
    assert (stats["exported"], stats["failed"], stats["dropped"]) == (9, 1, 1)
