"""The core's carriers: case-insensitive reads, writes that replace a header in any case."""

from __future__ import annotations

from typing import Any, List, Tuple

from tracing_api.propagation import DICT, ENVIRON, PAIRS, getter_for, setter_for


def test_dict_reads_any_case_and_writes_replace_other_cases() -> None:
    carrier = {"TraceParent": "a", "other": "b"}
    assert DICT.get_all(carrier, "traceparent") == ["a"]
    DICT.set(carrier, "traceparent", "c")
    assert carrier == {"other": "b", "traceparent": "c"}


def test_pairs_writes_replace_a_name_in_any_case() -> None:
    """Two traceparent headers would make a receiver drop the trace."""
    metadata: List[Tuple[str, Any]] = [("Traceparent", "old"), ("x", "y")]
    PAIRS.set(metadata, "traceparent", "new")
    assert metadata == [("x", "y"), ("traceparent", "new")]
    asgi: List[Tuple[bytes, bytes]] = [(b"TraceParent", b"old")]
    PAIRS.set(asgi, "traceparent", "new")
    assert asgi == [(b"traceparent", b"new")]


def test_pairs_reads_bytes_and_text_names_and_skips_malformed_pairs() -> None:
    carrier: List[Any] = [(b"traceparent", b"a"), ("TRACEPARENT", "b"), ("x",), None, (1, 2)]
    assert PAIRS.get_all(carrier, "traceparent") == [b"a", "b"]


def test_environ_reads_http_prefixed_names() -> None:
    environ = {"HTTP_X_B3_TRACEID": "abc", "REQUEST_METHOD": "GET"}
    assert ENVIRON.get_all(environ, "x-b3-traceid") == ["abc"]
    assert list(ENVIRON.keys(environ)) == ["x-b3-traceid"]


def test_getter_and_setter_are_chosen_by_carrier_kind() -> None:
    assert getter_for({"REQUEST_METHOD": "GET"}) is ENVIRON
    assert getter_for({}) is DICT
    assert getter_for([]) is PAIRS
    assert setter_for([]) is PAIRS
    assert setter_for({}) is DICT
