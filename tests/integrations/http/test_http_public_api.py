"""The face of ``tracing_api_http``: what a star import gives, and the names loaded lazily."""

from __future__ import annotations

import subprocess
import sys
from typing import Any, List

import pytest
import tracing_api_http

LAZY = ["AsyncTracingTransport", "TracingAdapter", "TracingTransport", "traced_session"]


def _run(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter, so what it hides from ``sys.modules`` stays there."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_all_is_sorted_and_every_name_in_it_exists() -> None:
    assert tracing_api_http.__all__ == sorted(tracing_api_http.__all__)
    for name in tracing_api_http.__all__:
        assert getattr(tracing_api_http, name) is not None


def test_star_import_works_without_requests_and_httpx() -> None:
    result = _run(
        "import sys\n"
        "sys.modules['requests'] = None\n"  # None in sys.modules: import fails as if absent
        "sys.modules['httpx'] = None\n"
        "from tracing_api_http import *\n"
        "print(WSGIMiddleware.__name__, ASGIMiddleware.__name__, build_opener.__name__)\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["WSGIMiddleware", "ASGIMiddleware", "build_opener"]


def test_star_import_loads_neither_requests_nor_httpx() -> None:
    result = _run(
        "import sys\n"
        "from tracing_api_http import *\n"
        "print(sorted(m for m in ('requests', 'httpx') if m in sys.modules))\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_lazy_names_import_by_name_when_their_library_is_installed() -> None:
    from tracing_api_http import (
        AsyncTracingTransport,
        TracingAdapter,
        TracingTransport,
        traced_session,
    )

    found: List[Any] = [AsyncTracingTransport, TracingAdapter, TracingTransport, traced_session]
    assert [thing.__name__ for thing in found] == LAZY


def test_lazy_name_without_its_library_raises_import_error_naming_it() -> None:
    result = _run(
        "import sys\n"
        "sys.modules['httpx'] = None\n"
        "try:\n"
        "    from tracing_api_http import TracingTransport\n"
        "except ImportError as exc:\n"
        "    print('ImportError', 'httpx' in str(exc))\n"
    )
    assert result.stdout.split() == ["ImportError", "True"]


def test_unknown_name_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchThing"):
        tracing_api_http.NoSuchThing  # noqa: B018
