"""Shared test setup: hypothesis profiles, and every test starts and ends with nothing configured.

Fuzzing depth: the default "ci" profile keeps the suite fast; HYPOTHESIS_PROFILE=thorough runs
many more examples per property (see docs/reliability.md).
"""

from __future__ import annotations

import os
import time
from typing import Callable, Iterator

import pytest
from hypothesis import HealthCheck, settings

from tracing_api import _config, _tracer, context

settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=20_000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _no_pipeline_leaks() -> Iterator[None]:
    """A test that configures tracing gets its pipeline shut down and removed afterwards."""
    previous = _tracer.install(None)
    previous_propagator = _config.set_propagator(None)
    span_token = context._SPAN.set(context.INVALID_SPAN)
    baggage_token = context._BAGGAGE.set((context.EMPTY_BAGGAGE, context.EMPTY_BAGGAGE))
    try:
        yield
    finally:
        # pytest runs every test in one context: undo what a test left current (a generator
        # suspended inside a ``with`` block leaves its span current in its consumer's context).
        context._SPAN.reset(span_token)
        context._BAGGAGE.reset(baggage_token)
        leftover = _tracer.install(previous)
        if leftover is not None and leftover is not previous:
            leftover.shutdown(2.0)
        _config.set_propagator(previous_propagator)


def _exit_code_within(pid: int, seconds: float) -> int:
    """The exit code of child ``pid``; the child is killed (-9) if it has not exited in time."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return -9


@pytest.fixture
def exit_code_within() -> Callable[[int, float], int]:
    """Waits for a forked child, bounded in time: ``exit_code_within(pid, seconds)`` is its exit
    code, or -9 when it had to be killed (a deadlocked child)."""
    return _exit_code_within
