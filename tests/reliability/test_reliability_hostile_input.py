"""Hostile input: every installed propagator, and span attributes of every Python type.

Incoming headers are data from strangers: any bytes, oversized, non-ASCII, the wrong types in
the carrier. ``extract`` never raises and what it keeps stays within the formats' limits.
Attribute values may be anything the application has at hand: invalid ones are dropped and
counted on the span, valid ones reach every exporter's encoder without an exception.
``TRACING_FUZZ_EXAMPLES`` (or ``HYPOTHESIS_PROFILE=thorough``) sets the depth.
"""

from __future__ import annotations

import email.message
import enum
import math
import os
from decimal import Decimal
from importlib.metadata import entry_points
from typing import Any, Dict, List, Optional, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tracing_api as tracing
from tracing_api import Context
from tracing_api.testing import capture

tracer = tracing.get_tracer(__name__)
EXAMPLES = int(os.environ.get("TRACING_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _installed_propagators() -> Dict[str, Any]:
    found: Any = entry_points()
    group = (found.select(group="tracing_api.propagators") if hasattr(found, "select")
             else found.get("tracing_api.propagators", []))
    # Made once: looking entry points up costs milliseconds, and every example would pay it.
    return {ep.name: ep.load()() for ep in sorted(group, key=lambda ep: ep.name)}


EACH = _installed_propagators()
PROPAGATORS = sorted(EACH)
"""Every propagator installed, by its configuration name (the core's and the plugins')."""
ALL_PROPAGATORS = [EACH[name] for name in PROPAGATORS]

# ---------------------------------------------------------------------------------- strategies


class Hostile:
    """An object every protocol method of which raises."""

    def _boom(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("hostile")

    __str__ = __repr__ = __format__ = __bytes__ = __len__ = __iter__ = __index__ = _boom
    __bool__ = __eq__ = __lt__ = __int__ = __float__ = __getitem__ = __contains__ = _boom
    __hash__ = None  # type: ignore[assignment]


class HostileStr(str):
    """A ``str`` subclass whose ``__str__`` raises."""

    def __str__(self) -> str:
        raise RuntimeError("hostile str")


class HostileList(list):  # type: ignore[type-arg]
    """A ``list`` subclass that raises when iterated."""

    def __iter__(self) -> Any:
        raise RuntimeError("hostile list")


class Colour(enum.IntEnum):
    RED = 1


EXAMPLE_HEADERS: Dict[str, Any] = {
    "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "tracestate": "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
    "baggage": "userId=alice,serverNode=DF%2028,isProduction=false;p=1",
    "b3": "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90",
    "x-b3-traceid": "80f198ee56343ba864fe8b2a57d3eff7",
    "x-b3-spanid": "e457b5a2e4d86bd1",
    "x-b3-parentspanid": "05e3ac9a4f6e3b90",
    "x-b3-sampled": "1",
    "x-b3-flags": "1",
    "x-cloud-trace-context": "105445aa7843bc8bf206b12000100000/1;o=1",
    "uber-trace-id": "4bf92f3577b34da6a3ce929d0e0e4736:00f067aa0ba902b7:0:1",
    "uberctx-user": "alice",
    "jaeger-baggage": "k1=v1, k2=v2",
    "grpc-trace-bin": bytes.fromhex("0000" "4bf92f3577b34da6a3ce929d0e0e4736" "01"
                                    "00f067aa0ba902b7" "0201"),
}
NAMES = sorted(EXAMPLE_HEADERS)

latin1 = st.text(st.characters(min_codepoint=0, max_codepoint=255), max_size=200)
oversized = st.builds(lambda unit, n: unit * n, st.sampled_from(["a", "0", ",", "k=v,", "é"]),
                      st.integers(10_000, 200_000))


def _mutate(value: Any, at: int, insert: Any, cut: bool) -> Any:
    """A valid header value, damaged: cut short, or with something put in the middle."""
    if isinstance(value, bytes):
        insert = insert.encode("utf-8", "surrogatepass") if isinstance(insert, str) else insert
    elif isinstance(insert, bytes):
        insert = insert.decode("latin-1")
    at = at % (len(value) + 1)
    return value[:at] if cut else value[:at] + insert + value[at:]


near_valid = st.builds(_mutate, st.sampled_from(list(EXAMPLE_HEADERS.values())),
                       st.integers(0, 200), st.one_of(st.text(max_size=5), st.binary(max_size=5)),
                       st.booleans())
scalar = st.one_of(st.none(), st.integers(), st.floats(), st.booleans(), st.binary(max_size=40),
                   st.text(max_size=40), latin1, st.builds(Hostile), st.builds(HostileStr))
header_value = st.one_of(
    st.sampled_from(list(EXAMPLE_HEADERS.values())), near_valid, latin1, st.text(max_size=100),
    st.binary(max_size=100), oversized, scalar,
    st.lists(st.one_of(near_valid, scalar), max_size=4),
    st.lists(st.lists(scalar, max_size=3), max_size=3),
    st.dictionaries(st.text(max_size=5), scalar, max_size=3),
)
header_name = st.one_of(
    st.sampled_from(NAMES), st.sampled_from(NAMES).map(str.upper),
    st.sampled_from(NAMES).map(lambda n: n.title()), st.text(max_size=20),
    st.builds(lambda s: "uberctx-" + s, st.text(max_size=10)),
)
odd_key = st.one_of(st.integers(), st.none(), st.binary(max_size=10), st.tuples(st.integers()))


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    try:
        return str(value).encode("utf-8", "surrogatepass")
    except Exception:  # a hostile value, or one holding one
        return b"\xff"


@st.composite
def carriers(draw: Any) -> Any:
    """A carrier of any shape the integrations meet, or one of no sensible shape at all."""
    headers = draw(st.lists(st.tuples(header_name, header_value), max_size=8))
    shape = draw(st.sampled_from(["dict", "odd-keys", "pairs", "bytes-pairs", "environ",
                                  "message", "garbage"]))
    if shape == "dict":
        return dict(headers)
    if shape == "odd-keys":
        carrier: Dict[Any, Any] = dict(headers)
        carrier.update(draw(st.dictionaries(odd_key, header_value, max_size=3)))
        return carrier
    if shape == "pairs":
        junk = draw(st.lists(st.one_of(scalar, st.tuples(scalar), st.tuples(scalar, scalar, scalar)),
                             max_size=3))
        return [*headers, *junk]
    if shape == "bytes-pairs":
        return [(n.encode("utf-8", "surrogatepass"), _as_bytes(v)) for n, v in headers]
    if shape == "environ":
        environ: Dict[str, Any] = {"REQUEST_METHOD": "GET"}
        environ.update({"HTTP_" + n.upper().replace("-", "_"): v for n, v in headers})
        return environ
    if shape == "message":
        message = email.message.Message()
        for name, value in headers:
            if isinstance(value, str) and isinstance(name, str):
                try:
                    message[name] = value
                except Exception:
                    pass
        return message
    return draw(st.one_of(scalar, st.lists(scalar, max_size=3), st.just(object())))


# --------------------------------------------------------------------------------- extraction


def _check(extracted: Any) -> None:
    assert isinstance(extracted, Context)
    span_context = extracted.span_context
    if span_context.is_valid:
        assert 0 < span_context.trace_id < 1 << 128
        assert 0 < span_context.span_id < 1 << 64
        assert span_context.is_remote
        assert len(span_context.trace_state) <= 32
    baggage = extracted.baggage
    assert len(baggage) <= 180
    assert sum(len(k) + len(v) for k, v in baggage.items()) <= 8192
    # What a service would send on is bounded too: no amplification of what came in.
    outgoing: Dict[str, Any] = {}
    tracing.inject(outgoing, context=extracted)
    for value in outgoing.values():
        assert len(value) <= 8192 + 512


@FUZZ
@given(carrier=carriers())
def test_extract_with_every_propagator_never_raises_and_keeps_within_limits(carrier: Any) -> None:
    with capture(propagators=ALL_PROPAGATORS):
        _check(tracing.extract(carrier))


@pytest.mark.parametrize("name", PROPAGATORS)
@settings(FUZZ, max_examples=max(EXAMPLES // 4, 10))
@given(carrier=carriers())
def test_extract_with_each_propagator_alone_never_raises_and_keeps_within_limits(
    name: str, carrier: Any,
) -> None:
    """Alone, a format sees carriers no other format has already settled."""
    with capture(propagators=[EACH[name]]):
        _check(tracing.extract(carrier))


def test_every_installed_propagator_is_fuzzed() -> None:
    """The list above comes from the installed entry points; the built-ins and plugins are in it."""
    assert {"tracecontext", "baggage"} <= set(PROPAGATORS)
    assert len(PROPAGATORS) >= 2


@pytest.mark.parametrize("name", PROPAGATORS)
def test_extract_of_oversized_headers_keeps_only_bounded_state(name: str) -> None:
    huge = "k=" + "v" * 1_000_000
    carrier = {header: huge for header in NAMES}
    carrier["grpc-trace-bin"] = b"\x00" * 1_000_000  # type: ignore[assignment]
    carrier.update({f"uberctx-{i}": "x" * 100 for i in range(5000)})
    with capture(propagators=[EACH[name]]):
        _check(tracing.extract(carrier))


def test_extract_survives_a_carrier_whose_every_method_raises() -> None:
    class Exploding(dict):  # type: ignore[type-arg]
        def get(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("boom")

        def __iter__(self) -> Any:
            raise RuntimeError("boom")

        def __contains__(self, key: object) -> bool:
            raise RuntimeError("boom")

        def items(self) -> Any:
            raise RuntimeError("boom")

    with capture(propagators=ALL_PROPAGATORS):
        _check(tracing.extract(Exploding()))
        _check(tracing.extract(Hostile()))


# --------------------------------------------------------------------------------- attributes

INT64 = (-(1 << 63), (1 << 63) - 1)


def _valid_value(value: Any) -> bool:
    """The attribute rule for plain values: str, bool, int64, float, or a list or tuple of one
    of those types (all items of the same type).
    """
    kind = type(value)
    if kind in (str, bool, float):
        return True
    if kind is int:
        return bool(INT64[0] <= value <= INT64[1])
    if kind in (list, tuple):
        if not value:
            return True
        first = type(value[0])
        return first in (str, bool, int, float) and all(type(v) is first and _valid_value(v)
                                                         for v in value)
    return False


plain_value = st.one_of(
    st.text(max_size=30), st.booleans(), st.integers(), st.floats(), st.none(),
    st.binary(max_size=10), st.text(max_size=5).map(lambda s: s * 5000),
    st.lists(st.one_of(st.integers(), st.text(max_size=5)), max_size=4),
    st.lists(st.integers(*INT64), max_size=4).map(tuple), st.lists(st.floats(), max_size=3),
    st.lists(st.lists(st.integers(), max_size=2), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.sets(st.integers(), max_size=2), st.complex_numbers(), st.decimals().map(Decimal),
)
# Values whose fate depends on how far they fake a valid type: only "never raises" is checked.
odd_value = st.one_of(
    st.builds(Hostile), st.builds(HostileStr, st.text(max_size=5)), st.just(Colour.RED),
    st.builds(HostileList, st.lists(st.integers(), max_size=2)), st.just(object()),
    st.just(iter([1, 2])), st.just(memoryview(b"ab")), st.just(bytearray(b"x")),
    st.just(math.inf), st.just(-math.nan),
)
attribute_key = st.one_of(st.text(max_size=10), st.sampled_from(["", "k"]), odd_key)


def _assert_attributes_clean(attributes: Any, limit: Optional[int]) -> None:
    for key, value in attributes.items():
        assert type(key) is str and key
        assert _valid_value(value), (key, value)
        if limit is not None:
            for item in value if isinstance(value, tuple) else (value,):
                assert not isinstance(item, str) or len(item) <= limit


@FUZZ
@given(items=st.lists(st.tuples(attribute_key, plain_value), max_size=30))
def test_invalid_attribute_values_are_dropped_and_counted_exactly(
    items: List[Tuple[Any, Any]],
) -> None:
    with capture(limits=tracing.Limits(value_length=100)) as spans, tracer.span("attributes") as span:
        for key, value in items:
            span.set_attribute(key, value)
    (data,) = spans
    invalid = sum(1 for k, v in items if not (type(k) is str and k and _valid_value(v)))
    assert data.dropped_attributes == invalid
    assert set(data.attributes) == {k for k, v in items if type(k) is str and k and _valid_value(v)}
    _assert_attributes_clean(data.attributes, 100)


@FUZZ
@given(
    items=st.lists(st.tuples(attribute_key, st.one_of(plain_value, odd_value)), max_size=20),
    name=st.one_of(st.text(), scalar), description=st.one_of(st.text(), scalar),
)
def test_every_span_method_takes_any_python_value_without_raising(
    items: List[Tuple[Any, Any]], name: Any, description: Any,
) -> None:
    mapping: Dict[Any, Any] = {}
    for key, value in items:
        try:
            mapping[key] = value
        except TypeError:  # an unhashable key cannot be in a dict in the first place
            pass
    other = tracing.SpanContext(0x1, 0x2, 1)
    with capture(limits=tracing.Limits(value_length=64)) as spans, \
            tracer.span("s", attributes=mapping) as span:
        for key, value in items:
            span.set_attribute(key, value)
        span.set_attributes(mapping)
        span.set_attributes(Hostile())  # type: ignore[arg-type]
        span.add_event(name, mapping)
        span.add_link(other, mapping)
        span.add_link(name, mapping)  # not a span context: ignored
        span.set_status(tracing.StatusCode.ERROR, description)
        span.update_name(name)
        span.record_exception(_UnprintableError())
    (data,) = spans
    assert data.dropped_attributes >= 1  # at least the hostile mapping was counted
    _assert_attributes_clean(data.attributes, 64)
    for event in data.events:
        _assert_attributes_clean(event.attributes, 64)
    for link in data.links:
        _assert_attributes_clean(link.attributes, 64)
    _encode_everywhere(data)


class _UnprintableError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("cannot print me")


def _encode_everywhere(data: Any) -> None:
    """Every exporter's encoder takes the span without raising (Cloud Trace may refuse a span,
    counted, but not raise).
    """
    from tracing_api_otlp import encode_json, encode_protobuf
    from tracing_api_zipkin import encode_spans

    encode_spans([data], None)
    encode_protobuf([data])
    encode_json([data])
    _cloud_trace_exporter()._map([data])


_CLOUD_TRACE: List[Any] = []


def _cloud_trace_exporter() -> Any:
    if not _CLOUD_TRACE:
        import tracing_api_stackdriver

        class NoClient:
            def batch_write_spans(self, **kwargs: Any) -> None:
                raise AssertionError("mapping only")

        _CLOUD_TRACE.append(tracing_api_stackdriver.exporter(project_id="p", client=NoClient()))
    return _CLOUD_TRACE[0]


@pytest.mark.parametrize("kind", ["zipkin", "otlp_protobuf", "otlp_json", "stackdriver"])
def test_spans_with_hostile_but_accepted_values_reach_the_backend_or_are_counted(
    make_backend: Any, kind: str,
) -> None:
    backend = make_backend(kind)
    tracing.configure(**backend.exporter_options(), schedule_delay=60.0)
    nasty: List[Dict[str, Any]] = [
        {"surrogate": "\ud800", "nan": math.nan, "inf": -math.inf},
        {"huge": "x" * 300_000, "control": "\x00\x1b[31m\r\n"},
        {"bool-list": [True, False], "empty": [], "unicode": "Ünïcödé ✓ 𝄞"},
        {"int-max": (1 << 63) - 1, "int-min": -(1 << 63), "floats": (math.nan, 1e308)},
    ]
    for attributes in nasty:
        with tracer.span("nasty \ud800 \x00", attributes=attributes) as span:
            span.add_event("e\ud800", attributes)
            span.record_exception(_UnprintableError())
    assert tracing.shutdown(timeout=30.0)
    stats = tracing.stats()
    assert stats["ended"] == 4 == stats["exported"] + stats["dropped"]
    assert len(backend.span_ids()) == stats["exported"]


# Values whose ``__str__`` raises, where the span API turns a value into text. The span API is
# typed ``str`` there, but an exception object as a status description is common, and an error
# path must not raise a second time because of tracing.


def test_set_status_with_a_description_whose_str_raises_does_not_raise() -> None:
    with capture() as spans, tracer.span("s") as span:
        span.set_status(tracing.StatusCode.ERROR, _UnprintableError())  # type: ignore[arg-type]
    assert spans[0].status.code is tracing.StatusCode.ERROR


def test_update_name_with_a_name_whose_str_raises_does_not_raise() -> None:
    with capture() as spans, tracer.span("s") as span:
        span.update_name(Hostile())  # type: ignore[arg-type]
    assert spans[0].name == "s"


def test_add_event_with_a_name_whose_str_raises_does_not_raise() -> None:
    with capture() as spans, tracer.span("s") as span:
        span.add_event(Hostile())  # type: ignore[arg-type]
    assert len(spans) == 1


def test_a_span_named_with_a_non_str_gets_a_text_name_every_exporter_encodes() -> None:
    with capture() as spans, tracer.span(Hostile()):  # type: ignore[arg-type]
        pass
    assert isinstance(spans[0].name, str)
    _encode_everywhere(spans[0])
