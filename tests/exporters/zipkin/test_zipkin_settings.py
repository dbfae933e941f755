"""The zipkin exporter checks its endpoint, headers and retry policy when it is built."""

from __future__ import annotations

from typing import Any, Dict

import pytest
from tracing_api_zipkin import ZipkinExporter

import tracing_api as tracing
from tracing_api import delivery

ZIPKIN_ENV = ("TRACING_ZIPKIN_ENDPOINT", "OTEL_EXPORTER_ZIPKIN_ENDPOINT", "TRACING_ZIPKIN_TIMEOUT",
              "OTEL_EXPORTER_ZIPKIN_TIMEOUT", "TRACING_ZIPKIN_COMPRESSION")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ZIPKIN_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(("variable", "value"), [
    ("OTEL_EXPORTER_ZIPKIN_ENDPOINT", "zipkin:9411/api/v2/spans"),
    ("TRACING_ZIPKIN_ENDPOINT", "http:///api/v2/spans"),
    ("TRACING_ZIPKIN_COMPRESSION", "brotli"),
    ("OTEL_EXPORTER_ZIPKIN_TIMEOUT", "soon"),
])
def test_bad_environment_setting_fails_configure_naming_the_variable(
        monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(tracing.ConfigurationError, match=f"exporter 'zipkin': .*{variable}"):
        tracing.configure(exporter="zipkin", processor="simple")


@pytest.mark.parametrize(("options", "message"), [
    ({"retry": {"deadline": 2}}, r"retry: expected a tracing_api\.delivery\.RetryPolicy"),
    ({"retry": delivery.RetryPolicy(initial_backoff=-1.0)}, r"retry: initial_backoff"),
    ({"headers": "k=v"}, r"headers: expected a mapping"),
    ({"headers": {"x-token": "a\r\nb"}}, r"headers: header 'x-token': .*CR, LF or NUL"),
    ({"headers": {"x-token": "€"}}, r"headers: header 'x-token': .*Latin-1"),
    ({"headers": {"x token": "v"}}, r"headers: header name 'x token' is not an HTTP token"),
    ({"endpoint": "http://"}, r"endpoint: .*no host"),
])
def test_bad_option_fails_configure_naming_it(options: Dict[str, Any], message: str) -> None:
    with pytest.raises(tracing.ConfigurationError, match=f"exporter 'zipkin': {message}"):
        tracing.configure(exporter="zipkin", processor="simple", **options)


def test_bad_header_value_is_not_shown_in_the_error() -> None:
    with pytest.raises(tracing.ConfigurationError) as caught:
        ZipkinExporter(headers={"authorization": "Bearer s3cret\n"})
    assert "s3cret" not in str(caught.value)


def test_good_headers_are_sent_as_given() -> None:
    exporter = ZipkinExporter(headers={"X-Team": "core", "x-trace-tenant": "Zürich"})
    assert (exporter.headers["X-Team"], exporter.headers["x-trace-tenant"]) == ("core", "Zürich")
