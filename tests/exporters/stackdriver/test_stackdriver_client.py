"""The Cloud Trace client: asynchronous clients refused, and making one never outlasting export."""

from __future__ import annotations

import asyncio
import gc
import inspect
import threading
import weakref
from typing import Any, Callable, List

import grpc
import pytest
from google.cloud import trace_v2
from google.cloud.trace_v2.services.trace_service.transports import (
    TraceServiceGrpcAsyncIOTransport,
)
from tracing_api_stackdriver import exporter as make

from tracing_api import ConfigurationError, ExportResult
from tracing_api.delivery import RetryPolicy
from tracing_api.export import SpanData

WATCHDOG = 20.0  # seconds a call may take before the test calls it hung


def _async_client(port: int) -> Any:
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    return trace_v2.TraceServiceAsyncClient(
        transport=TraceServiceGrpcAsyncIOTransport(channel=channel))


def test_asynchronous_client_is_a_configuration_error_naming_client(cloud_trace: Any) -> None:
    async def build() -> None:
        client = _async_client(cloud_trace.port)
        with pytest.raises(ConfigurationError, match=r"exporter 'stackdriver': client: .*"
                                                     r"asynchronous"):
            make(project_id="p", client=client)

    asyncio.run(build())


def test_client_returning_an_awaitable_fails_the_export_and_closes_it(
    cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    made: List[Any] = []

    class Wrapped:
        """Synchronous on the outside, yet hands back the async client's coroutine."""

        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def batch_write_spans(self, **kwargs: Any) -> Any:
            made.append(self.inner.batch_write_spans(**kwargs))
            return made[-1]

    async def run() -> Any:
        exporter = make(project_id="p", client=Wrapped(_async_client(cloud_trace.port)))
        try:
            return exporter.export([make_span(1), make_span(2)]), exporter.stats()
        finally:
            exporter.shutdown()

    result, stats = asyncio.run(run())
    assert result is ExportResult.FAILURE
    assert stats["spans_failed"] == 2 and stats["spans_exported"] == 0
    assert made and all(inspect.getcoroutinestate(c) == inspect.CORO_CLOSED for c in made)
    assert cloud_trace.attempts == []


class SlowClientFactory:
    """Stands in for ``TraceServiceClient(...)`` while credentials are looked for: blocks until
    released (as google.auth.default() does while the metadata server does not answer), then
    returns a real client talking to the local server (made before the class is replaced).
    """

    def __init__(self, cloud_trace: Any) -> None:
        self.client = cloud_trace.client()
        self.release = threading.Event()
        self.started = threading.Event()
        self.finished = threading.Event()

    def __call__(self, **kwargs: Any) -> Any:
        self.started.set()
        self.release.wait(60.0)
        try:
            return self.client
        finally:
            self.finished.set()


def _run(function: Callable[[], Any]) -> Any:
    result: List[Any] = []
    thread = threading.Thread(target=lambda: result.append(function()), daemon=True)
    thread.start()
    thread.join(WATCHDOG)
    assert not thread.is_alive(), "the call did not return: not bounded"
    return result[0]


def test_export_gives_up_at_its_deadline_while_the_client_is_still_being_made(
    monkeypatch: pytest.MonkeyPatch, cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    factory = SlowClientFactory(cloud_trace)
    monkeypatch.setattr(trace_v2, "TraceServiceClient", factory)
    exporter = make(project_id="p", retry=RetryPolicy(deadline=0.3), timeout=2.0)
    try:
        assert _run(lambda: exporter.export([make_span(1)])) is ExportResult.FAILURE
        assert not factory.finished.is_set()  # returned without waiting for the client
        assert exporter.stats()["spans_failed"] == 1
    finally:
        factory.release.set()
        exporter.shutdown()


def test_deadline_of_zero_waits_for_a_client_being_made_as_long_as_the_call_may_take(
    monkeypatch: pytest.MonkeyPatch, cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    factory = SlowClientFactory(cloud_trace)
    monkeypatch.setattr(trace_v2, "TraceServiceClient", factory)
    exporter = make(project_id="p", retry=RetryPolicy(deadline=0.0), timeout=5.0)
    try:
        releaser = threading.Timer(0.2, factory.release.set)  # credentials found in 0.2 s
        releaser.start()
        assert _run(lambda: exporter.export([make_span(1)])) is ExportResult.SUCCESS
        assert cloud_trace.span_ids() == [format(1, "016x")]
    finally:
        factory.release.set()
        exporter.shutdown()


def test_next_export_uses_the_client_made_meanwhile(
    monkeypatch: pytest.MonkeyPatch, cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    factory = SlowClientFactory(cloud_trace)
    monkeypatch.setattr(trace_v2, "TraceServiceClient", factory)
    exporter = make(project_id="p", retry=RetryPolicy(deadline=1.0), timeout=2.0)
    try:
        assert _run(lambda: exporter.export([make_span(1)])) is ExportResult.FAILURE
        factory.release.set()
        assert factory.finished.wait(WATCHDOG)
        assert _run(lambda: exporter.export([make_span(2)])) is ExportResult.SUCCESS
        assert cloud_trace.span_ids() == [format(2, "016x")]
    finally:
        factory.release.set()
        exporter.shutdown()


def test_shutdown_ends_an_export_waiting_for_the_client(
    monkeypatch: pytest.MonkeyPatch, cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    factory = SlowClientFactory(cloud_trace)
    monkeypatch.setattr(trace_v2, "TraceServiceClient", factory)
    exporter = make(project_id="p", retry=RetryPolicy(deadline=120.0), timeout=2.0)
    results: List[Any] = []
    worker = threading.Thread(target=lambda: results.append(exporter.export([make_span(1)])),
                              daemon=True)
    worker.start()
    try:
        assert factory.started.wait(WATCHDOG)
        exporter.shutdown()
        worker.join(WATCHDOG)
        assert not worker.is_alive()
        assert results == [ExportResult.FAILURE]
    finally:
        factory.release.set()
    assert factory.finished.wait(WATCHDOG)
    assert cloud_trace.attempts == []  # the client made after shutdown is never used


class _Marker(str):
    """An attribute value a weak reference can follow: it lives as long as its span does."""


def test_exports_while_the_client_cannot_be_made_keep_none_of_their_spans(
    monkeypatch: pytest.MonkeyPatch, make_span: Callable[..., SpanData],
) -> None:
    from google.auth import exceptions as auth_exceptions

    def no_credentials(**kwargs: Any) -> Any:
        raise auth_exceptions.DefaultCredentialsError(  # type: ignore[no-untyped-call]
            "Your default credentials were not found.")

    monkeypatch.setattr(trace_v2, "TraceServiceClient", no_credentials)
    exporter = make(project_id="p", retry=RetryPolicy(deadline=2.0), timeout=2.0)
    alive: List[Any] = []
    try:
        for batch in range(20):  # all within the minute the failure is remembered
            marker = _Marker(f"batch {batch}")
            alive.append(weakref.ref(marker))
            spans = [make_span(i + 1, attributes={"marker": marker}) for i in range(5)]
            assert exporter.export(spans) is ExportResult.FAILURE
            del marker, spans
        gc.collect()
        assert [ref() for ref in alive if ref() is not None] == []
        assert exporter.stats()["spans_failed"] == 100
    finally:
        exporter.shutdown()
