"""Selecting the exporter by name, its options, and where the project id comes from."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest
from tracing_api_stackdriver import exporter as make

import tracing_api as tracing
from tracing_api import ConfigurationError, ExportResult, SpanKind
from tracing_api.delivery import RetryPolicy
from tracing_api.export import SpanData


@pytest.fixture
def no_project(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An environment where no project id can be found: no variables, an empty gcloud dir."""
    for name in ("GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT", "GOOGLE_APPLICATION_CREDENTIALS",
                 "CLOUDSDK_CORE_PROJECT", "CLOUDSDK_ACTIVE_CONFIG_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    return tmp_path


def test_configure_by_name_exports_real_spans(cloud_trace: Any) -> None:
    tracing.configure(exporter="stackdriver", project_id="p", client=cloud_trace.client(),
                      processor="simple")
    tracer = tracing.get_tracer(__name__)
    with tracer.span("GET /orders", kind=SpanKind.SERVER) as server:
        server.set_attribute("http.request.method", "GET")
        with tracer.span("SELECT orders", kind=SpanKind.CLIENT):
            pass
    assert tracing.shutdown(5.0)
    child, root = cloud_trace.spans
    assert root.display_name.value == "GET /orders"
    assert root.attributes.attribute_map["/http/method"].string_value.value == "GET"
    assert child.parent_span_id == root.span_id
    assert child._pb.same_process_as_parent_span.value is True
    assert child.name == f"projects/p/traces/{root.name.split('/')[3]}/spans/{child.span_id}"
    assert child.span_kind.name == "CLIENT"


def test_configure_records_a_raised_exception_as_a_stack_trace(cloud_trace: Any) -> None:
    tracing.configure(exporter="cloud_trace", project_id="p", client=cloud_trace.client(),
                      processor="simple")
    tracer = tracing.get_tracer(__name__)

    def fail() -> None:
        raise KeyError("missing")

    with pytest.raises(KeyError), tracer.span("work"):
        fail()
    tracing.shutdown(5.0)
    (sent,) = cloud_trace.spans
    assert sent._pb.status.code == 2
    functions = [f.function_name.value for f in sent.stack_trace.stack_frames.frame]
    assert functions[0] == "fail"
    assert "test_configure_records_a_raised_exception_as_a_stack_trace" in functions


def test_both_entry_point_names_are_the_same_factory() -> None:
    from importlib.metadata import entry_points

    found = {ep.name: ep.load() for ep in entry_points(group="tracing_api.exporters")
             if ep.name in ("stackdriver", "cloud_trace")}
    assert found == {"stackdriver": make, "cloud_trace": make}


def test_missing_project_id_is_one_configuration_error(no_project: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"no Google Cloud project id.*GOOGLE_CLOUD_PROJECT"):
        tracing.configure(exporter="stackdriver", processor="simple")


def test_project_id_option_wins_over_the_environment(
    no_project: Path, monkeypatch: pytest.MonkeyPatch, cloud_trace: Any,
) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "from-env")
    assert make(project_id="from-option", client=cloud_trace.client()).project_id == "from-option"


def test_project_id_from_google_cloud_project(
    no_project: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "from-env")
    assert make().project_id == "from-env"


def test_project_id_from_the_credentials_object(no_project: Path) -> None:
    class Credentials:
        project_id = "from-credentials"

    assert make(credentials=Credentials()).project_id == "from-credentials"


