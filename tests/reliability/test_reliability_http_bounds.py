"""The HTTP export path stays within its bounds whatever the backend says or how slowly it says it.

A ``Retry-After`` of zero (or a date already past) lengthens no wait and shortens none, so a
busy collector is not hammered; thousands of retries do not overflow the backoff; a backend that
trickles its reply a byte at a time holds a request no longer than its timeout and an export no
longer than its deadline (or that timeout, when longer); a request that cannot be built is not
retried. Servers are real, on 127.0.0.1; every wait is bounded.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any, Callable, Iterator, List

import pytest
from tracing_api_otlp import OtlpExporter
from tracing_api_zipkin import ZipkinExporter

from tracing_api import delivery
from tracing_api.delivery import Outcome, RetryPolicy, Sender
from tracing_api.export import ExportResult
from tracing_api.testing import RecordingServer, Reply, representative_spans

PAST = "Thu, 01 Jan 1970 00:00:00 GMT"


def make_exporter(kind: str, url: str, **options: Any) -> Any:
    if kind == "zipkin":
        return ZipkinExporter(url + "/api/v2/spans", **options)
    return OtlpExporter(url, **options)


class TrickleServer:
    """Accepts connections on 127.0.0.1 and answers each with ``head`` at once, then ``reply``
    one byte every ``interval`` seconds, until the reply is out or the server is closed.
    """

    def __init__(self, reply: bytes, head: bytes = b"", interval: float = 0.25) -> None:
        self.head = head
        self.reply = reply
        self.interval = interval
        self.accepted = 0
        self._closed = threading.Event()
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.settimeout(5.0)
                conn.recv(65536)
                conn.sendall(self.head)
                for byte in self.reply:
                    if self._closed.wait(self.interval):
                        return
                    conn.sendall(bytes([byte]))
            except OSError:
                return  # the client gave up on us: what the tests want

    def close(self) -> None:
        self._closed.set()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()


# A 60-second reply when sent at 4 bytes a second: far longer than any bound asserted below.
SLOW_STATUS = b"HTTP/1.1 202 Accepted\r\nX-Slow: " + b"a" * 240 + b"\r\nContent-Length: 0\r\n\r\n"
HEAD = b"HTTP/1.1 202 Accepted\r\nContent-Length: 240\r\n\r\n"


@pytest.fixture
def trickle() -> Iterator[Callable[..., TrickleServer]]:
    made: List[TrickleServer] = []

    def make(reply: bytes, head: bytes = b"") -> TrickleServer:
        server = TrickleServer(reply, head)
        made.append(server)
        return server

    yield make
    for server in made:
        server.close()


def timed(call: Callable[[], Any]) -> Any:
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


# ---------------------------------------------------------------------------------- Retry-After


@pytest.mark.parametrize("kind", ["zipkin", "otlp"])
@pytest.mark.parametrize("retry_after", ["0", PAST])
def test_retry_after_of_zero_or_the_past_keeps_the_backoff(kind: str, retry_after: str) -> None:
    """Waits of 0.2 s within a 1 s deadline allow at most 6 attempts; a ``Retry-After`` that
    replaced the backoff made it hundreds (and then overflowed).
    """
    policy = RetryPolicy(initial_backoff=0.2, max_backoff=0.2, jitter=0.0, deadline=1.0)
    with RecordingServer(default=Reply(503, {"Retry-After": retry_after})) as server:
        exporter = make_exporter(kind, server.url, retry=policy, timeout=5.0)
        assert exporter.export(representative_spans()[:1]) is ExportResult.FAILURE
        sent = len(server.requests)
    assert 2 <= sent <= 6


def test_retry_after_longer_than_the_backoff_is_waited_for() -> None:
    waits: List[float] = []
    attempt = iter([Outcome.retry("429", retry_after=3.0), Outcome.success()])
    sender = Sender(RetryPolicy(initial_backoff=0.1, jitter=0.0), sleep=waits.append)
    assert sender.run(lambda remaining: next(attempt)).ok
    assert waits == [3.0]


def test_retry_after_shorter_than_the_backoff_does_not_shorten_it() -> None:
    waits: List[float] = []
    attempt = iter([Outcome.retry("503", retry_after=0.0), Outcome.success()])
    sender = Sender(RetryPolicy(initial_backoff=2.0, jitter=0.0), sleep=waits.append)
    assert sender.run(lambda remaining: next(attempt)).ok
    assert waits == [2.0]


# ------------------------------------------------------------------------------- never raising


def test_sender_survives_more_retries_than_a_float_exponent_allows() -> None:
    """2**1024 overflows a float: the 1,025th retry used to raise out of ``run``."""
    calls: List[float] = []

    def attempt(remaining: float) -> Outcome:
        calls.append(remaining)
        return Outcome.retry("503") if len(calls) < 2000 else Outcome.success()

    policy = RetryPolicy(initial_backoff=0.001, max_backoff=0.001, deadline=3600.0)
    outcome = Sender(policy, sleep=lambda seconds: None).run(attempt)
    assert (outcome.ok, len(calls)) == (True, 2000)


def test_backoff_of_a_huge_retry_number_is_the_maximum() -> None:
    sender = Sender(RetryPolicy(max_backoff=8.0, jitter=0.0))
    assert sender.backoff(10**6) == 8.0


def test_sender_run_reports_a_sleep_that_raises_as_a_failure() -> None:
    def sleep(seconds: float) -> None:
        raise RuntimeError("no sleeping here")

    outcome = Sender(RetryPolicy(), sleep=sleep).run(lambda remaining: Outcome.retry("503"))
    assert (outcome.ok, outcome.retryable) == (False, False)
    assert "no sleeping here" in outcome.detail


def test_sender_run_reports_an_unusable_policy_as_a_failure() -> None:
    policy = RetryPolicy(deadline="ten")  # type: ignore[arg-type]
    outcome = Sender(policy, sleep=lambda s: None).run(lambda remaining: Outcome.success())
    assert not outcome.ok
    assert "TypeError" in outcome.detail


def test_sender_counts_a_run_that_failed_inside_the_loop() -> None:
    sender = Sender(RetryPolicy(deadline="ten"))  # type: ignore[arg-type]
    sender.run(lambda remaining: Outcome.success())
    assert sender.stats()["failed"] == 1


# ------------------------------------------------------------------------ a trickling backend


def test_post_timeout_bounds_a_reply_trickled_in_its_status_line(
    trickle: Callable[..., TrickleServer],
) -> None:
    server = trickle(SLOW_STATUS)
    response, took = timed(lambda: delivery.post(server.url, b"x", timeout=0.5))
    assert (response.status, "timed out" in (response.error or "")) == (0, True)
    assert response.outcome().retryable
    assert took < 10.0  # generous: the reply would take 60 s


def test_post_timeout_bounds_a_reply_trickled_in_its_body(
    trickle: Callable[..., TrickleServer],
) -> None:
    server = trickle(b"b" * 240, HEAD)
    response, took = timed(lambda: delivery.post(server.url, b"x", timeout=1.0))
    assert (response.status, len(response.body) < 240) == (202, True)  # cut off, not waited for
    assert took < 10.0  # generous: the body would take 60 s


@pytest.mark.parametrize("kind", ["zipkin", "otlp"])
def test_trickling_backend_holds_export_no_longer_than_the_deadline(
    trickle: Callable[..., TrickleServer], kind: str,
) -> None:
    server = trickle(SLOW_STATUS)
    exporter = make_exporter(kind, server.url, timeout=1.0, retry=RetryPolicy(deadline=2.0))
    result, took = timed(lambda: exporter.export(representative_spans()[:1]))
    assert result is ExportResult.FAILURE
    assert server.accepted >= 1
    assert took < 10.0  # generous: one trickled reply would hold it for 60 s


# ------------------------------------------------------------------- requests that cannot be built


def test_post_with_a_line_break_in_a_header_value_sends_nothing_and_is_permanent() -> None:
    with RecordingServer() as server:
        response = delivery.post(server.url, b"x", headers={"X-Token": "a\r\nInjected: yes"})
        assert server.requests == []
    assert response.invalid
    assert not response.outcome().retryable


def test_post_to_a_url_without_a_host_is_permanent() -> None:
    response = delivery.post("http://", b"x", timeout=1.0)
    assert (response.status, response.invalid, response.outcome().retryable) == (0, True, False)


def test_exporter_with_an_unbuildable_request_makes_one_attempt() -> None:
    """Were it retried, the same ValueError would come back until the deadline."""

    class Exporter(delivery.HttpExporter):
        def encode(self, spans: Any) -> bytes:
            return b"x"

    with RecordingServer() as server:
        exporter = Exporter(server.url, retry=RetryPolicy(initial_backoff=0.01, deadline=5.0))
        exporter.headers["X-Late"] = "a\nb"  # set after the checks at construction
        assert exporter.export(representative_spans()[:1]) is ExportResult.FAILURE
        assert server.requests == []
    assert exporter.stats()["attempts"] == 1
