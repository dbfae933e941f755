"""Finding exporters and propagators by name, through entry points, only when asked.

The groups are ``tracing_api.exporters`` and ``tracing_api.propagators``. Nothing is looked up at
import; ``configure()`` looks up what it is told to use and fails there, once, with the fix in the
message.
"""

from __future__ import annotations

from typing import Any, Dict, List

from ._types import ConfigurationError

EXPORTERS = "tracing_api.exporters"
PROPAGATORS = "tracing_api.propagators"

# Names our own plugin distributions provide, so a missing one can be named with its install.
_KNOWN: Dict[str, Dict[str, str]] = {
    EXPORTERS: {
        "stackdriver": "stackdriver",
        "cloud_trace": "stackdriver",
        "zipkin": "zipkin",
        "otlp": "otlp",
    },
    PROPAGATORS: {
        name: "propagation"
        for name in ("b3", "b3multi", "cloud_trace", "grpc_binary", "jaeger")
    },
}
_KIND = {EXPORTERS: "exporter", PROPAGATORS: "propagator"}


def _entry_points(group: str) -> List[Any]:
    from importlib.metadata import entry_points  # costs 13-18 ms: only when configuring

    found = entry_points()
    if hasattr(found, "select"):
        return list(found.select(group=group))
    return list(found.get(group, []))  # Python 3.9


def installed(group: str) -> List[str]:
    """The names installed in ``group``, sorted."""
    return sorted({ep.name for ep in _entry_points(group)})


def load(group: str, name: str) -> Any:
    """The object entry point ``name`` of ``group`` names; ``ConfigurationError`` if it cannot be had."""
    kind = _KIND[group]
    matches = [ep for ep in _entry_points(group) if ep.name == name]
    if not matches:
        extra = _KNOWN[group].get(name)
        if extra is not None:
            raise ConfigurationError(
                f'{kind} {name!r} is not installed: pip install "tracing-api[{extra}]"'
            )
        choices = ", ".join(installed(group)) or "none"
        raise ConfigurationError(f"no {kind} {name!r}; installed: {choices}")
    try:
        return matches[0].load()
    except Exception as exc:
        raise ConfigurationError(
            f"{kind} {name!r} failed to load ({matches[0].value}): {type(exc).__name__}: {exc}"
        ) from exc
