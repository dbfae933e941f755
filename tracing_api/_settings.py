"""Reading settings: from the arguments first, then ``TRACING_*`` environment variables, then
their ``OTEL_*`` equivalents; and the two settings built from many variables (the resource and
the span limits). Every bad value raises one ``ConfigurationError`` naming where it came from.
"""

from __future__ import annotations

import math
import os
import threading
from types import MappingProxyType
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from ._span import Limits
from ._types import ConfigurationError
from ._version import __version__


def env(*names: str) -> Optional[Tuple[str, str]]:
    """The first of the environment variables ``names`` set to something, and its value."""
    for name in names:
        value = os.environ.get(name)
        if value is not None and value.strip() != "":
            return name, value.strip()
    return None


def setting(arg: Any, arg_name: str, *env_names: str) -> Tuple[Any, str]:
    """The value of a setting and where it came from (for error messages)."""
    if arg is not None:
        return arg, f"configure({arg_name}=...)"
    found = env(*env_names)
    if found is None:
        return None, arg_name
    return found[1], found[0]


def number(arg: Any, arg_name: str, env_names: Sequence[str], default: float, *,
           integer: bool = True, scale: float = 1.0, minimum: float = 0) -> Any:
    """A numeric setting (see ``setting``), checked; ``default`` when it is not set."""
    value, source = setting(arg, arg_name, *env_names)
    if value is None:
        return default
    try:
        parsed = float(value) if not isinstance(value, (int, float)) else value
        if isinstance(value, bool) or not math.isfinite(parsed) or parsed < minimum:
            raise ValueError
        if integer and float(parsed) != int(parsed):
            raise ValueError
        result = int(parsed) if integer else float(parsed) * scale
        # Timeouts and delays end up in threading waits, which refuse larger values.
        if not integer and result > threading.TIMEOUT_MAX:
            raise ValueError
        return result
    except (TypeError, ValueError, OverflowError):
        kind = "a whole number" if integer else "a finite number"
        raise ConfigurationError(f"{source}: expected {kind} >= {minimum}, got {value!r}") from None


def resource(service_name: Any, given: Optional[Mapping[str, Any]]) -> Mapping[str, object]:
    """The resource attributes: defaults, the environment, ``given``, then ``service_name``."""
    attributes: Dict[str, object] = {
        "service.name": "unknown_service:python",
        "telemetry.sdk.name": "tracing-api",
        "telemetry.sdk.language": "python",
        "telemetry.sdk.version": __version__,
    }
    from urllib.parse import unquote

    for name in ("OTEL_RESOURCE_ATTRIBUTES", "TRACING_RESOURCE_ATTRIBUTES"):
        raw = os.environ.get(name, "")
        for member in raw.split(","):
            key, sep, value = member.partition("=")
            if not sep or not key.strip():
                if member.strip():
                    raise ConfigurationError(f"{name}: expected key=value pairs, got {member!r}")
                continue
            attributes[key.strip()] = unquote(value.strip())
    env_name = env("TRACING_SERVICE_NAME", "OTEL_SERVICE_NAME")
    if env_name:
        attributes["service.name"] = env_name[1]
    if given:
        if not isinstance(given, Mapping):
            raise ConfigurationError(
                f"configure(resource=...): expected a mapping of attribute names to values, "
                f"got {given!r}"
            )
        from ._attributes import INVALID_VALUE, clean_value

        for key, value in given.items():
            cleaned = clean_value(value, None)
            if type(key) is not str or not key or cleaned is INVALID_VALUE:
                raise ConfigurationError(
                    f"configure(resource=...): {key!r}: {value!r} is not an attribute value "
                    "(str, bool, int, float, or a sequence of one of them)"
                )
            attributes[key] = cleaned
    if service_name is not None:
        if not isinstance(service_name, str) or not service_name:
            raise ConfigurationError(f"configure(service_name=...): expected a name, got {service_name!r}")
        attributes["service.name"] = service_name
    return MappingProxyType(attributes)


def limits(limits: Optional[Limits]) -> Limits:
    """``limits`` checked, or the limits the environment sets (128 of each by default)."""
    if limits is not None:
        if not isinstance(limits, Limits):
            raise ConfigurationError(f"configure(limits=...): expected tracing_api.Limits, got {limits!r}")
        for field, value in zip(limits._fields, limits):
            if field == "value_length" and value is None:
                continue
            if type(value) is not int or value < 0:
                raise ConfigurationError(
                    f"configure(limits=...): {field} must be a whole number >= 0"
                    f"{' or None' if field == 'value_length' else ''}, got {value!r}"
                )
        return limits

    def count(what: str, *otel: str) -> int:
        names = [f"TRACING_{what}_LIMIT", *[f"OTEL_{o}_LIMIT" for o in otel]]
        return int(number(None, names[0], names, 128))

    length_names = ["TRACING_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
                    "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"]
    length = number(None, length_names[0], length_names, -1, minimum=0) if env(*length_names) else None
    return Limits(
        attributes=count("SPAN_ATTRIBUTE_COUNT", "SPAN_ATTRIBUTE_COUNT", "ATTRIBUTE_COUNT"),
        events=count("SPAN_EVENT_COUNT", "SPAN_EVENT_COUNT"),
        links=count("SPAN_LINK_COUNT", "SPAN_LINK_COUNT"),
        event_attributes=count("EVENT_ATTRIBUTE_COUNT", "EVENT_ATTRIBUTE_COUNT"),
        link_attributes=count("LINK_ATTRIBUTE_COUNT", "LINK_ATTRIBUTE_COUNT"),
        value_length=length,
    )
