"""tracing_api.delivery: retry policy, classification, the HTTP helper and HttpExporter."""

from __future__ import annotations

import email.utils
import gzip
import os
import socket
import threading
import time
from typing import Any, Iterator, List, Optional, Sequence, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracing_api import delivery
from tracing_api.delivery import HttpExporter, Outcome, RetryPolicy, Sender
from tracing_api.export import ExportResult, SpanData
from tracing_api.testing import RecordingServer, Reply, check_exporter, representative_spans

FUZZ = int(os.environ.get("TRACING_FUZZ_EXAMPLES", "200"))


class FakeTime:
    """A clock that only moves when the sender sleeps: tests run instantly and exactly."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: List[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def scripted(*outcomes: Outcome) -> Script:
    return Script(list(outcomes))


class Script:
    def __init__(self, outcomes: List[Outcome]) -> None:
        self.outcomes = outcomes
        self.calls: List[float] = []

    def __call__(self, remaining: float) -> Outcome:
        self.calls.append(remaining)
        return self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]


def sender(policy: RetryPolicy, fake: FakeTime, jitter: float = 1.0) -> Sender:
    return Sender(policy, sleep=fake.sleep, clock=fake.clock, random=lambda: 1.0 - jitter)


# ---------------------------------------------------------------- Sender


def test_sender_retries_a_retryable_failure_until_success() -> None:
    fake = FakeTime()
    attempt = scripted(Outcome.retry("503"), Outcome.retry("503"), Outcome.success())
    outcome = sender(RetryPolicy(initial_backoff=1.0, jitter=0.0), fake).run(attempt)
    assert outcome.ok
    assert len(attempt.calls) == 3


def test_sender_backs_off_exponentially_up_to_the_maximum() -> None:
    fake = FakeTime()
    policy = RetryPolicy(initial_backoff=1.0, max_backoff=4.0, multiplier=2.0, jitter=0.0,
                         deadline=100.0, max_attempts=6)
    sender(policy, fake).run(scripted(Outcome.retry("down")))
    assert fake.sleeps == [1.0, 2.0, 4.0, 4.0, 4.0]


def test_sender_full_jitter_waits_a_random_fraction_of_the_backoff() -> None:
    fake = FakeTime()
    policy = RetryPolicy(initial_backoff=2.0, jitter=1.0, max_attempts=2)
    Sender(policy, sleep=fake.sleep, clock=fake.clock, random=lambda: 0.75).run(
        scripted(Outcome.retry("down")))
    assert fake.sleeps == [0.5]


def test_sender_never_retries_a_permanent_failure() -> None:
    fake = FakeTime()
    attempt = scripted(Outcome.permanent("HTTP 400"))
    outcome = sender(RetryPolicy(), fake).run(attempt)
    assert (outcome.ok, outcome.detail, len(attempt.calls)) == (False, "HTTP 400", 1)


def test_sender_waits_as_long_as_retry_after_says() -> None:
    fake = FakeTime()
    attempt = scripted(Outcome.retry("429", retry_after=3.0), Outcome.success())
    sender(RetryPolicy(initial_backoff=0.1, jitter=0.0), fake).run(attempt)
    assert fake.sleeps == [3.0]


def test_sender_gives_up_when_retry_after_passes_the_deadline() -> None:
    fake = FakeTime()
    attempt = scripted(Outcome.retry("429", retry_after=30.0), Outcome.success())
    outcome = sender(RetryPolicy(deadline=10.0), fake).run(attempt)
    assert not outcome.ok
    assert fake.sleeps == []


def test_sender_stays_within_the_total_deadline() -> None:
    fake = FakeTime()
    attempt = scripted(Outcome.retry("down"))
    sender(RetryPolicy(initial_backoff=1.0, jitter=0.0, deadline=10.0), fake).run(attempt)
    assert sum(fake.sleeps) < 10.0
    assert len(attempt.calls) == 4  # waits of 1, 2 and 4 fit; the next 8 would not


def test_sender_tells_each_attempt_the_time_remaining() -> None:
    fake = FakeTime()
    attempt = scripted(Outcome.retry("down"), Outcome.success())
    sender(RetryPolicy(initial_backoff=2.0, jitter=0.0, deadline=10.0), fake).run(attempt)
    assert attempt.calls == [10.0, 8.0]


def test_sender_treats_an_attempt_that_raises_as_a_permanent_failure() -> None:
    def attempt(remaining: float) -> Outcome:
        raise RuntimeError("bug")

    outcome = Sender(sleep=lambda s: None).run(attempt)
    assert not outcome.retryable
    assert "RuntimeError: bug" in outcome.detail


def test_sender_close_interrupts_a_backoff_wait() -> None:
    the_sender = Sender(RetryPolicy(initial_backoff=60.0, jitter=0.0, deadline=120.0))
    attempt = scripted(Outcome.retry("down"))
    results: List[Outcome] = []
    worker = threading.Thread(target=lambda: results.append(the_sender.run(attempt)))
    worker.start()
    while not attempt.calls:
        threading.Event().wait(0.01)
    the_sender.close()
    worker.join(10.0)
    assert not worker.is_alive()
    assert results[0].detail == "down"
    assert len(attempt.calls) == 1


def test_sender_makes_no_attempt_once_closed() -> None:
    the_sender = Sender()
    the_sender.close()
    attempt = scripted(Outcome.success())
    assert not the_sender.run(attempt).ok
    assert attempt.calls == []


def test_sender_counts_attempts_retries_and_results() -> None:
    fake = FakeTime()
    the_sender = sender(RetryPolicy(jitter=0.0), fake)
    the_sender.run(scripted(Outcome.retry("x"), Outcome.success()))
    the_sender.run(scripted(Outcome.permanent("y")))
    assert the_sender.stats() == {"attempts": 3, "retries": 1, "succeeded": 1, "failed": 1}


# ---------------------------------------------------------------- classification


@pytest.mark.parametrize("status", [429, 502, 503, 504, 0])
def test_http_outcome_retries_transient_statuses(status: int) -> None:
    assert delivery.http_outcome(status).retryable


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 413, 415, 500, 301])
def test_http_outcome_does_not_retry_permanent_statuses(status: int) -> None:
    outcome = delivery.http_outcome(status)
    assert (outcome.ok, outcome.retryable) == (False, False)


@pytest.mark.parametrize("status", [200, 202, 204])
def test_http_outcome_accepts_2xx(status: int) -> None:
    assert delivery.http_outcome(status).ok


@pytest.mark.parametrize(("code", "retryable"), [
    ("UNAVAILABLE", True), ("DEADLINE_EXCEEDED", True), ("INVALID_ARGUMENT", False),
    ("UNAUTHENTICATED", False), ("PERMISSION_DENIED", False)])
def test_grpc_outcome_retries_only_transient_codes(code: str, retryable: bool) -> None:
    assert delivery.grpc_outcome(code).retryable is retryable


def test_parse_retry_after_reads_delay_seconds() -> None:
    assert delivery.parse_retry_after(" 120 ") == 120.0


def test_parse_retry_after_reads_an_http_date() -> None:
    when = email.utils.formatdate(1_000_030.0, usegmt=True)
    assert delivery.parse_retry_after(when, now=1_000_000.0) == pytest.approx(30.0)


def test_parse_retry_after_treats_a_past_date_as_now() -> None:
    when = email.utils.formatdate(1_000.0, usegmt=True)
    assert delivery.parse_retry_after(when, now=2_000.0) == 0.0


@pytest.mark.parametrize("value", ["Sun, 06 Nov 1994 08:49:37 GMT",
                                   "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"])
def test_parse_retry_after_reads_all_three_http_date_forms(value: str) -> None:
    # RFC 9110 5.6.7: recipients accept IMF-fixdate, RFC 850 and asctime (GMT by definition).
    assert delivery.parse_retry_after(value, now=784_111_000.0) == pytest.approx(777.0)


@pytest.mark.parametrize("value", [None, "", "soon", "-5", "1.5", "Mon, 99 Foo 2024"])
def test_parse_retry_after_ignores_malformed_values(value: Optional[str]) -> None:
    assert delivery.parse_retry_after(value) is None


@settings(max_examples=FUZZ)
@given(st.text())
def test_parse_retry_after_never_raises(value: str) -> None:
    result = delivery.parse_retry_after(value)
    assert result is None or result >= 0.0


# ---------------------------------------------------------------- post()


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    with RecordingServer() as running:
        yield running


def test_post_sends_body_and_headers(server: RecordingServer) -> None:
    response = delivery.post(server.url + "/x", b"payload", headers={"X-Key": "v"})
    request = server.requests[0]
    assert (response.status, request.path, request.body) == (200, "/x", b"payload")
    assert request.headers["x-key"] == "v"


def test_post_gzips_the_body_when_asked(server: RecordingServer) -> None:
    delivery.post(server.url, b"payload" * 100, gzip=True)
    request = server.requests[0]
    assert request.headers["content-encoding"] == "gzip"
    assert gzip.decompress(request.raw_body) == b"payload" * 100


def test_post_returns_error_status_headers_and_body(server: RecordingServer) -> None:
    server.reply_with(Reply(503, {"Retry-After": "7"}, b"busy"))
    response = delivery.post(server.url, b"x")
    assert (response.status, response.headers["retry-after"], response.body) == (503, "7", b"busy")
    assert response.outcome() == Outcome.retry("HTTP 503: busy", 7.0)


def test_post_keeps_a_bounded_part_of_a_huge_response(server: RecordingServer) -> None:
    server.reply_with(Reply(200, {}, b"z" * (delivery.MAX_RESPONSE_BYTES * 4)))
    assert len(delivery.post(server.url, b"x").body) == delivery.MAX_RESPONSE_BYTES


def test_post_does_not_follow_redirects(server: RecordingServer) -> None:
    server.reply_with(Reply(307, {"Location": server.url + "/elsewhere"}))
    response = delivery.post(server.url, b"x")
    assert response.status == 307
    assert len(server.requests) == 1


def _closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()
    return port


def test_post_reports_connection_refused_as_no_response() -> None:
    response = delivery.post(f"http://127.0.0.1:{_closed_port()}/", b"x", timeout=2.0)
    assert response.outcome().retryable
    assert "Connection" in (response.error or "")


def test_post_times_out_on_a_server_that_never_answers() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        response = delivery.post(f"http://127.0.0.1:{listener.getsockname()[1]}/", b"x",
                                 timeout=0.3)
    finally:
        listener.close()
    assert (response.status, "timed out" in (response.error or "")) == (0, True)


def test_post_reports_a_reply_that_is_not_http(server: RecordingServer) -> None:
    server.reply_with(Reply(raw=b"\x00\xffgarbage\r\n\r\n"))
    response = delivery.post(server.url, b"x", timeout=2.0)
    assert (response.status, response.not_http) == (0, True)
    assert not response.outcome().retryable


@pytest.mark.parametrize("url", ["", "not a url", "ftp://127.0.0.1/x", "http://[::1"])
def test_post_reports_a_bad_url_without_raising(url: str) -> None:
    assert delivery.post(url, b"x", timeout=0.5).status == 0


# ---------------------------------------------------------------- HttpExporter


class NamesExporter(HttpExporter):
    content_type = "text/plain"

    def encode(self, spans: Sequence[SpanData]) -> bytes:
        return "\n".join(s.context.span_id_hex for s in spans).encode()


def _fast(url: str, **options: object) -> NamesExporter:
    policy = RetryPolicy(initial_backoff=0.01, max_backoff=0.05, deadline=5.0)
    return NamesExporter(url, timeout=2.0, retry=policy, **options)  # type: ignore[arg-type]


def test_http_exporter_retries_a_503_then_succeeds(server: RecordingServer) -> None:
    server.reply_with(Reply(503), Reply(429, {"Retry-After": "0"}))
    exporter = _fast(server.url)
    assert exporter.export(representative_spans()[:2]) is ExportResult.SUCCESS
    assert len(server.requests) == 3
    assert exporter.stats()["retries"] == 2


def test_http_exporter_does_not_retry_a_400(server: RecordingServer) -> None:
    server.reply_with(Reply(400, {}, b"bad"))
    exporter = _fast(server.url)
    assert exporter.export(representative_spans()[:2]) is ExportResult.FAILURE
    assert len(server.requests) == 1
    assert exporter.stats()["spans_failed"] == 2


def test_http_exporter_counts_an_encoding_failure() -> None:
    class Broken(NamesExporter):
        def encode(self, spans: Sequence[SpanData]) -> bytes:
            raise ValueError("cannot")

    exporter = Broken("http://127.0.0.1:1/")
    assert exporter.export(representative_spans()[:1]) is ExportResult.FAILURE
    assert exporter.stats()["batches_failed"] == 1


def test_http_exporter_shutdown_interrupts_a_retry_after_wait(server: RecordingServer) -> None:
    server.reply_with(Reply(503, {"Retry-After": "60"}))
    exporter = NamesExporter(server.url, retry=RetryPolicy(deadline=120.0))
    results: List[ExportResult] = []
    worker = threading.Thread(
        target=lambda: results.append(exporter.export(representative_spans()[:1])))
    worker.start()
    assert server.wait_for(1, 10.0)
    exporter.shutdown()
    worker.join(10.0)
    assert not worker.is_alive()
    assert results == [ExportResult.FAILURE]


def test_http_exporter_passes_the_conformance_kit(server: RecordingServer) -> None:
    def received() -> List[str]:
        return [i for r in server.requests for i in r.body.decode().split("\n")]

    check_exporter(lambda: _fast(server.url), received=received)


def test_credentials_in_the_url_become_an_authorization_header_and_leave_the_url() -> None:
    from tracing_api.delivery import HttpExporter

    exporter = HttpExporter("http://alice:s%40cret@127.0.0.1:9411/api/v2/spans")
    assert exporter.url == "http://127.0.0.1:9411/api/v2/spans"
    assert exporter.headers["Authorization"] == "Basic YWxpY2U6c0BjcmV0"  # alice:s@cret
    assert "cret" not in repr(exporter.__dict__.get("url"))


def _slow_server(delay: float) -> Tuple[Any, str]:
    """A real HTTP server on 127.0.0.1 that answers every POST after ``delay`` seconds."""
    import http.server

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            time.sleep(delay)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}/"


@pytest.mark.parametrize("deadline", [0.0, 0.1])
def test_the_first_attempt_gets_the_whole_timeout_even_past_the_retry_deadline(
        deadline: float) -> None:
    httpd, url = _slow_server(0.5)
    try:
        exporter = NamesExporter(url, timeout=5.0, retry=RetryPolicy(deadline=deadline))
        assert exporter.export(representative_spans()[:1]) is ExportResult.SUCCESS
        assert exporter.stats()["attempts"] == 1
    finally:
        httpd.shutdown()
        httpd.server_close()
