"""Retries with backoff inside a deadline, and the classification of failures: see ``delivery``."""

from __future__ import annotations

import datetime
import email.utils
import logging
import math
import os
import random
import threading
import time
from typing import Callable, Dict, NamedTuple, Optional, Sequence, Tuple

from ._types import ConfigurationError

_log = logging.getLogger("tracing_api.delivery")

RETRYABLE_HTTP_STATUSES = frozenset({429, 502, 503, 504})
"""HTTP statuses worth another attempt later (as the OTLP specification lists them)."""

RETRYABLE_GRPC_CODES = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED"})
"""gRPC status code names worth another attempt later; every other failure is permanent."""

MAX_RESPONSE_BYTES = 64 * 1024
"""How much of a response body ``post`` keeps: enough for an error message, bounded memory."""


class RetryPolicy(NamedTuple):
    """How long and how often to try again. Times are seconds.

    The n-th wait is ``min(initial_backoff * multiplier ** n, max_backoff)``, of which the
    ``jitter`` fraction is random (1.0, the default, is "full jitter": anywhere from zero to the
    whole backoff). A server's ``Retry-After`` lengthens a wait, never shortens it. No attempt
    starts after ``deadline`` seconds from the first, and no wait is begun that would end after
    it. ``max_attempts`` of 0 means as many as the deadline allows.
    """

    initial_backoff: float = 0.5
    max_backoff: float = 8.0
    multiplier: float = 2.0
    jitter: float = 1.0
    deadline: float = 10.0
    max_attempts: int = 0


DEFAULT_RETRY = RetryPolicy()
"""The policy exporters use unless told otherwise: waits from 0.5 s to 8 s, 10 s in all."""

NO_RETRY = RetryPolicy(max_attempts=1)
"""One attempt and no retries."""

_MAX_EXPONENT = 64
_MAX_WAIT = min(threading.TIMEOUT_MAX, 365 * 24 * 3600.0)  # threading waits refuse more


class Outcome(NamedTuple):
    """What one delivery attempt came to: success, or a failure that may or may not pass.

    ``retry_after`` is the server's requested wait in seconds, when it gave one.
    """

    ok: bool
    retryable: bool = False
    detail: str = ""
    retry_after: Optional[float] = None

    @classmethod
    def success(cls, detail: str = "") -> Outcome:
        """The backend took the data."""
        return cls(True, False, detail)

    @classmethod
    def retry(cls, detail: str, retry_after: Optional[float] = None) -> Outcome:
        """A failure that may pass: try again after a backoff (or ``retry_after`` seconds)."""
        return cls(False, True, detail, retry_after)

    @classmethod
    def permanent(cls, detail: str) -> Outcome:
        """A failure that will not pass by trying again (bad request, auth, too large)."""
        return cls(False, False, detail)


def http_outcome(status: int, detail: str = "", retry_after: Optional[float] = None) -> Outcome:
    """Classify an HTTP status: 2xx succeed; 0 (no response at all), 429, 502, 503 and 504 may
    pass; everything else (400, 401, 403, 404, 413, 500, redirects, ...) is permanent.
    """
    if 200 <= status < 300:
        return Outcome.success(f"HTTP {status}")
    text = f"HTTP {status}" if status else "no response"
    if detail:
        text = f"{text}: {detail}"
    if status == 0 or status in RETRYABLE_HTTP_STATUSES:
        return Outcome.retry(text, retry_after)
    return Outcome.permanent(text)


def grpc_outcome(code_name: str, detail: str = "") -> Outcome:
    """Classify a gRPC status by its code name (``"OK"``, ``"UNAVAILABLE"``, ...)."""
    if code_name == "OK":
        return Outcome.success()
    text = f"{code_name}: {detail}" if detail else code_name
    if code_name in RETRYABLE_GRPC_CODES:
        return Outcome.retry(text)
    return Outcome.permanent(text)


