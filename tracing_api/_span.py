"""Spans: the recording span, the non-recording span, and the shared no-op constant.

A recording span exists only for a sampled span of a configured pipeline. Everything else is a
``NonRecordingSpan``: it carries a context for propagation and ignores every write. Nothing here
raises into the caller: bad attribute values are dropped and counted.
"""

from __future__ import annotations

from collections import namedtuple
from time import time_ns
from types import TracebackType

from ._attributes import INVALID_VALUE, _clean_other, as_text, clean_attributes
from ._types import (
    EMPTY_ATTRIBUTES,
    INVALID_SPAN_CONTEXT,
    Event,
    Link,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
)
from .export import InstrumentationScope, SpanData

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence, Union

    from ._pipeline import Pipeline
    from ._types import AttributeValue

    class _LimitsFields(NamedTuple):
        attributes: int = 128
        events: int = 128
        links: int = 128
        event_attributes: int = 128
        link_attributes: int = 128
        value_length: Optional[int] = None

else:
    _LimitsFields = namedtuple(
        "Limits", "attributes events links event_attributes link_attributes value_length",
        defaults=(128, 128, 128, 128, 128, None),
    )

_tuple_new = tuple.__new__


class Limits(_LimitsFields):
    """Caps on what one span keeps; what goes over is dropped and counted on the span.

    ``attributes``, ``events`` and ``links`` per span, ``event_attributes`` and
    ``link_attributes`` per event and link (128 each by default), and ``value_length``: characters
    kept of a string value (None, the default, keeps them whole).
    """

    __slots__ = ()