def test_project_id_from_the_application_default_credentials_file(
    no_project: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = no_project / "key.json"
    key.write_text(json.dumps({"type": "service_account", "project_id": "from-key-file"}))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    assert make().project_id == "from-key-file"


def test_project_id_from_the_gcloud_configuration(no_project: Path) -> None:
    configurations = no_project / "gcloud" / "configurations"
    configurations.mkdir(parents=True)
    (configurations / "config_default").write_text("[core]\nproject = from-gcloud\n")
    assert make().project_id == "from-gcloud"


def _gcloud_configurations(no_project: Path) -> Path:
    directory = no_project / "gcloud"
    (directory / "configurations").mkdir(parents=True)
    (directory / "configurations" / "config_default").write_text("[core]\nproject = dev-box\n")
    (directory / "configurations" / "config_prod").write_text("[core]\nproject = prod-app\n")
    return directory


def test_project_id_from_the_gcloud_configuration_the_active_config_file_names(
    no_project: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CLOUDSDK_ACTIVE_CONFIG_NAME", raising=False)
    (_gcloud_configurations(no_project) / "active_config").write_text("prod\n")
    assert make().project_id == "prod-app"


def test_cloudsdk_active_config_name_wins_over_the_active_config_file(
    no_project: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    (_gcloud_configurations(no_project) / "active_config").write_text("default")
    monkeypatch.setenv("CLOUDSDK_ACTIVE_CONFIG_NAME", "prod")
    assert make().project_id == "prod-app"


def test_malformed_cloudsdk_active_config_name_reads_no_file(
    no_project: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    directory = _gcloud_configurations(no_project)
    (directory / "configurations" / "config_..").write_text("[core]\nproject = elsewhere\n")
    monkeypatch.setenv("CLOUDSDK_ACTIVE_CONFIG_NAME", "..")
    with pytest.raises(ConfigurationError, match="no Google Cloud project id"):
        make()


@pytest.mark.parametrize("policy", [
    RetryPolicy(deadline=float("inf")), RetryPolicy(deadline="5"),  # type: ignore[arg-type]
    RetryPolicy(initial_backoff=-1.0), RetryPolicy(max_attempts=1.5),  # type: ignore[arg-type]
])
def test_unusable_retry_policy_is_a_configuration_error_naming_retry(
    policy: RetryPolicy,
) -> None:
    with pytest.raises(ConfigurationError, match=r"exporter 'stackdriver': retry: "):
        make(project_id="p", retry=policy)


def test_malformed_project_id_is_a_configuration_error(no_project: Path) -> None:
    with pytest.raises(ConfigurationError, match="project_id"):
        make(project_id="a/b")


@pytest.mark.parametrize("options", [
    {"client": "not a client"}, {"timeout": 0}, {"timeout": "5"}, {"retry": 3},
    {"max_spans_per_request": 0}, {"max_spans_per_request": 1.5}, {"max_request_bytes": 100},
])
def test_bad_option_is_a_configuration_error(options: Dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="stackdriver"):
        make(project_id="p", **options)


def test_unknown_option_is_a_configuration_error_from_configure() -> None:
    with pytest.raises(ConfigurationError, match="stackdriver"):
        tracing.configure(exporter="stackdriver", project_id="p", colour="blue",
                          processor="simple")


def test_making_the_exporter_makes_no_client_until_the_first_export() -> None:
    """No client means no credentials lookup and no connection at configure() time."""
    exporter = make(project_id="p")
    assert exporter._client is None
    exporter.shutdown()
    assert exporter._client is None


def test_importing_the_plugin_loads_nothing_from_google() -> None:
    code = ("import sys, tracing_api_stackdriver; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('google', 'grpc')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_missing_credentials_fail_exports_without_raising(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, make_span: Callable[..., SpanData],
) -> None:
    """Credentials are looked for at the first export, not at configure(); none fail exports."""
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    exporter = make(project_id="p")
    assert exporter.export([make_span(1)]) is ExportResult.FAILURE
    assert exporter.export([make_span(2)]) is ExportResult.FAILURE
    assert exporter.stats()["spans_failed"] == 2
    assert exporter.stats()["attempts"] == 2
    exporter.shutdown()


def test_a_client_that_could_not_be_made_is_tried_again_later(
    monkeypatch: pytest.MonkeyPatch, cloud_trace: Any, make_span: Callable[..., SpanData],
) -> None:
    """A passing failure (the metadata server out of reach) must not stop export for good."""
    from google.cloud import trace_v2
    from tracing_api_stackdriver import _exporter

    attempts: List[int] = []
    real_client = cloud_trace.client()

    def flaky_client(**kwargs: Any) -> Any:
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("metadata server unreachable")
        return real_client

    monkeypatch.setattr(trace_v2, "TraceServiceClient", flaky_client)
    exporter = make(project_id="p")
    try:
        assert exporter.export([make_span(1)]) is ExportResult.FAILURE
        assert exporter.export([make_span(2)]) is ExportResult.FAILURE  # within the cool-down
        assert len(attempts) == 1
        monkeypatch.setattr(_exporter, "CLIENT_RETRY_SECONDS", 0.0)
        assert exporter.export([make_span(3)]) is ExportResult.SUCCESS
        assert cloud_trace.span_ids() == [format(3, "016x")]
    finally:
        exporter.shutdown()
