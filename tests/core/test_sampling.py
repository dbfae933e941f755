"""Samplers: constant, ratio (same decision as every other service), parent-based, rate-limited."""

from __future__ import annotations

from typing import List

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk.trace.sampling import Decision, TraceIdRatioBased

import tracing_api as tracing
from tracing_api import SpanContext, SpanKind, sampling
from tracing_api.testing import capture

trace_ids = st.integers(min_value=1, max_value=(1 << 128) - 1)
rates = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


def decide(sampler: sampling.Sampler, trace_id: int, parent: SpanContext | None = None) -> bool:
    return sampler.should_sample(parent, trace_id, "x", SpanKind.INTERNAL, None)


@given(rate=rates, trace_id=trace_ids)
def test_ratio_decision_depends_only_on_rate_and_trace_id(rate: float, trace_id: int) -> None:
    assert decide(sampling.ratio(rate), trace_id) == decide(sampling.ratio(rate), trace_id)


@given(rate=rates, trace_id=trace_ids)
def test_ratio_decision_matches_opentelemetry_trace_id_ratio_sampler(rate: float, trace_id: int) -> None:
    """A Python service traced by OpenTelemetry samples exactly the same traces."""
    theirs = TraceIdRatioBased(rate).should_sample(None, trace_id, "x").decision
    assert decide(sampling.ratio(rate), trace_id) == (theirs is Decision.RECORD_AND_SAMPLE)


def test_ratio_samples_about_the_given_share() -> None:
    import random

    rng = random.Random(7)
    sampled = sum(decide(sampling.ratio(0.25), rng.getrandbits(128)) for _ in range(20_000))
    assert 4_500 < sampled < 5_500


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "0.5", True, None])
def test_ratio_rejects_values_outside_zero_to_one(bad: object) -> None:
    with pytest.raises(tracing.ConfigurationError, match="from 0 to 1"):
        sampling.ratio(bad)  # type: ignore[arg-type]


def test_parent_based_follows_the_parent_and_asks_root_for_roots() -> None:
    sampler = sampling.parent_based(sampling.always_off())
    assert not decide(sampler, 5)
    assert decide(sampler, 5, SpanContext(5, 1, trace_flags=1, is_remote=True))
    assert not decide(sampler, 5, SpanContext(5, 1, trace_flags=0, is_remote=True))
    assert decide(sampler, 5, SpanContext(5, 1, trace_flags=1))
    assert not decide(sampler, 5, SpanContext(5, 1, trace_flags=0))


def test_parent_based_treats_debug_as_sampled_and_deferred_as_root() -> None:
    sampler = sampling.parent_based(sampling.always_on())
    assert decide(sampler, 5, SpanContext(5, 1, trace_flags=0, is_remote=True, debug=True))
    assert decide(sampler, 5, SpanContext(5, 1, trace_flags=0, is_remote=True, deferred=True))
    off = sampling.parent_based(sampling.always_off())
    assert not decide(off, 5, SpanContext(5, 1, trace_flags=0, is_remote=True, deferred=True))


def test_sampling_only_remote_parent_is_honoured_by_the_pipeline() -> None:
    """``b3: 0`` carries no ids, only "do not sample": the next span must not be sampled."""
    deny = SpanContext(0, 0, trace_flags=0, is_remote=True)
    with capture(sampler=sampling.parent_based(sampling.always_on())) as spans:
        span = tracing.get_tracer("t").start_span("s", parent=deny)
        span.end()
    assert spans.names() == []
    assert span.context.is_valid and not span.context.sampled


def test_default_sampler_inline_decision_matches_the_sampler_object() -> None:
    """The pipeline decides parent_based(always_on()) inline; it must agree with the object."""
    sampler = sampling.parent_based(sampling.always_on())
    cases: List[SpanContext] = [
        SpanContext(0, 0), SpanContext(5, 1, 1), SpanContext(5, 1, 0),
        SpanContext(5, 1, 0, is_remote=True), SpanContext(5, 1, 0, is_remote=True, debug=True),
        SpanContext(5, 1, 0, is_remote=True, deferred=True), SpanContext(0, 0, 0, is_remote=True),
        SpanContext(0, 0, 1, is_remote=True),
    ]
    for parent in cases:
        with capture(sampler=sampler):
            span = tracing.get_tracer("t").start_span("s", parent=parent)
        expected = decide(sampler, parent.trace_id or 9,
                          parent if parent.trace_id or parent.is_remote else None)
        assert span.context.sampled == expected, parent


