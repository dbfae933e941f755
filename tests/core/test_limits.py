"""Attribute validation and span limits: invalid values are dropped and counted, never raised."""

from __future__ import annotations

import enum
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

import tracing_api as tracing
from tracing_api.testing import capture

tracer = tracing.get_tracer(__name__)


class Hostile:
    """An object whose every conversion raises."""

    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    def __iter__(self) -> Any:
        raise RuntimeError("no iter")

    def __len__(self) -> int:
        raise RuntimeError("no len")


class Color(enum.IntEnum):
    RED = 1


class Name(str, enum.Enum):
    ALICE = "alice"


scalars = st.one_of(st.text(), st.booleans(), st.integers(), st.floats(allow_nan=True))
anything = st.recursive(
    st.one_of(scalars, st.none(), st.binary(), st.builds(Hostile), st.builds(object),
              st.complex_numbers(allow_nan=False)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.tuples(inner, inner),
                            st.dictionaries(st.text(max_size=3), inner, max_size=3),
                            st.sets(st.integers(), max_size=3)),
    max_leaves=8,
)


def is_valid_value(value: Any) -> bool:
    kinds = (str, bool, int, float)
    if type(value) in kinds:
        return not (type(value) is int and not -(2**63) <= value < 2**63)
    if type(value) is tuple:
        return len({type(v) for v in value}) <= 1 and all(is_valid_value(v) for v in value)
    return False


@given(key=st.one_of(st.text(), st.integers(), st.none()), value=anything)
def test_set_attribute_never_raises_and_keeps_only_valid_values(key: Any, value: Any) -> None:
    with capture() as spans, tracer.span("x") as span:
        span.set_attribute(key, value)
        span.set_attributes({key: value} if isinstance(key, (str, int, type(None))) else {})
        span.add_event("e", {"k": value})
        span.add_link(tracing.SpanContext(1, 2), {"k": value})
    data = spans[0]
    for kept in data.attributes.values():
        assert is_valid_value(kept)
    assert len(data.attributes) + data.dropped_attributes >= 1
    for kept in data.events[0].attributes.values():
        assert is_valid_value(kept)


def test_sequences_are_copied_as_tuples_and_mixed_ones_dropped() -> None:
    values = [1, 2]
    with capture() as spans, tracer.span("x") as span:
        span.set_attribute("list", values)
        span.set_attribute("mixed", [1, "a"])
        span.set_attribute("empty", [])
        values.append(3)
    data = spans[0]
    assert data.attributes["list"] == (1, 2)
    assert data.attributes["empty"] == ()
    assert "mixed" not in data.attributes
    assert data.dropped_attributes == 1


def test_enum_and_str_subclass_values_become_plain_values() -> None:
    with capture() as spans, tracer.span("x") as span:
        span.set_attribute("color", Color.RED)
        span.set_attribute("name", Name.ALICE)
    assert spans[0].attributes["color"] == 1
    assert type(spans[0].attributes["color"]) is int
    assert type(spans[0].attributes["name"]) is str


def test_integers_outside_int64_are_dropped_and_counted() -> None:
    with capture() as spans, tracer.span("x", attributes={"big": 2**63}) as span:
        span.set_attribute("small", -(2**63) - 1)
        span.set_attribute("edge", 2**63 - 1)
    assert dict(spans[0].attributes) == {"edge": 2**63 - 1}
    assert spans[0].dropped_attributes == 2


def test_attribute_count_limit_keeps_the_first_and_counts_the_rest() -> None:
    with capture(limits=tracing.Limits(attributes=3)) as spans, \
            tracer.span("x", attributes={"a": 1, "b": 2}) as span:
        for key in "cdef":
            span.set_attribute(key, 0)
        span.set_attribute("a", 9)  # updating a kept key is not a new one
    assert dict(spans[0].attributes) == {"a": 9, "b": 2, "c": 0}
    assert spans[0].dropped_attributes == 3


