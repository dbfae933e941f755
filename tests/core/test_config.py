"""configure() from code and from the environment, and its errors."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
import time
from typing import Any, Sequence

import pytest

import tracing_api as tracing
from tracing_api import _tracer
from tracing_api._local import ConsoleExporter, JsonLinesExporter, MemoryExporter
from tracing_api.export import ExportResult, SpanData

tracer = tracing.get_tracer(__name__)

ENV_NAMES = [
    "TRACING_EXPORTER", "OTEL_TRACES_EXPORTER", "TRACING_SERVICE_NAME", "OTEL_SERVICE_NAME",
    "TRACING_SAMPLER", "OTEL_TRACES_SAMPLER", "TRACING_SAMPLER_ARG", "OTEL_TRACES_SAMPLER_ARG",
    "TRACING_PROPAGATORS", "OTEL_PROPAGATORS", "TRACING_PROCESSOR", "OTEL_RESOURCE_ATTRIBUTES",
    "TRACING_RESOURCE_ATTRIBUTES", "TRACING_DISABLED", "OTEL_SDK_DISABLED",
    "OTEL_BSP_MAX_QUEUE_SIZE", "OTEL_BSP_SCHEDULE_DELAY", "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT",
    "TRACING_SPAN_ATTRIBUTE_COUNT_LIMIT", "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


def pipeline() -> Any:
    active = _tracer.active()
    assert active is not None
    return active


def exporter_of(index: int = 0) -> Any:
    return pipeline().processors[index].exporter


def test_defaults_are_console_batch_parent_based_and_w3c() -> None:
    tracing.configure()
    assert isinstance(exporter_of(), ConsoleExporter)
    assert type(pipeline().processors[0]).__name__ == "BatchProcessor"
    assert repr(pipeline().sampler) == "parent_based(always_on())"
    assert [type(p).__name__ for p in tracing.propagation._configured().propagators] == [
        "TraceContextPropagator", "BaggagePropagator"]
    assert pipeline().resource["service.name"] == "unknown_service:python"


def test_exporter_by_name_gets_its_options(tmp_path: Any) -> None:
    path = tmp_path / "out.jsonl"
    tracing.configure(exporter="jsonl", path=str(path), processor="simple")
    assert isinstance(exporter_of(), JsonLinesExporter)
    with tracer.span("written"):
        pass
    assert '"name": "written"' in path.read_text()


def test_several_exporters_by_name_and_object() -> None:
    mine = MemoryExporter()
    tracing.configure(exporter=["memory", ("console", {"stream": io.StringIO()}), mine])
    kinds = [type(p.exporter).__name__ for p in pipeline().processors]
    assert kinds == ["MemoryExporter", "ConsoleExporter", "MemoryExporter"]


def test_environment_settings_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACING_EXPORTER", "memory")
    monkeypatch.setenv("TRACING_SERVICE_NAME", "greeter")
    monkeypatch.setenv("TRACING_SAMPLER", "parent_based_ratio")
    monkeypatch.setenv("TRACING_SAMPLER_ARG", "0.25")
    monkeypatch.setenv("TRACING_PROCESSOR", "simple")
    monkeypatch.setenv("TRACING_RESOURCE_ATTRIBUTES", "deployment.environment=prod,team=a%20b")
    monkeypatch.setenv("TRACING_SPAN_ATTRIBUTE_COUNT_LIMIT", "5")
    tracing.configure()
    assert isinstance(exporter_of(), MemoryExporter)
    assert type(pipeline().processors[0]).__name__ == "SimpleProcessor"
    assert repr(pipeline().sampler) == "parent_based(ratio(0.25))"
    assert pipeline().resource["service.name"] == "greeter"
    assert pipeline().resource["team"] == "a b"
    assert pipeline().limits.attributes == 5


def test_opentelemetry_variables_are_fallbacks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "memory")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "otel-name")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.5")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "250")
    monkeypatch.setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "16")
    tracing.configure()
    assert isinstance(exporter_of(), MemoryExporter)
    assert pipeline().resource["service.name"] == "otel-name"
    assert repr(pipeline().sampler) == "ratio(0.5)"
    assert pipeline().processors[0]._delay == pytest.approx(0.25)
    assert pipeline().limits.value_length == 16


def test_tracing_variables_win_over_opentelemetry_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "otel")
    monkeypatch.setenv("TRACING_SERVICE_NAME", "ours")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    monkeypatch.setenv("TRACING_EXPORTER", "memory")
    tracing.configure()
    assert pipeline().resource["service.name"] == "ours"
    assert isinstance(exporter_of(), MemoryExporter)


def test_code_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACING_SERVICE_NAME", "env")
    monkeypatch.setenv("TRACING_EXPORTER", "console")
    tracing.configure(exporter="memory", service_name="code")
    assert pipeline().resource["service.name"] == "code"
    assert isinstance(exporter_of(), MemoryExporter)


def test_disabled_sdk_configures_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    tracing.configure(exporter="memory")
    assert _tracer.active() is None


@pytest.mark.parametrize("value", ["true", "TRUE", "True", "1", "yes", "on"])
@pytest.mark.parametrize("name", ["TRACING_DISABLED", "OTEL_SDK_DISABLED"])
def test_disabled_accepts_the_spellings_of_true(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    tracing.configure(exporter="memory")
    assert _tracer.active() is None


@pytest.mark.parametrize("value", ["false", "FALSE", "False", "0", "no", "off"])
@pytest.mark.parametrize("name", ["TRACING_DISABLED", "OTEL_SDK_DISABLED"])
def test_disabled_false_spellings_leave_tracing_on(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    tracing.configure(exporter="memory")
    assert _tracer.active() is not None


def test_disabled_tracing_variable_wins_over_opentelemetry_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRACING_DISABLED", "false")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    tracing.configure(exporter="memory")
    assert _tracer.active() is not None


def test_exporter_none_records_but_exports_nowhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    tracing.configure()
    assert pipeline().processors == ()
    with tracer.span("x") as span:
        assert span.context.sampled


@pytest.mark.parametrize(
    ("kwargs", "env", "message"),
    [
        ({"exporter": "zipkn"}, {}, r"no exporter 'zipkn'; installed: .*console, jsonl, memory"),
        ({}, {"TRACING_EXPORTER": "nope"}, r"no exporter 'nope'"),
        ({"sampler": "sometimes"}, {}, r"configure\(sampler=...\): unknown sampler 'sometimes'; choose"),
        ({}, {"OTEL_TRACES_SAMPLER": "jaeger_remote"}, r"OTEL_TRACES_SAMPLER: unknown sampler"),
        ({"sampler": "ratio", "sampler_arg": "lots"}, {}, r"configure\(sampler_arg=...\): .*takes a number"),
        ({}, {"TRACING_SAMPLER": "ratio", "TRACING_SAMPLER_ARG": "abc"},
         r"^TRACING_SAMPLER_ARG: sampler 'ratio' takes a number"),
        ({}, {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"},
         r"^OTEL_TRACES_SAMPLER_ARG: sampler ratio must be a number from 0 to 1"),
        ({"sampler": "rate_limited"}, {"OTEL_TRACES_SAMPLER_ARG": "inf"},
         r"^OTEL_TRACES_SAMPLER_ARG: rate_limited\(\) needs a positive number"),
        ({}, {"TRACING_SAMPLER": "nosuch", "TRACING_SAMPLER_ARG": "0.5"},
         r"^TRACING_SAMPLER: unknown sampler 'nosuch'"),
        ({}, {"TRACING_DISABLED": "ture"}, r"^TRACING_DISABLED: expected true or false"),
        ({}, {"OTEL_SDK_DISABLED": "maybe"}, r"^OTEL_SDK_DISABLED: expected true or false"),
        ({}, {"TRACING_DISABLED": "disabled", "OTEL_SDK_DISABLED": "true"},
         r"^TRACING_DISABLED: expected true or false"),
        ({"sampler": 0.5}, {}, r"expected a sampler"),
        ({"processor": "fast"}, {}, r"configure\(processor=...\): expected 'batch' or 'simple'"),
        ({}, {"TRACING_PROCESSOR": "fast"}, r"TRACING_PROCESSOR: expected 'batch' or 'simple'"),
        ({"propagators": ["tracecontext", "w3c"]}, {}, r"no propagator 'w3c'; installed: "),
        ({"max_queue_size": 0}, {}, r"configure\(max_queue_size=...\): expected a whole number >= 1"),
        ({}, {"OTEL_BSP_MAX_QUEUE_SIZE": "many"}, r"OTEL_BSP_MAX_QUEUE_SIZE: expected a whole number"),
        ({}, {"OTEL_BSP_SCHEDULE_DELAY": "-5"}, r"OTEL_BSP_SCHEDULE_DELAY: expected a finite number >= 0"),
        ({"schedule_delay": float("inf")}, {}, r"schedule_delay=...\): expected a finite number"),
        ({"shutdown_timeout": 1e300}, {}, r"shutdown_timeout=...\): expected a finite number"),
        ({"max_queue_size": float("inf")}, {}, r"max_queue_size=...\): expected a whole number"),
        ({"limits": tracing.Limits(attributes="10")}, {}, r"attributes must be a whole number"),  # type: ignore[arg-type]
        ({"limits": tracing.Limits(value_length=-1)}, {},
         r"value_length must be a whole number >= 0 or None"),
        ({"resource": "env=prod"}, {}, r"configure\(resource=...\): expected a mapping"),
        ({"resource": {"k": object()}}, {}, r"'k': .* is not an attribute value"),
        ({"processor": object()}, {}, r"lacks on_end, force_flush, shutdown, stats"),
        ({"exporter": "memory", "colour": "blue"}, {}, r"exporter 'memory': .*colour"),
        ({"exporter": 42}, {}, r"expected an exporter name or an object"),
        ({"exporter": ["memory", "console"], "path": "x"}, {}, r"need exactly one exporter"),
        ({}, {"OTEL_RESOURCE_ATTRIBUTES": "novalue"}, r"OTEL_RESOURCE_ATTRIBUTES: expected key=value"),
        ({"service_name": ""}, {}, r"service_name"),
        ({"limits": {"attributes": 3}}, {}, r"limits"),
    ],
)
def test_bad_settings_raise_one_clear_error_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, Any], env: dict[str, str], message: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(tracing.ConfigurationError, match=message):
        tracing.configure(**kwargs)
    assert _tracer.active() is None  # nothing half-configured


def test_known_plugin_that_is_not_installed_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tracing_api import _plugins

    real = _plugins._entry_points
    monkeypatch.setattr(_plugins, "_entry_points",
                        lambda group: [ep for ep in real(group) if ep.name != "zipkin"])
    with pytest.raises(tracing.ConfigurationError,
                       match=r"exporter 'zipkin' is not installed: pip install \"tracing-api\[zipkin\]\""):
        tracing.configure(exporter="zipkin")


def test_plugin_that_fails_to_import_fails_configure_not_import(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from importlib.metadata import EntryPoint

    from tracing_api import _plugins

    broken = EntryPoint("broken", "no_such_module_anywhere:make", _plugins.EXPORTERS)
    real = _plugins._entry_points
    monkeypatch.setattr(_plugins, "_entry_points", lambda group: [*real(group), broken])
    with pytest.raises(tracing.ConfigurationError, match=r"exporter 'broken' failed to load"):
        tracing.configure(exporter="broken")


def test_processor_object_receives_every_span() -> None:
    received: list[SpanData] = []

    class Collect:
        def on_end(self, span: SpanData) -> None:
            received.append(span)

        def force_flush(self, timeout: float = 30.0) -> bool:
            return True

        def shutdown(self, timeout: float = 30.0) -> bool:
            return True

        def stats(self) -> dict[str, int]:
            return {"ended": len(received)}

    tracing.configure(processor=Collect())
    with tracer.span("x"):
        pass
    assert [s.name for s in received] == ["x"]
    assert tracing.stats()["ended"] == 1


def test_configure_does_not_touch_entry_points_at_import() -> None:
    code = "import sys, tracing_api; print('importlib.metadata' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False"


class Hanging:
    def export(self, spans: Sequence[SpanData]) -> ExportResult:
        time.sleep(60)
        return ExportResult.SUCCESS

    def force_flush(self, timeout: float = 30.0) -> bool:
        return True

    def shutdown(self) -> None:
        time.sleep(60)


def test_interpreter_exit_is_bounded_when_the_backend_hangs() -> None:
    code = textwrap.dedent("""
        import time, tracing_api as tracing
        class Hanging:
            def export(self, spans):
                time.sleep(60)
            def force_flush(self, timeout=30.0):
                return True
            def shutdown(self):
                time.sleep(60)
        tracing.configure(exporter=Hanging(), shutdown_timeout=1.0, schedule_delay=0.01)
        with tracing.get_tracer("x").span("s"):
            pass
        time.sleep(0.1)
        print("leaving")
    """)
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=50)
    assert out.stdout.strip() == "leaving"
    assert time.monotonic() - started < 30
    assert out.returncode == 0


def test_spans_still_queued_at_exit_are_exported(tmp_path: Any) -> None:
    path = tmp_path / "spans.jsonl"
    code = textwrap.dedent(f"""
        import tracing_api as tracing
        tracing.configure(exporter="jsonl", path={str(path)!r}, schedule_delay=60)
        for i in range(5):
            with tracing.get_tracer("x").span(f"s{{i}}"):
                pass
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert len(path.read_text().splitlines()) == 5


def test_enabled_tells_whether_a_pipeline_is_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    assert tracing.enabled() is False  # the root conftest starts every test unconfigured
    tracing.configure(exporter="memory", sampler=tracing.sampling.always_off())
    assert tracing.enabled() is True  # configured, even though every span is sampled out
    monkeypatch.setenv("TRACING_DISABLED", "true")
    tracing.configure(exporter="memory")
    assert tracing.enabled() is False
