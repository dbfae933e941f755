"""OTLP test fixtures: no OTLP environment variable of the machine running the tests leaks in."""

from __future__ import annotations

import pytest

OTLP_ENV = [f"{prefix}{traces}{name}" for prefix in ("TRACING_OTLP_", "OTEL_EXPORTER_OTLP_")
            for traces in ("TRACES_", "") for name in
            ("ENDPOINT", "HEADERS", "TIMEOUT", "COMPRESSION", "PROTOCOL")]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OTLP_ENV:
        monkeypatch.delenv(name, raising=False)
