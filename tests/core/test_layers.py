"""Layering: the core imports only the standard library and never a plugin."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys, sysconfig
before = set(sys.modules)
import tracing_api as tracing
t = tracing.get_tracer("x")
with t.span("s"):
    pass
tracing.configure(exporter="memory", processor="simple")
with t.span("s"):
    pass
tracing.inject({})
tracing.extract({"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
stdlib = sysconfig.get_paths()["stdlib"]
for name in sorted(set(sys.modules) - before):
    module = sys.modules[name]
    path = getattr(module, "__file__", None) or ""
    if name.split(".")[0] != "tracing_api" and path and not path.startswith(stdlib):
        print(name)
"""


def test_core_pulls_in_only_the_standard_library() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == []


def test_core_never_imports_a_plugin() -> None:
    code = PROBE + "\nprint([m for m in sys.modules if m.startswith('tracing_api_')])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_importing_the_core_loads_no_configuration_machinery() -> None:
    code = ("import sys, tracing_api; print(sorted(m for m in sys.modules if m in "
            "('tracing_api._config', 'tracing_api._processors', 'threading', 'logging', "
            "'importlib.metadata', 'tracing_api.w3c', 'random', 're', 'typing')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]"
