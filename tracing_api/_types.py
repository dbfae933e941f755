"""The value types every layer shares: span kinds, status, trace state, span context, events, links.

All of them are immutable, so a record handed to an exporter can never change under it.
"""

from __future__ import annotations

import enum
from collections import namedtuple
from collections.abc import Mapping
from functools import cache
from types import MappingProxyType

# ``typing`` costs more to import than all of this package's eager modules together, so those
# modules use it for type checkers only; records are ``collections.namedtuple`` at run time and
# ``typing.NamedTuple`` to mypy (configured with ``always_true = TYPE_CHECKING``).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, Iterator, NamedTuple, Optional, Sequence, Tuple, Union

    AttributeValue = Union[
        str, bool, int, float, Sequence[str], Sequence[bool], Sequence[int], Sequence[float]
    ]
    """What an attribute may hold: a scalar, or a homogeneous sequence of one scalar type."""

    Attributes = Mapping[str, AttributeValue]
    """A read-only mapping of attribute names to values."""


class SpanKind(enum.IntEnum):
    """The role of a span in a request (numbered as in OTLP)."""

    INTERNAL = 1
    SERVER = 2
    CLIENT = 3
    PRODUCER = 4
    CONSUMER = 5


class StatusCode(enum.IntEnum):
    """A span's outcome: UNSET unless the code says otherwise (numbered as in OTLP)."""

    UNSET = 0
    OK = 1
    ERROR = 2


if TYPE_CHECKING:

    class _StatusFields(NamedTuple):
        code: StatusCode = StatusCode.UNSET
        description: Optional[str] = None

    class _EventFields(NamedTuple):
        name: str
        timestamp: int
        attributes: Attributes
        dropped_attributes: int = 0

    class _LinkFields(NamedTuple):
        context: SpanContext
        attributes: Attributes
        dropped_attributes: int = 0

else:
    _StatusFields = namedtuple("Status", "code description", defaults=(StatusCode.UNSET, None))
    _EventFields = namedtuple("Event", "name timestamp attributes dropped_attributes", defaults=(0,))
    _LinkFields = namedtuple("Link", "context attributes dropped_attributes", defaults=(0,))


class Status(_StatusFields):
    """A status code and, for ERROR only, a description."""

    __slots__ = ()


UNSET_STATUS = Status()

TRACESTATE_MAX_MEMBERS = 32


@cache
def _tracestate_grammar() -> Tuple[Any, Any]:
    import re  # compiled on first use: importing re costs more than the rest of this module

    # W3C Trace Context (editor's draft grammar, a superset of Level 1): see tracing_api.w3c.
    return (
        re.compile(r"[a-z0-9][_0-9a-z\-*/@]{0,255}\Z"),
        re.compile(r"[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]\Z"),
    )


