"""The otlp exporter checks every setting when it is built, naming the option or variable.

A bad endpoint, header, protocol, compression or retry policy used to be accepted and then cost
every batch a deadline of retries; now ``configure()`` refuses it with one clear error.
"""

from __future__ import annotations

import http.client
import os
import urllib.request
from typing import Any, Dict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tracing_api_otlp import OtlpExporter, parse_headers, traces_url

import tracing_api as tracing
from tracing_api import delivery

EXAMPLES = int(os.environ.get("TRACING_FUZZ_EXAMPLES", "200"))
@pytest.mark.parametrize(("variable", "value"), [
    ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "collector:4318/v1/traces"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"),
    ("TRACING_OTLP_ENDPOINT", "ftp://collector:4318"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:port"),
    ("OTEL_EXPORTER_OTLP_HEADERS", "api key=secret"),
    ("OTEL_EXPORTER_OTLP_HEADERS", "x-token=a%0Ab"),
    ("OTEL_EXPORTER_OTLP_HEADERS", "x-token=a%00b"),
    ("OTEL_EXPORTER_OTLP_HEADERS", "x-token=%E2%82%AC"),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
    ("OTEL_EXPORTER_OTLP_COMPRESSION", "deflate"),
    ("OTEL_EXPORTER_OTLP_TIMEOUT", "abc"),
])
def test_bad_environment_setting_fails_configure_naming_the_variable(
        monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(tracing.ConfigurationError, match=f"exporter 'otlp': .*{variable}"):
        tracing.configure(exporter="otlp", processor="simple")


def test_bad_header_error_does_not_show_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=s3cret%0D%0Ax-injected: 1")
    with pytest.raises(tracing.ConfigurationError) as caught:
        OtlpExporter()
    assert "s3cret" not in str(caught.value)


def test_credentials_in_a_bad_endpoint_are_not_shown() -> None:
    with pytest.raises(tracing.ConfigurationError) as caught:
        OtlpExporter("http://alice:s3cret@")
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize(("options", "message"), [
    ({"retry": {"deadline": 2}}, r"retry: expected a tracing_api\.delivery\.RetryPolicy"),
    ({"retry": delivery.RetryPolicy(deadline=float("nan"))}, r"retry: deadline"),
    ({"retry": delivery.RetryPolicy(max_attempts=-1)}, r"retry: max_attempts"),
    ({"headers": "k=v"}, r"headers: expected a mapping.*OTEL_EXPORTER_OTLP_HEADERS"),
    ({"headers": {"x-n": 1}}, r"headers: header 'x-n': expected a string"),
    ({"headers": {"": "v"}}, r"headers: header name '' is not an HTTP token"),
    ({"endpoint": "http://collector 1:4318"}, r"endpoint: .*spaces"),
    ({"protocol": ["http/json"]}, r"protocol: expected one of"),
    ({"compression": 1}, r"compression: expected 'gzip' or 'none'"),
])
def test_bad_option_fails_configure_naming_it(options: Dict[str, Any], message: str) -> None:
    with pytest.raises(tracing.ConfigurationError, match=f"exporter 'otlp': {message}"):
        tracing.configure(exporter="otlp", processor="simple", **options)


def test_bad_option_fails_the_constructor_with_a_configuration_error() -> None:
    with pytest.raises(tracing.ConfigurationError, match="retry"):
        OtlpExporter("http://127.0.0.1:4318", retry={"deadline": 2})  # type: ignore[arg-type]


def test_retry_none_means_the_default_policy() -> None:
    assert OtlpExporter(retry=None).sender.policy == delivery.DEFAULT_RETRY


def test_good_environment_headers_are_kept_as_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "api-key=s%20ecret,x-team=core")
    exporter = OtlpExporter()
    assert (exporter.headers["api-key"], exporter.headers["x-team"]) == ("s ecret", "core")


def test_traces_url_names_the_general_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACING_OTLP_ENDPOINT", "collector:4318")
    with pytest.raises(tracing.ConfigurationError, match="TRACING_OTLP_ENDPOINT"):
        traces_url(None)


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.one_of(st.text(max_size=200),
                 st.lists(st.tuples(st.text(max_size=20), st.text(max_size=40)), max_size=6)
                 .map(lambda pairs: ",".join(f"{k}={v}" for k, v in pairs))))
def test_parse_headers_returns_only_sendable_headers_or_a_configuration_error(text: str) -> None:
    try:
        headers = parse_headers(text)
    except tracing.ConfigurationError:
        return
    connection = http.client.HTTPConnection("127.0.0.1")
    connection.putrequest("POST", "/v1/traces", skip_host=True, skip_accept_encoding=True)
    for name, value in headers.items():
        connection.putheader(name, value)  # http.client's own checks: raise on a bad one


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.one_of(st.text(max_size=100),
                 st.builds(lambda scheme, rest: scheme + rest,
                           st.sampled_from(["http://", "https://", "HTTP://", "ftp://", ""]),
                           st.text(max_size=60))))
def test_url_setting_accepts_only_urls_urllib_can_post_to(text: str) -> None:
    try:
        url = delivery.url_setting(text, "endpoint")
    except tracing.ConfigurationError as exc:
        refused = str(exc)
    else:
        refused = ""
    if refused:
        assert refused.startswith("endpoint: expected an http:// or https:// URL")
        return
    request = urllib.request.Request(url, data=b"x", method="POST")
    assert request.type in ("http", "https")
    connection = http.client.HTTPConnection(request.host)  # parses the port: raises on a bad one
    connection.putrequest("POST", request.selector)  # raises on a request line it will not send


@pytest.mark.parametrize("given", ["http://collector:4318/v1/traces/",
                                   "http://collector:4318/v1/traces//"])
def test_an_endpoint_given_whole_with_a_trailing_slash_loses_the_slash(given: str) -> None:
    # Receivers route "/v1/traces" exactly: "/v1/traces/" answers 404 to every batch.
    assert traces_url(given) == "http://collector:4318/v1/traces"