def test_rate_limited_allows_n_per_second() -> None:
    now = [100.0]
    sampler = sampling.rate_limited(2, clock=lambda: now[0])
    assert [decide(sampler, 1) for _ in range(3)] == [True, True, False]
    now[0] += 0.5
    assert [decide(sampler, 1) for _ in range(2)] == [True, False]
    now[0] += 10
    assert [decide(sampler, 1) for _ in range(3)] == [True, True, False]


@pytest.mark.parametrize("bad", [0, -1, float("inf"), "3"])
def test_rate_limited_rejects_bad_rates(bad: object) -> None:
    with pytest.raises(tracing.ConfigurationError):
        sampling.rate_limited(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "arg", "expected"),
    [
        ("always_on", None, "always_on()"),
        ("always_off", None, "always_off()"),
        ("ratio", "0.5", "ratio(0.5)"),
        ("traceidratio", "0.5", "ratio(0.5)"),
        ("parentbased_traceidratio", "0.1", "parent_based(ratio(0.1))"),
        ("parent_based_always_on", None, "parent_based(always_on())"),
        ("rate_limited", "10", "rate_limited(10.0)"),
        ("PARENTBASED_ALWAYS_OFF", None, "parent_based(always_off())"),
    ],
)
def test_from_name_knows_our_names_and_opentelemetrys(name: str, arg: str | None, expected: str) -> None:
    assert repr(sampling.from_name(name, arg)) == expected


def test_from_name_lists_the_choices_for_an_unknown_name() -> None:
    with pytest.raises(tracing.ConfigurationError, match=r"unknown sampler 'sometimes'.*always_on"):
        sampling.from_name("sometimes")


def test_from_name_rejects_a_bad_argument() -> None:
    with pytest.raises(tracing.ConfigurationError, match="takes a number"):
        sampling.from_name("ratio", "half")


def test_rate_limited_keeps_traces_whole_and_spends_tokens_on_new_traces_only() -> None:
    now = [0.0]
    with capture(sampler=sampling.rate_limited(2, clock=lambda: now[0])) as spans:
        tracer = tracing.get_tracer("rate")
        for i in range(4):  # four traces of three spans each within one second: two fit
            with tracer.span(f"root{i}"), tracer.span(f"child{i}"), tracer.span(f"leaf{i}"):
                pass
            now[0] += 0.1
    by_trace: dict[int, List[str]] = {}
    for span in spans:
        by_trace.setdefault(span.context.trace_id, []).append(span.name)
    assert sorted(sorted(names) for names in by_trace.values()) == [
        ["child0", "leaf0", "root0"], ["child1", "leaf1", "root1"]]


@pytest.mark.parametrize(("flags", "debug", "kept"), [(0x01, False, True), (0x00, False, False),
                                                     (0x00, True, True)])
def test_rate_limited_follows_a_remote_decision_without_spending_a_token(
    flags: int, debug: bool, kept: bool,
) -> None:
    sampler = sampling.rate_limited(1, clock=lambda: 0.0)
    parent = SpanContext(1, 2, flags, is_remote=True, debug=debug)
    for _ in range(5):
        assert sampler.should_sample(parent, 1, "s", SpanKind.SERVER, None) is kept
    assert sampler.should_sample(None, 3, "new", SpanKind.SERVER, None)  # its token is intact


@pytest.mark.parametrize("root", [None, "always_on", 0.5])
def test_parent_based_refuses_a_root_that_is_not_a_sampler(root: object) -> None:
    with pytest.raises(tracing.ConfigurationError, match="needs a root sampler"):
        sampling.parent_based(root)  # type: ignore[arg-type]