class TraceState(Mapping[str, str]):
    """W3C ``tracestate``: vendor entries in order, most recently updated first. Immutable.

    ``set`` and ``delete`` return a new trace state. Keys and values must follow the W3C grammar:
    ``set`` raises ``ValueError`` for a bad one; the constructor leaves bad entries out. A trace
    state read from a request (``from_header``) is parsed and checked when first used, so a
    service that only receives it pays nothing; an invalid one then reads as empty.
    """

    __slots__ = ("_entries", "_header", "_raw")

    def __init__(self, entries: Sequence[Tuple[str, str]] = ()) -> None:
        kept: Dict[str, str] = {}
        for key, value in entries:
            # The first occurrence of a key wins; an entry outside the grammar is left out, so
            # what is sent is always a valid header.
            if key not in kept and self.is_valid_key(key) and self.is_valid_value(value):
                kept[key] = value
        self._entries: Optional[Tuple[Tuple[str, str], ...]] = tuple(kept.items())[
            :TRACESTATE_MAX_MEMBERS
        ]
        self._header: Optional[str] = None
        self._raw: Optional[str] = None

    @classmethod
    def from_header(cls, header: str) -> TraceState:
        """The trace state a ``tracestate`` header holds (several headers joined with commas)."""
        state = cls.__new__(cls)
        state._entries = None
        state._header = None
        state._raw = header
        return state

    def _items(self) -> Tuple[Tuple[str, str], ...]:
        entries = self._entries
        if entries is None:
            from .w3c import tracestate_entries  # the grammar lives with the propagator

            parsed = tracestate_entries(self._raw or "")
            entries = self._entries = () if parsed is None else tuple(parsed)
        return entries

    @staticmethod
    def is_valid_key(key: str) -> bool:
        """Whether ``key`` follows the W3C tracestate key grammar."""
        return bool(_tracestate_grammar()[0].match(key))

    @staticmethod
    def is_valid_value(value: str) -> bool:
        """Whether ``value`` follows the W3C tracestate value grammar."""
        return bool(_tracestate_grammar()[1].match(value))

    def set(self, key: str, value: str) -> TraceState:
        """A trace state with ``key`` set to ``value`` and moved to the front."""
        if not (self.is_valid_key(key) and self.is_valid_value(value)):
            raise ValueError(f"invalid tracestate entry {key!r}={value!r}")
        rest = [(k, v) for k, v in self._items() if k != key]
        return TraceState([(key, value), *rest])

    def delete(self, key: str) -> TraceState:
        """A trace state without ``key``."""
        return TraceState([(k, v) for k, v in self._items() if k != key])

    def header(self) -> str:
        """The ``tracestate`` header value."""
        header = self._header
        if header is None:
            header = self._header = ",".join(f"{k}={v}" for k, v in self._items())
        return header

    def __getitem__(self, key: str) -> str:
        for k, v in self._items():
            if k == key:
                return v
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (k for k, _ in self._items())

    def __len__(self) -> int:
        return len(self._items())

    def __bool__(self) -> bool:
        return bool(self._items())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TraceState):
            return self._items() == other._items()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._items())

    def __repr__(self) -> str:
        return f"TraceState({list(self._items())!r})"


EMPTY_TRACE_STATE = TraceState()

_TRACE_ID_MAX = (1 << 128) - 1
_SPAN_ID_MAX = (1 << 64) - 1


if TYPE_CHECKING:

    class _SpanContextFields(NamedTuple):
        trace_id: int
        span_id: int
        trace_flags: int = 0
        trace_state: TraceState = EMPTY_TRACE_STATE
        is_remote: bool = False
        debug: bool = False
        deferred: bool = False

else:
    _SpanContextFields = namedtuple(
        "SpanContext", "trace_id span_id trace_flags trace_state is_remote debug deferred",
        defaults=(0, EMPTY_TRACE_STATE, False, False, False),
    )


class SpanContext(_SpanContextFields):
    """The part of a span that crosses process boundaries.

    ``trace_id`` is a 128-bit and ``span_id`` a 64-bit integer; ``trace_flags`` holds the W3C
    bits (0x01 sampled, 0x02 random trace id). ``debug`` (B3 ``d``, Jaeger 0x02) and
    ``deferred`` (B3/Jaeger ids sent without a sampling decision) keep what W3C cannot say, so
    a context read from one of those formats is written back unchanged.
    """

    __slots__ = ()

    @property
    def sampled(self) -> bool:
        """Whether the trace is recorded and exported (the W3C sampled flag)."""
        return bool(self.trace_flags & 0x01)

    @property
    def random(self) -> bool:
        """Whether the trace id is random (the W3C Level 2 random flag)."""
        return bool(self.trace_flags & 0x02)

    @property
    def is_valid(self) -> bool:
        """Whether both ids are non-zero and within their widths."""
        return 0 < self.trace_id <= _TRACE_ID_MAX and 0 < self.span_id <= _SPAN_ID_MAX

    @property
    def trace_id_hex(self) -> str:
        """The trace id as 32 lower-case hex digits."""
        return format(self.trace_id, "032x")

    @property
    def span_id_hex(self) -> str:
        """The span id as 16 lower-case hex digits."""
        return format(self.span_id, "016x")


INVALID_SPAN_CONTEXT = SpanContext(0, 0)


class Event(_EventFields):
    """Something that happened during a span, at ``timestamp`` (ns since the epoch)."""

    __slots__ = ()


class Link(_LinkFields):
    """A reference from a span to another span, possibly in another trace."""

    __slots__ = ()


EMPTY_ATTRIBUTES: Attributes = MappingProxyType({})


class ConfigurationError(ValueError):
    """A setting has a bad name or value. Raised by ``configure()``, never at span time."""
