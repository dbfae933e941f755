"""tracing_api.testing.RecordingServer: reading request bodies, and stopping."""

from __future__ import annotations

import gzip
import http.client
import os
import socket
import threading
from typing import Iterator, List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracing_api.testing import RecordingServer

FUZZ = int(os.environ.get("TRACING_FUZZ_EXAMPLES", "200"))


@pytest.fixture(scope="module")
def shared() -> Iterator[RecordingServer]:
    """One server for every example of a property test (starting one per example is slow)."""
    with RecordingServer() as server:
        yield server


def _post_chunked(server: RecordingServer, chunks: List[bytes], **headers: str) -> int:
    port = int(server.url.rsplit(":", 1)[1])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("POST", "/spans", body=iter(chunks), encode_chunked=True,
                           headers={"Transfer-Encoding": "chunked", **headers})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def _exchange(server: RecordingServer, raw: bytes) -> bytes:
    """Send ``raw`` as the whole request, then read the answer until the server closes."""
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)  # the request ends here, whatever its framing says
        answer = b""
        while True:
            data = sock.recv(65536)
            if not data:
                return answer
            answer += data


def test_recording_server_records_a_chunked_body() -> None:
    with RecordingServer() as server:
        assert _post_chunked(server, [b'{"spans":', b"[1,2,3]}"]) == 200
        assert server.wait_for(1, 10)
    assert server.requests[0].body == b'{"spans":[1,2,3]}'


def test_recording_server_un_gzips_a_chunked_body() -> None:
    packed = gzip.compress(b"payload" * 100)
    with RecordingServer() as server:
        status = _post_chunked(server, [packed[:10], packed[10:]], **{"Content-Encoding": "gzip"})
        assert status == 200
        assert server.wait_for(1, 10)
    assert (server.requests[0].body, server.requests[0].raw_body) == (b"payload" * 100, packed)


def test_recording_server_reads_chunk_extensions_and_trailers() -> None:
    raw = (b"POST /spans HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"3;name=value\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n")
    with RecordingServer() as server:
        assert _exchange(server, raw).startswith(b"HTTP/1.0 200 ")
    assert server.requests[0].body == b"abc"


def test_recording_server_answers_400_to_a_truncated_chunked_body() -> None:
    raw = b"POST /spans HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc"
    with RecordingServer() as server:
        assert _exchange(server, raw).startswith(b"HTTP/1.0 400 ")
    assert server.requests == []


def test_recording_server_answers_413_to_a_chunk_over_the_size_limit() -> None:
    raw = (b"POST /spans HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"%x\r\n" % (64 * 1024 * 1024 + 1))
    with RecordingServer() as server:
        assert _exchange(server, raw).startswith(b"HTTP/1.0 413 ")
    assert server.requests == []


def test_recording_server_answers_413_to_a_content_length_over_the_size_limit() -> None:
    raw = b"POST /spans HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (64 * 1024 * 1024 + 1)
    with RecordingServer() as server:
        assert _exchange(server, raw).startswith(b"HTTP/1.0 413 ")
    assert server.requests == []


def test_recording_server_answers_413_to_a_gzip_body_that_expands_past_the_size_limit() -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024 + 1))  # about 65 KB sent
    connection_body = (b"POST /spans HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\n"
                       b"Content-Length: %d\r\n\r\n" % len(bomb)) + bomb
    with RecordingServer() as server:
        assert _exchange(server, connection_body).startswith(b"HTTP/1.0 413 ")
    assert server.requests == []


@given(body=st.binary(max_size=2000), cuts=st.lists(st.integers(0, 2000), max_size=8))
@settings(max_examples=FUZZ, deadline=None)
def test_recording_server_records_a_chunked_body_however_it_is_cut(
    shared: RecordingServer, body: bytes, cuts: List[int]
) -> None:
    bounds = sorted({0, len(body), *(c for c in cuts if c < len(body))})
    chunks = [body[a:b] for a, b in zip(bounds, bounds[1:])]
    assert _post_chunked(shared, chunks) == 200  # recorded before it answers
    assert shared.requests[-1].body == body


@given(framing=st.binary(max_size=300))
@settings(max_examples=FUZZ, deadline=None)
def test_recording_server_answers_any_chunked_framing(
    shared: RecordingServer, framing: bytes
) -> None:
    raw = b"POST /spans HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + framing
    answer = _exchange(shared, raw)
    assert answer.startswith((b"HTTP/1.0 200 ", b"HTTP/1.0 400 ", b"HTTP/1.0 413 "))


def _stop_returns(server: RecordingServer) -> bool:
    stopper = threading.Thread(target=server.stop, daemon=True)
    stopper.start()
    stopper.join(10)
    return not stopper.is_alive()


def test_recording_server_stop_returns_when_it_was_never_started() -> None:
    assert _stop_returns(RecordingServer())


def test_recording_server_stop_closes_the_socket_when_it_was_never_started() -> None:
    server = RecordingServer()
    assert _stop_returns(server)
    assert server._server.socket.fileno() == -1


def test_recording_server_stop_twice_returns() -> None:
    server = RecordingServer().start()
    assert _stop_returns(server)
    assert _stop_returns(server)
