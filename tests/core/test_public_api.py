"""The face of the package: ``__all__`` is sorted, complete, resolvable and documented."""

from __future__ import annotations

import inspect

import tracing_api as tracing
from tracing_api import context, export, propagation, sampling, testing


def test_all_is_sorted() -> None:
    """In ruff's isort-style order: CONSTANTS, then Classes, then functions and modules."""

    def key(name: str) -> tuple[int, str]:
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    assert tracing.__all__ == sorted(tracing.__all__, key=key)


def test_every_exported_name_resolves() -> None:
    for name in tracing.__all__:
        assert getattr(tracing, name) is not None, name


def test_all_lists_every_public_name() -> None:
    public = {n for n in dir(tracing) if n.isidentifier() and not n.startswith("_")}
    public |= set(tracing._LAZY)
    public -= {"TYPE_CHECKING", "annotations"}
    submodules = {"context", "export", "propagation", "sampling", "testing", "w3c", "pytest_plugin",
                  "delivery", "logs"}
    assert public - submodules <= set(tracing.__all__)


def test_every_public_name_has_a_docstring() -> None:
    for module in (tracing, context, export, propagation, sampling, testing):
        for name in getattr(module, "__all__", []):
            value = getattr(module, name)
            if inspect.isclass(value) or inspect.isfunction(value):
                assert inspect.getdoc(value), f"{module.__name__}.{name} has no docstring"


def test_the_issue_contract_names_exist() -> None:
    for name in ("get_tracer", "use_span", "current_span", "configure", "stats", "shutdown",
                 "inject", "extract", "SpanKind", "StatusCode"):
        assert hasattr(tracing, name)
    assert callable(tracing.sampling.parent_based)
    assert callable(tracing.context.wrap)