def parse_retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds or an HTTP date.

    Returns None for a missing or malformed value; a date in the past means zero.
    """
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():  # str.isdigit alone accepts "²"
        return float(min(int(text[:12]), 10**11))
    try:
        when: Optional[datetime.datetime] = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:  # Python 3.9 returns None for some malformed dates
        return None
    if when.tzinfo is None:  # asctime form ("Sun Nov  6 08:49:37 1994"): GMT all the same
        when = when.replace(tzinfo=datetime.timezone.utc)
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def env(*names: str) -> Optional[Tuple[str, str]]:
    """The first of the environment variables ``names`` that is set and not blank, as
    ``(name, stripped value)``; None when none is. Exporters read their settings with it.
    """
    for name in names:
        value = os.environ.get(name)
        if value is not None and value.strip():
            return name, value.strip()
    return None


def timeout_setting(value: Optional[float], option: str, env_names: Sequence[str],
                    default: float) -> float:
    """A timeout in seconds: ``value`` if given, else the first of ``env_names`` set (in
    milliseconds, as the ``OTEL_*_TIMEOUT`` variables are), else ``default``. A bad one raises
    ``ValueError`` naming it (``configure()`` reports it as a configuration error).
    """
    source, raw = option, value  # type: Tuple[str, object]
    if value is None:
        found = env(*env_names)
        if found is None:
            return default
        source, raw = found
    try:
        number = float(raw) if not isinstance(raw, bool) else -1.0  # type: ignore[arg-type]
        if value is None:
            number /= 1000.0
    except (TypeError, ValueError):
        number = -1.0
    if not number > 0 or number == float("inf"):
        unit = "seconds" if value is not None else "milliseconds"
        raise ValueError(f"{source}: expected a positive number of {unit}, got {raw!r}")
    return number


def retry_setting(retry: object, source: str) -> RetryPolicy:
    """``retry`` if it is a usable ``RetryPolicy`` (None means ``DEFAULT_RETRY``); otherwise a
    ``ConfigurationError`` naming ``source``. Times and the multiplier must be finite numbers
    of at least zero, ``max_attempts`` a whole number of at least zero.
    """
    if retry is None:
        return DEFAULT_RETRY
    if not isinstance(retry, RetryPolicy):
        raise ConfigurationError(
            f"{source}: expected a tracing_api.delivery.RetryPolicy (for example "
            f"RetryPolicy(deadline=2.0)) or None, got {retry!r}")
    for field in ("initial_backoff", "max_backoff", "multiplier", "jitter", "deadline"):
        value = getattr(retry, field)
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or not math.isfinite(value) or value < 0):
            raise ConfigurationError(
                f"{source}: {field}: expected a finite number >= 0, got {value!r}")
    attempts = retry.max_attempts
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 0:
        raise ConfigurationError(
            f"{source}: max_attempts: expected a whole number >= 0, got {attempts!r}")
    return retry


class Sender:
    """Runs one attempt again and again, by a retry policy, until it succeeds, fails for good,
    runs out of time, or ``close()`` is called.

    ``sleep`` waits between attempts; the default waits on an event that ``close()`` sets, so a
    shutdown interrupts any backoff at once. Tests pass their own (e.g. one that records the
    waits and returns at once). ``random`` returns a float in [0, 1) for the jitter.
    """

    def __init__(
        self, policy: RetryPolicy = DEFAULT_RETRY, *,
        sleep: Optional[Callable[[float], object]] = None,
        clock: Callable[[], float] = time.monotonic,
        random: Callable[[], float] = random.random,
    ) -> None:
        self.policy = policy
        self._stop = threading.Event()
        self._sleep = sleep if sleep is not None else self._stop.wait
        self._clock = clock
        self._random = random
        self._lock = threading.Lock()
        self._counts = {"attempts": 0, "retries": 0, "succeeded": 0, "failed": 0}

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
        return self._stop.is_set()

    def close(self) -> None:
        """Stop: interrupt any backoff wait now; a ``run`` in progress returns after its current
        attempt. Idempotent.
        """
        self._stop.set()

    def backoff(self, retry: int) -> float:
        """The wait before retry number ``retry`` (0 for the first), jitter applied."""
        policy = self.policy
        # multiplier ** retry overflows a float after ~1,000 retries of a long deadline; past
        # _MAX_EXPONENT doublings every sane policy sits at max_backoff anyway.
        try:
            base = policy.initial_backoff * policy.multiplier ** min(retry, _MAX_EXPONENT)
        except OverflowError:
            base = policy.max_backoff
        base = min(base, policy.max_backoff)
        if not base > 0:  # zero, negative or NaN
            return 0.0
        jitter = min(max(policy.jitter, 0.0), 1.0)
        return min(base * (1.0 - jitter * self._random()), _MAX_WAIT)

    def run(self, attempt: Callable[[float], Outcome]) -> Outcome:
        """Call ``attempt(remaining_seconds)`` until it succeeds or may not be retried; return
        the last outcome. Never raises: an exception from ``attempt`` is a permanent failure,
        and so is one from a policy, clock or sleep that cannot be used.
        """
        try:
            outcome = self._run(attempt)
        except Exception as exc:  # a policy of the wrong types, a clock that raises, ...
            outcome = Outcome.permanent(f"retry loop failed: {type(exc).__name__}: {exc}")
        with self._lock:
            self._counts["succeeded" if outcome.ok else "failed"] += 1
        return outcome

    def _run(self, attempt: Callable[[float], Outcome]) -> Outcome:
        policy = self.policy
        end = self._clock() + policy.deadline
        retry = 0
        while True:
            remaining = end - self._clock()
            if self._stop.is_set():
                return Outcome.permanent("closed")
            outcome = self._attempt(attempt, max(remaining, 0.001))
            if outcome.ok or not outcome.retryable or self._stop.is_set():
                return outcome
            if policy.max_attempts and retry + 1 >= policy.max_attempts:
                return outcome
            wait = self.backoff(retry)
            if outcome.retry_after is not None:
                # The server's wait is a floor, not a replacement: "Retry-After: 0" or a date
                # already past must not turn the backoff into a loop of back-to-back requests.
                wait = min(max(wait, outcome.retry_after), _MAX_WAIT)
            if not self._clock() + wait < end:
                return outcome  # the deadline comes first: give up now rather than wait for nothing
            self._sleep(wait)
            if self._stop.is_set():
                return outcome  # closed while waiting: report the failure that made us wait
            retry += 1
            with self._lock:
                self._counts["retries"] += 1

    def _attempt(self, attempt: Callable[[float], Outcome], remaining: float) -> Outcome:
        with self._lock:
            self._counts["attempts"] += 1
        try:
            outcome: object = attempt(remaining)
        except Exception as exc:  # an attempt should not raise; if it does, do not retry it
            return Outcome.permanent(f"{type(exc).__name__}: {exc}")
        if not isinstance(outcome, Outcome):
            return Outcome.permanent(f"attempt returned {outcome!r}, not an Outcome")
        return outcome

    def stats(self) -> Dict[str, int]:
        """Counts: ``attempts``, ``retries``, ``succeeded`` and ``failed`` runs."""
        with self._lock:
            return dict(self._counts)
