"""Shared fixtures: every test starts and ends with nothing configured."""

from __future__ import annotations

from typing import Iterator

import pytest

from tracing_api import _config, _tracer


@pytest.fixture(autouse=True)
def _no_pipeline_leaks() -> Iterator[None]:
    """A test that configures tracing gets its pipeline shut down and removed afterwards."""
    previous = _tracer.install(None)
    previous_propagator = _config.set_propagator(None)
    try:
        yield
    finally:
        leftover = _tracer.install(previous)
        if leftover is not None and leftover is not previous:
            leftover.shutdown(2.0)
        _config.set_propagator(previous_propagator)