class NonRecordingSpan:
    """A span that records nothing: it carries a context and ignores every write.

    ``INVALID_SPAN`` is the shared one with no context, returned when nothing is configured.
    """

    __slots__ = ("context",)

    def __init__(self, context: SpanContext) -> None:
        # Anything else would reach every span started under this one: none of them could start.
        self.context = context if isinstance(context, SpanContext) else INVALID_SPAN_CONTEXT

    @property
    def is_recording(self) -> bool:
        """Always False."""
        return False

    @property
    def name(self) -> str:
        """Always empty."""
        return ""

    def set_attribute(self, key: str, value: object) -> None:
        """Does nothing."""

    def set_attributes(self, attributes: Mapping[str, object]) -> None:
        """Does nothing."""

    def add_event(
        self, name: str, attributes: Optional[Mapping[str, object]] = None,
        timestamp: Optional[int] = None,
    ) -> None:
        """Does nothing."""

    def add_link(
        self, context: SpanContext, attributes: Optional[Mapping[str, object]] = None
    ) -> None:
        """Does nothing."""

    def set_status(self, code: Union[StatusCode, Status], description: Optional[str] = None) -> None:
        """Does nothing."""

    def record_exception(
        self, exception: BaseException, attributes: Optional[Mapping[str, object]] = None,
        escaped: bool = False,
    ) -> None:
        """Does nothing."""

    def update_name(self, name: str) -> None:
        """Does nothing."""

    def end(self, end_time: Optional[int] = None) -> None:
        """Does nothing."""

    def __enter__(self) -> NonRecordingSpan:
        return self

    def __exit__(
        self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        return None

    def __repr__(self) -> str:
        return f"NonRecordingSpan({self.context!r})"


INVALID_SPAN = NonRecordingSpan(INVALID_SPAN_CONTEXT)


class Span:
    """A recording span. Made by a tracer (see ``Tracer.span``); ended once (the first ``end``
    wins).

    Safe to share between threads: every write is a single dictionary or list operation, and
    writes after ``end`` are ignored.
    """

    __slots__ = (
        "_attributes", "_dropped_attributes", "_dropped_events", "_dropped_links", "_events",
        "_links", "_pipeline", "_scope", "context", "end_time", "kind", "name", "parent",
        "start_time", "status",
    )

    name: str
    context: SpanContext
    parent: Optional[SpanContext]
    kind: SpanKind
    start_time: int
    end_time: Optional[int]
    status: Status
    _pipeline: Pipeline
    _scope: InstrumentationScope
    _attributes: Optional[Dict[str, Any]]
    _events: Optional[List[Event]]
    _links: Optional[List[Link]]
    _dropped_attributes: int
    _dropped_events: int
    _dropped_links: int

    def _set_initial_attributes(self, attributes: Mapping[str, object]) -> None:
        limits = self._pipeline.limits
        cleaned, self._dropped_attributes = clean_attributes(
            attributes, limits.attributes, limits.value_length
        )
        self._attributes = cleaned or None  # created when first used

    def _add_links(self, links: Sequence[Any]) -> None:
        try:
            for link in links:
                if isinstance(link, SpanContext):  # a bare context is a link without attributes
                    self.add_link(link)
                elif isinstance(link, Link):
                    self.add_link(link.context, link.attributes)
                else:
                    self._dropped_links += 1
        except Exception:  # not iterable, or a hostile iterator: the links are dropped
            self._dropped_links += 1

    @property
    def is_recording(self) -> bool:
        """True until the span ends."""
        return self.end_time is None

    @property
    def attributes(self) -> Mapping[str, AttributeValue]:
        """The attributes set so far (read-only view)."""
        return self._attributes if self._attributes is not None else EMPTY_ATTRIBUTES

    def set_attribute(self, key: str, value: Any) -> None:
        """Set one attribute; an invalid key or value is dropped and counted."""
        if self.end_time is not None:
            return
        kind = type(value)
        if kind is str:
            max_length = self._pipeline.max_value_length
            if max_length is not None and len(value) > max_length:
                value = value[:max_length]
        elif kind is int:
            if not -0x8000_0000_0000_0000 <= value <= 0x7FFF_FFFF_FFFF_FFFF:  # OTLP's int64
                self._dropped_attributes += 1
                return
        elif kind is not float and kind is not bool:
            value = _clean_other(value, self._pipeline.max_value_length)
            if value is INVALID_VALUE:
                self._dropped_attributes += 1
                return
        attributes = self._attributes
        if attributes is None:
            attributes = self._attributes = {}
        if type(key) is str and key and (
            len(attributes) < self._pipeline.max_attributes or key in attributes
        ):
            attributes[key] = value
        elif type(key) is not str and isinstance(key, str):  # a str enum as the name: its text
            self.set_attribute(str.__str__(key), value)
        else:
            self._dropped_attributes += 1

    def set_attributes(self, attributes: Mapping[str, object]) -> None:
        """Set several attributes."""
        try:
            items = list(attributes.items())
        except Exception:
            self._dropped_attributes += 1
            return
        for item in items:
            try:
                key, value = item
            except Exception:  # items() gave something other than (key, value) pairs
                if self.end_time is None:
                    self._dropped_attributes += 1
                continue
            self.set_attribute(key, value)

    def add_event(
        self, name: str, attributes: Optional[Mapping[str, object]] = None,
        timestamp: Optional[int] = None,
    ) -> None:
        """Record that ``name`` happened now (or at ``timestamp``, ns since the epoch)."""
        if self.end_time is not None:
            return
        events = self._events
        if events is None:
            if self._pipeline.limits.events <= 0:
                self._dropped_events += 1
                return
            events = self._events = []
        elif len(events) >= self._pipeline.limits.events:
            self._dropped_events += 1
            return
        if attributes is not None:  # not its truth value: a pandas row's raises
            limits = self._pipeline.limits
            cleaned: Mapping[str, Any]
            cleaned, dropped = clean_attributes(
                attributes, limits.event_attributes, limits.value_length
            )
            cleaned = cleaned or EMPTY_ATTRIBUTES
        else:
            cleaned, dropped = EMPTY_ATTRIBUTES, 0
        events.append(_tuple_new(Event, (
            name if type(name) is str else as_text(name, "event"),
            time_ns() if timestamp is None else _timestamp(timestamp),
            cleaned,
            dropped,
        )))

    def add_link(
        self, context: SpanContext, attributes: Optional[Mapping[str, object]] = None
    ) -> None:
        """Link this span to ``context`` (a span in this or another trace)."""
        if self.end_time is not None or not isinstance(context, SpanContext):
            return
        limits = self._pipeline.limits
        links = self._links
        if links is None:
            if limits.links <= 0:
                self._dropped_links += 1
                return
            links = self._links = []
        elif len(links) >= limits.links:
            self._dropped_links += 1
            return
        cleaned, dropped = clean_attributes(attributes, limits.link_attributes, limits.value_length)
        links.append(Link(context, cleaned or EMPTY_ATTRIBUTES, dropped))

    def set_status(self, code: Union[StatusCode, Status], description: Optional[str] = None) -> None:
        """Set the outcome. OK is final; a description is kept only with ERROR."""
        if self.end_time is not None or self.status.code is StatusCode.OK:
            return
        if isinstance(code, Status):
            description = code.description
            code = code.code
        if code == StatusCode.ERROR:
            self.status = Status(
                StatusCode.ERROR,
                None if description is None else as_text(description, type(description).__name__),
            )
        elif code == StatusCode.OK:
            self.status = Status(StatusCode.OK)

    def record_exception(
        self, exception: BaseException, attributes: Optional[Mapping[str, object]] = None,
        escaped: bool = False,
    ) -> None:
        """Add an ``exception`` event with the semantic-convention attributes."""
        if self.end_time is not None or not isinstance(exception, BaseException):
            return
        import traceback  # only when there is an exception to record

        try:
            message = str(exception)
        except Exception:
            message = "<unprintable exception>"
        event: Dict[str, object] = {
            "exception.type": type(exception).__qualname__
            if type(exception).__module__ == "builtins"
            else f"{type(exception).__module__}.{type(exception).__qualname__}",
            "exception.message": message,
        }
        try:
            event["exception.stacktrace"] = "".join(
                traceback.format_exception(type(exception), exception, exception.__traceback__)
            )
        except Exception:  # a RecursionError near the limit, a hostile __str__ in the chain
            pass  # the event goes without a stacktrace
        event["exception.escaped"] = escaped
        if attributes is not None:
            try:
                event.update(attributes)
            except Exception:  # not a mapping: the extra attributes are dropped
                pass
        self.add_event("exception", event)

    def update_name(self, name: str) -> None:
        """Rename the span (for example once the route is known)."""
        if self.end_time is None:
            self.name = as_text(name, self.name)

    def end(self, end_time: Optional[int] = None) -> None:
        """End the span and hand it to the pipeline. Later calls do nothing."""
        now = time_ns() if end_time is None else _timestamp(end_time)
        # No call stands between the test and the assignment, so two threads ending the
        # same span cannot both pass it under the GIL: the first end wins.
        if self.end_time is not None:
            return
        self.end_time = now
        events = self._events
        links = self._links
        pipeline = self._pipeline
        pipeline.on_end(_tuple_new(SpanData, (
            self.name, self.context, self.parent, self.kind, self.start_time, now,
            self._attributes or EMPTY_ATTRIBUTES,
            () if events is None else tuple(events),
            () if links is None else tuple(links),
            self.status, pipeline.resource, self._scope,
            self._dropped_attributes, self._dropped_events, self._dropped_links,
        )))

    def __enter__(self) -> Span:
        return self

    def __exit__(
        self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if exc is None:
            self.end()
            return
        # The application's exception must go on unchanged, even if recording it or ending
        # the span raises (RecursionError near the recursion limit).
        try:
            record_error(self, exc)
        except Exception:
            pass
        try:
            self.end()
        except Exception:
            pass

    def __repr__(self) -> str:
        return f"Span({self.name!r}, {self.context!r})"


def _timestamp(value: object) -> int:
    """An explicit time (span start or end, event) as whole ns since the epoch; now when it is
    not a number or outside what the wire formats carry (an unsigned 64-bit count).

    A float (``time.time() * 1e9``, a common slip) is truncated: exporters write integers.
    """
    if type(value) is int and 0 <= value <= _MAX_TIME:
        return value
    try:
        converted: int = int(value)  # type: ignore[call-overload]
    except Exception:
        return time_ns()
    return converted if 0 <= converted <= _MAX_TIME else time_ns()


_MAX_TIME = (1 << 64) - 1


def record_error(span: Union[Span, NonRecordingSpan], exc: BaseException) -> None:
    """Mark ``span`` as failed by ``exc``, unless it is a generator closing normally."""
    if isinstance(exc, GeneratorExit) or not isinstance(span, Span):
        return
    # The status first: it takes less stack than the event, so near the recursion limit a
    # span whose event cannot be recorded still shows the error.
    if span.status.code is StatusCode.UNSET:
        try:
            description = f"{type(exc).__name__}: {exc}"
        except Exception:
            description = type(exc).__name__
        span.set_status(StatusCode.ERROR, description)
    span.record_exception(exc, escaped=True)


if TYPE_CHECKING:
    AnySpan = Union[Span, NonRecordingSpan]