def test_value_length_limit_cuts_strings_and_string_sequences() -> None:
    with capture(limits=tracing.Limits(value_length=4)) as spans, tracer.span("x") as span:
        span.set_attribute("s", "abcdefgh")
        span.set_attribute("l", ["abcdefgh", "ab"])
        span.add_event("e", {"s": "abcdefgh"})
    data = spans[0]
    assert data.attributes["s"] == "abcd"
    assert data.attributes["l"] == ("abcd", "ab")
    assert data.events[0].attributes["s"] == "abcd"


def test_event_and_link_count_limits_are_counted() -> None:
    limits = tracing.Limits(events=2, links=1, event_attributes=1, link_attributes=1)
    with capture(limits=limits) as spans, tracer.span("x") as span:
        for i in range(4):
            span.add_event(f"e{i}", {"a": 1, "b": 2})
            span.add_link(tracing.SpanContext(1, i + 1), {"a": 1, "b": 2})
    data = spans[0]
    assert [e.name for e in data.events] == ["e0", "e1"]
    assert data.dropped_events == 2
    assert data.events[0].dropped_attributes == 1
    assert len(data.links) == 1
    assert data.dropped_links == 3
    assert data.links[0].dropped_attributes == 1


def test_huge_attribute_value_is_kept_by_reference_without_copying() -> None:
    huge = "x" * 10_000_000
    with capture() as spans, tracer.span("x") as span:
        span.set_attribute("huge", huge)
    assert spans[0].attributes["huge"] is huge


def test_zero_event_and_link_limits_keep_none_and_count_every_one() -> None:
    limits = tracing.Limits(events=0, links=0)
    with capture(limits=limits) as spans, tracer.span("s", links=[tracing.SpanContext(1, 2)]) as span:
        span.add_event("one")
        span.add_event("two")
        span.add_link(tracing.SpanContext(3, 4))
    (data,) = spans
    assert (data.events, data.dropped_events) == ((), 2)
    assert (data.links, data.dropped_links) == ((), 2)


class _Method(str, enum.Enum):
    GET = "GET"


class _Key(str, enum.Enum):
    METHOD = "http.request.method"


def test_str_enum_values_and_names_are_recorded_as_their_text() -> None:
    with capture() as spans, tracer.span("s", attributes={_Key.METHOD: _Method.GET}) as span:
        span.set_attribute("m", _Method.GET)
        span.set_attribute(_Key.METHOD, _Method.GET)
        span.set_attribute("seq", [_Method.GET, "POST"])
        span.add_event("e", {"m": _Method.GET})
    (data,) = spans
    assert dict(data.attributes) == {"http.request.method": "GET", "m": "GET", "seq": ("GET", "POST")}
    assert all(type(key) is str for key in data.attributes)
    assert dict(data.events[0].attributes) == {"m": "GET"}
    assert data.dropped_attributes == 0


class _AmbiguousRow(dict):  # type: ignore[type-arg]
    """A mapping whose truth value raises, as a pandas row's does."""

    def __bool__(self) -> bool:
        raise ValueError("The truth value of a Series is ambiguous")

    __len__ = __bool__  # type: ignore[assignment]


def test_mappings_whose_truth_value_raises_are_read_not_tested() -> None:
    row = _AmbiguousRow(a=1)
    with capture() as spans, tracer.span("s", attributes=row, links=_AmbiguousRow()) as span:
        span.add_event("e", _AmbiguousRow(b=2))
        span.add_link(tracing.SpanContext(1, 2), _AmbiguousRow(c=3))
        span.record_exception(ValueError("x"), _AmbiguousRow(d=4))
    (data,) = spans
    assert dict(data.attributes) == {"a": 1}
    assert dict(data.events[0].attributes) == {"b": 2}
    assert dict(data.links[0].attributes) == {"c": 3}
    assert data.events[1].attributes["d"] == 4
