"""Bad configuration across the plugins: one clear error at ``configure()``, naming the setting.

The core's own settings are covered in tests/core/test_config.py; here each installed exporter's
options, the propagator names, and plugins that fail to import. A plugin that cannot be
imported never breaks ``import tracing_api``, and a failed ``configure()`` leaves the running
pipeline as it was.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Dict

import pytest

import tracing_api as tracing
from tracing_api.testing import capture

tracer = tracing.get_tracer(__name__)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"exporter": "zipkin", "endpoint": "ftp://127.0.0.1/spans"}, r"exporter 'zipkin': endpoint"),
        ({"exporter": "zipkin", "endpoint": 9411}, r"exporter 'zipkin': endpoint"),
        ({"exporter": "zipkin", "compression": "brotli"}, r"exporter 'zipkin': compression.*gzip"),
        ({"exporter": "zipkin", "timeout": -1}, r"exporter 'zipkin': timeout"),
        ({"exporter": "zipkin", "timeout": "soon"}, r"exporter 'zipkin': timeout"),
        ({"exporter": "zipkin", "colour": "blue"}, r"exporter 'zipkin': .*colour"),
        ({"exporter": "otlp", "protocol": "grpc"}, r"exporter 'otlp': protocol.*http/protobuf"),
        ({"exporter": "otlp", "endpoint": "localhost:4318"}, r"exporter 'otlp': endpoint"),
        ({"exporter": "otlp", "compression": "zstd"}, r"exporter 'otlp': compression"),
        ({"exporter": "otlp", "timeout": 0}, r"exporter 'otlp': timeout"),
        ({"exporter": "stackdriver", "project_id": "p", "timeout": 0},
         r"exporter 'stackdriver': timeout"),
        ({"exporter": "stackdriver", "project_id": "p", "max_spans_per_request": 0},
         r"exporter 'stackdriver': max_spans_per_request"),
        ({"exporter": "stackdriver", "project_id": "p", "client": "not a client"},
         r"exporter 'stackdriver': client"),
        ({"exporter": "cloud_trace", "project_id": "p", "retry": 3}, r"exporter 'stackdriver': retry"),
        ({"propagators": "tracecontext,b3single"}, r"no propagator 'b3single'; installed: .*b3multi"),
        ({"propagators": ["b3", 42]}, r"propagators.*expected a propagator name or an object"),
    ],
)
def test_bad_plugin_option_raises_one_configuration_error_naming_it(
    kwargs: Dict[str, Any], message: str,
) -> None:
    with pytest.raises(tracing.ConfigurationError, match=message):
        tracing.configure(**kwargs)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TRACING_EXPORTER": "zipkin", "OTEL_EXPORTER_ZIPKIN_TIMEOUT": "ten"},
         r"OTEL_EXPORTER_ZIPKIN_TIMEOUT"),
        ({"TRACING_EXPORTER": "zipkin", "TRACING_ZIPKIN_ENDPOINT": "zipkin:9411"}, r"endpoint"),
        ({"TRACING_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_HEADERS": "novalue"}, r"OTLP headers"),
        ({"TRACING_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, r"protocol"),
        ({"TRACING_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TIMEOUT": "-5"},
         r"OTEL_EXPORTER_OTLP_TIMEOUT"),
        ({"OTEL_PROPAGATORS": "tracecontext,xray"}, r"OTEL_PROPAGATORS|no propagator 'xray'"),
    ],
)
def test_bad_plugin_setting_in_the_environment_raises_naming_it(
    monkeypatch: pytest.MonkeyPatch, env: Dict[str, str], message: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(tracing.ConfigurationError, match=message):
        tracing.configure()


def test_stackdriver_without_a_project_names_the_ways_to_give_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    for name in ("GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT", "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no gcloud default credentials either
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path))
    with pytest.raises(tracing.ConfigurationError, match=r"project"):
        tracing.configure(exporter="stackdriver")


def test_failed_configure_leaves_the_running_pipeline_in_place() -> None:
    with capture() as spans:
        with pytest.raises(tracing.ConfigurationError):
            tracing.configure(exporter="otlp", protocol="grpc")
        with tracer.span("still-traced"):
            pass
    assert spans.names() == ["still-traced"]


def _broken_plugin(root: Path, body: str) -> Path:
    """A distribution on ``root`` whose exporter and propagator entry points run ``body`` on import."""
    (root / "broken_tracing_plugin.py").write_text(body)
    info = root / "broken_tracing_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-tracing-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[tracing_api.exporters]\nbroken = broken_tracing_plugin:make\n\n"
        "[tracing_api.propagators]\nbroken = broken_tracing_plugin:Propagator\n")
    return root


@pytest.mark.parametrize("body", [
    "raise ImportError('needs libfoo.so')\n",
    "raise RuntimeError('crashes at import')\n",
    "import no_such_dependency_anywhere\n",
    "def make(: pass\n",  # a syntax error
])
def test_a_plugin_that_fails_to_import_breaks_configure_only_and_says_which(
    tmp_path: Path, body: str,
) -> None:
    root = _broken_plugin(tmp_path, body)
    code = textwrap.dedent("""
        import tracing_api as tracing
        with tracing.get_tracer("x").span("before"):
            pass
        for kwargs in ({"exporter": "broken"}, {"propagators": "tracecontext,broken"}):
            try:
                tracing.configure(**kwargs)
            except tracing.ConfigurationError as exc:
                print("error:", exc)
        tracing.configure(exporter="memory")
        print("still works")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("error: exporter 'broken' failed to load (broken_tracing_plugin:make)")
    assert lines[1].startswith("error: propagator 'broken' failed to load")
    assert lines[2] == "still works"
