"""Samplers decide, when a span starts, whether its trace is recorded and exported.

Each is a value made by a constructor named for what it returns::

    tracing.configure(sampler=sampling.parent_based(sampling.ratio(0.25)))

A sampler is any object with ``should_sample`` (``Sampler`` is a ``typing.Protocol``). It runs on
the application's thread for every span started, so it must be cheap and must not raise.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Dict, Mapping, Optional, Protocol, runtime_checkable

from ._types import ConfigurationError, SpanContext, SpanKind

_LOW_64 = (1 << 64) - 1


@runtime_checkable
class Sampler(Protocol):
    """Decides whether a new span is sampled.

    ``parent`` is the parent's context, or None for a root span; a remote parent may carry only a
    sampling decision (B3 ``b3: 0``: invalid ids, ``is_remote``) or none (``deferred``).
    """

    def should_sample(
        self, parent: Optional[SpanContext], trace_id: int, name: str, kind: SpanKind,
        attributes: Optional[Mapping[str, object]],
    ) -> bool:
        """True to record and export the span."""


class _Constant:
    __slots__ = ("_decision",)

    def __init__(self, decision: bool) -> None:
        self._decision = decision

    def should_sample(
        self, parent: Optional[SpanContext], trace_id: int, name: str, kind: SpanKind,
        attributes: Optional[Mapping[str, object]],
    ) -> bool:
        return self._decision

    def __repr__(self) -> str:
        return "always_on()" if self._decision else "always_off()"


_ALWAYS_ON = _Constant(True)
_ALWAYS_OFF = _Constant(False)


def always_on() -> Sampler:
    """Samples every span."""
    return _ALWAYS_ON


def always_off() -> Sampler:
    """Samples no span."""
    return _ALWAYS_OFF


class _Ratio:
    __slots__ = ("_bound", "rate")

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._bound = round(rate * (1 << 64))

    def should_sample(
        self, parent: Optional[SpanContext], trace_id: int, name: str, kind: SpanKind,
        attributes: Optional[Mapping[str, object]],
    ) -> bool:
        # The rule OpenTelemetry's TraceIdRatioBased uses: the low 64 bits of the trace id
        # against rate * 2**64, so every service (ours or theirs) decides the same.
        return trace_id & _LOW_64 < self._bound

    def __repr__(self) -> str:
        return f"ratio({self.rate})"


def ratio(rate: float) -> Sampler:
    """Samples a share ``rate`` (0 to 1) of traces, decided from the trace id alone."""
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate <= 1.0:
        raise ConfigurationError(f"sampler ratio must be a number from 0 to 1, not {rate!r}")
    return _Ratio(float(rate))


class _ParentBased:
    __slots__ = ("_local_not_sampled", "_local_sampled", "_remote_not_sampled",
                 "_remote_sampled", "root")

    def __init__(self, root: Sampler, remote_sampled: Sampler, remote_not_sampled: Sampler,
                 local_sampled: Sampler, local_not_sampled: Sampler) -> None:
        self.root = root
        self._remote_sampled = remote_sampled
        self._remote_not_sampled = remote_not_sampled
        self._local_sampled = local_sampled
        self._local_not_sampled = local_not_sampled

    def should_sample(
        self, parent: Optional[SpanContext], trace_id: int, name: str, kind: SpanKind,
        attributes: Optional[Mapping[str, object]],
    ) -> bool:
        if parent is None or parent.deferred:
            return self.root.should_sample(parent, trace_id, name, kind, attributes)
        if parent.debug:
            return True
        if parent.is_remote:
            chosen = self._remote_sampled if parent.trace_flags & 1 else self._remote_not_sampled
        else:
            chosen = self._local_sampled if parent.trace_flags & 1 else self._local_not_sampled
        return chosen.should_sample(parent, trace_id, name, kind, attributes)

    def __repr__(self) -> str:
        return f"parent_based({self.root!r})"


def parent_based(
    root: Sampler,
    *,
    remote_sampled: Optional[Sampler] = None,
    remote_not_sampled: Optional[Sampler] = None,
    local_sampled: Optional[Sampler] = None,
    local_not_sampled: Optional[Sampler] = None,
) -> Sampler:
    """Follows the parent's decision; asks ``root`` for root spans and deferred parents.

    A debug parent (B3 ``d``, Jaeger debug) is always sampled.
    """
    if not isinstance(root, Sampler):  # None too: it would sample nothing, silently
        raise ConfigurationError(f"parent_based() needs a root sampler, not {root!r}")
    for value in (remote_sampled, remote_not_sampled, local_sampled, local_not_sampled):
        if value is not None and not isinstance(value, Sampler):
            raise ConfigurationError(f"parent_based() takes samplers, not {value!r}")
    return _ParentBased(
        root,
        remote_sampled or _ALWAYS_ON,
        remote_not_sampled or _ALWAYS_OFF,
        local_sampled or _ALWAYS_ON,
        local_not_sampled or _ALWAYS_OFF,
    )


class _RateLimited:
    __slots__ = ("_capacity", "_clock", "_last", "_lock", "_tokens", "per_second")

    def __init__(self, per_second: float, clock: Callable[[], float]) -> None:
        self.per_second = per_second
        self._capacity = max(1.0, per_second)
        self._tokens = self._capacity
        self._clock = clock
        self._last = clock()
        self._lock = threading.Lock()

    def should_sample(
        self, parent: Optional[SpanContext], trace_id: int, name: str, kind: SpanKind,
        attributes: Optional[Mapping[str, object]],
    ) -> bool:
        # Traces, not spans: a span with a parent's decision follows it (so traces stay whole);
        # only a new trace, or a parent that left the decision to us, takes a token.
        if parent is not None and not parent.deferred:
            return bool(parent.debug or parent.trace_flags & 0x01)
        with self._lock:
            now = self._clock()
            self._tokens = min(self._capacity, self._tokens + (now - self._last) * self.per_second)
            self._last = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False

    def __repr__(self) -> str:
        return f"rate_limited({self.per_second})"


def follows_parent_else_samples(sampler: Sampler) -> bool:
    """Whether ``sampler`` is ``parent_based(always_on())`` with its default delegates (the default
    sampler), whose decision the pipeline makes inline on every span's path.
    """
    return (
        isinstance(sampler, _ParentBased) and sampler.root is _ALWAYS_ON
        and sampler._remote_sampled is _ALWAYS_ON and sampler._local_sampled is _ALWAYS_ON
        and sampler._remote_not_sampled is _ALWAYS_OFF and sampler._local_not_sampled is _ALWAYS_OFF
    )


def constant_decision(sampler: Sampler) -> Optional[bool]:
    """True for ``always_on()``, False for ``always_off()``, else None: the pipeline skips the
    call for a decision known in advance.
    """
    return sampler._decision if isinstance(sampler, _Constant) else None


def rate_limited(per_second: float, *, clock: Callable[[], float] = time.monotonic) -> Sampler:
    """Samples at most ``per_second`` traces per second (a token bucket, bursts of one second).

    A span whose parent (local or remote) carries a decision follows it, so traces stay whole:
    only new traces, and remote parents that defer the decision (B3 without a sampling state),
    take a token.
    """
    if isinstance(per_second, bool) or not isinstance(per_second, (int, float)) or not (
        per_second > 0 and per_second < float("inf")
    ):
        raise ConfigurationError(
            f"rate_limited() needs a positive number of traces per second, not {per_second!r}"
        )
    return _RateLimited(float(per_second), clock)


def _number(name: str, arg: Optional[str], default: float) -> float:
    if arg is None or arg.strip() == "":
        return default
    try:
        return float(arg)
    except ValueError:
        raise ConfigurationError(f"sampler {name!r} takes a number as its argument, not {arg!r}") from None


_BY_NAME: Dict[str, Callable[[Optional[str]], Sampler]] = {
    "always_on": lambda arg: always_on(),
    "always_off": lambda arg: always_off(),
    "ratio": lambda arg: ratio(_number("ratio", arg, 1.0)),
    "rate_limited": lambda arg: rate_limited(_number("rate_limited", arg, 100.0)),
    "parent_based_always_on": lambda arg: parent_based(always_on()),
    "parent_based_always_off": lambda arg: parent_based(always_off()),
    "parent_based_ratio": lambda arg: parent_based(ratio(_number("ratio", arg, 1.0))),
    "parent_based_rate_limited": lambda arg: parent_based(
        rate_limited(_number("rate_limited", arg, 100.0))
    ),
}
# The names OpenTelemetry's OTEL_TRACES_SAMPLER uses.
_ALIASES = {
    "traceidratio": "ratio",
    "parentbased_always_on": "parent_based_always_on",
    "parentbased_always_off": "parent_based_always_off",
    "parentbased_traceidratio": "parent_based_ratio",
}


def from_name(name: str, arg: Optional[str] = None) -> Sampler:
    """The sampler a setting names (``TRACING_SAMPLER``/``OTEL_TRACES_SAMPLER`` and its argument)."""
    key = name.strip().lower()
    make = _BY_NAME.get(_ALIASES.get(key, key))
    if make is None:
        raise ConfigurationError(
            f"unknown sampler {name!r}; choose one of: {', '.join(sorted(_BY_NAME))}"
            f" (or OpenTelemetry's {', '.join(sorted(_ALIASES))})"
        )
    return make(arg)


__all__ = [
    "Sampler",
    "always_off",
    "always_on",
    "from_name",
    "parent_based",
    "rate_limited",
    "ratio",
]
