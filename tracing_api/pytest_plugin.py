"""The pytest plugin of tracing-api: the ``trace_capture`` fixture (see ``tracing_api.testing``)."""

from __future__ import annotations

from typing import Iterator

import pytest

from .testing import CapturedSpans, capture


@pytest.fixture
def trace_capture() -> Iterator[CapturedSpans]:
    """Every span finished during the test, in an isolated pipeline."""
    with capture() as spans:
        yield spans
