"""A repeated header of a single-valued format: the first value wins in every carrier, including
a WSGI environ, where the server has joined the values with commas."""

from __future__ import annotations

import base64
import os
from typing import Any, Callable, Dict, List, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tracing_api_propagation import (
    B3MultiPropagator,
    B3Propagator,
    CloudTracePropagator,
    GrpcBinaryPropagator,
    JaegerPropagator,
)

from tracing_api import SpanContext
from tracing_api.context import EMPTY_CONTEXT
from tracing_api.propagation import DICT, ENVIRON, Propagator, getter_for

TRACE = "80f198ee56343ba864fe8b2a57d3eff7"
SPAN = "e457b5a2e4d86bd1"
OTHER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
GRPC_BIN = base64.b64encode(
    b"\x00\x00" + bytes.fromhex(TRACE) + b"\x01" + bytes.fromhex(SPAN) + b"\x02\x01").decode()
EXAMPLES = int(os.environ.get("TRACING_FUZZ_EXAMPLES", "200"))

# (propagator, headers as sent, in order): the first value of each repeated header is valid.
CASES: Dict[str, Tuple[Callable[[], Propagator], List[Tuple[str, str]]]] = {
    "b3multi-sampled": (B3MultiPropagator, [
        ("X-B3-TraceId", TRACE), ("X-B3-SpanId", SPAN), ("X-B3-Sampled", "1"),
        ("X-B3-Sampled", "1")]),
    "b3multi-ids": (B3MultiPropagator, [
        ("X-B3-TraceId", TRACE), ("X-B3-TraceId", OTHER_TRACE), ("X-B3-SpanId", SPAN),
        ("X-B3-SpanId", "00f067aa0ba902b7"), ("X-B3-Sampled", "1")]),
    "b3multi-flags-parent": (B3MultiPropagator, [
        ("X-B3-TraceId", TRACE), ("X-B3-SpanId", SPAN), ("X-B3-Flags", "1"), ("X-B3-Flags", "1"),
        ("X-B3-ParentSpanId", "05e3ac9a4f6e3b90"), ("X-B3-ParentSpanId", "05e3ac9a4f6e3b90")]),
    "b3": (B3Propagator, [("b3", f"{TRACE}-{SPAN}-1"), ("b3", f"{OTHER_TRACE}-{SPAN}-0")]),
    "cloud_trace": (CloudTracePropagator, [
        ("X-Cloud-Trace-Context", f"{TRACE}/{int(SPAN, 16)};o=1"),
        ("X-Cloud-Trace-Context", f"{OTHER_TRACE}/2;o=1")]),
    "grpc_binary": (GrpcBinaryPropagator, [("grpc-trace-bin", GRPC_BIN), ("grpc-trace-bin", "AAA")]),
}


def _environ(headers: List[Tuple[str, str]]) -> Dict[str, Any]:
    """What gunicorn, werkzeug and wsgiref make of ``headers``: repeated ones joined by ", "."""
    environ: Dict[str, Any] = {"REQUEST_METHOD": "GET", "wsgi.version": (1, 0)}
    for name, value in headers:
        key = "HTTP_" + name.upper().replace("-", "_")
        environ[key] = environ[key] + ", " + value if key in environ else value
    return environ


@pytest.mark.parametrize("case", sorted(CASES))
def test_repeated_header_in_a_wsgi_environ_reads_the_first_value(case: str) -> None:
    propagator, headers = CASES[case]
    environ = _environ(headers)
    assert getter_for(environ) is ENVIRON
    received = propagator().extract(environ, EMPTY_CONTEXT, ENVIRON).span.context
    assert (received.trace_id_hex, received.span_id_hex) == (TRACE, SPAN)


@pytest.mark.parametrize("case", sorted(CASES))
def test_repeated_header_reads_the_same_from_an_environ_and_a_list_valued_dict(case: str) -> None:
    propagator, headers = CASES[case]
    as_lists: Dict[str, List[str]] = {}
    for name, value in headers:
        as_lists.setdefault(name.lower(), []).append(value)
    from_dict = propagator().extract(as_lists, EMPTY_CONTEXT, DICT).span.context
    from_environ = propagator().extract(_environ(headers), EMPTY_CONTEXT, ENVIRON).span.context
    assert from_dict == from_environ


def test_comma_joined_b3_sampling_only_header_reads_the_first_decision() -> None:
    received = B3Propagator().extract(_environ([("b3", "0"), ("b3", "1")]), EMPTY_CONTEXT, ENVIRON)
    assert received.span.context == SpanContext(0, 0, 0, is_remote=True)


def test_comma_joined_value_whose_first_part_is_malformed_gives_no_context() -> None:
    environ = _environ([("b3", "garbage"), ("b3", f"{TRACE}-{SPAN}-1")])
    assert not B3Propagator().extract(environ, EMPTY_CONTEXT, ENVIRON).span.context.is_valid


def test_repeated_jaeger_header_in_an_environ_is_corrupt_as_in_any_carrier() -> None:
    """Jaeger reads two ``uber-trace-id`` headers as corrupt; joined by a WSGI server they are
    still two."""
    value = f"{TRACE}:{SPAN}:0:1"
    environ = _environ([("uber-trace-id", value), ("uber-trace-id", value)])
    assert not JaegerPropagator().extract(environ, EMPTY_CONTEXT, ENVIRON).span.context.is_valid
    assert not JaegerPropagator().extract(
        {"uber-trace-id": [value, value]}, EMPTY_CONTEXT, DICT).span.context.is_valid


@settings(max_examples=EXAMPLES, deadline=None)
@given(first=st.sampled_from(sorted(CASES)), rest=st.text(max_size=60))
def test_anything_after_the_first_comma_never_changes_what_is_read(first: str, rest: str) -> None:
    """Whatever follows a valid first value (a second header, garbage) is ignored."""
    propagator, headers = CASES[first]
    single: Dict[str, str] = {}
    for name, value in headers:
        single.setdefault(name, value)  # each header once: its first value
    alone = propagator().extract(single, EMPTY_CONTEXT, DICT)
    assert alone.span.context.is_valid
    joined = {name: value + "," + rest for name, value in single.items()}
    received = propagator().extract(joined, EMPTY_CONTEXT, DICT)
    assert received.span.context == alone.span.context
