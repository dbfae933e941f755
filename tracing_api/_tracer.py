"""Tracers: ``tracer.span(...)`` as a context manager or a decorator, and ``start_span``.

Libraries call ``get_tracer(__name__)`` at import time; the tracer reads the active pipeline on
every span, so it follows a later ``configure()``. Until then every span is the shared no-op
``INVALID_SPAN`` and ``tracer.span(...)`` costs one small tuple.
"""

from __future__ import annotations

import functools

from ._span import INVALID_SPAN, Span, record_error
from ._types import SpanKind
from .context import _SPAN, CURRENT, _detach
from .export import InstrumentationScope

TYPE_CHECKING = False
if TYPE_CHECKING:
    from contextvars import Token
    from types import TracebackType
    from typing import (
        Any,
        AsyncGenerator,
        Callable,
        Dict,
        Generator,
        List,
        Mapping,
        Optional,
        Sequence,
        TypeVar,
    )

    from ._pipeline import Pipeline
    from ._span import AnySpan
    from ._types import Link
    from .context import Parent

    F = TypeVar("F", bound=Callable[..., Any])

# Code flags of generator, coroutine and async generator functions (as in ``inspect``, which
# costs too much to import for this).
_CO_GENERATOR = 0x20
_CO_COROUTINE = 0x80
_CO_ASYNC_GENERATOR = 0x200

_active: Optional[Pipeline] = None
_tuple_new = tuple.__new__
_new_object = object.__new__
_INTERNAL = SpanKind.INTERNAL


def install(pipeline: Optional[Pipeline]) -> Optional[Pipeline]:
    """Make ``pipeline`` the active one (None: nothing is traced); return the previous one."""
    global _active
    previous, _active = _active, pipeline
    return previous


def active() -> Optional[Pipeline]:
    """The active pipeline, or None."""
    return _active


class Tracer:
    """Starts spans on behalf of one instrumentation scope (a module or library)."""

    __slots__ = ("_plain_scopes", "scope")

    def __init__(self, name: str, version: Optional[str] = None) -> None:
        self.scope = InstrumentationScope(name, version)
        # No-op scopes of spans named without other arguments, made once per name: an
        # unconfigured ``with tracer.span("name"):`` then allocates nothing.
        self._plain_scopes: Dict[str, _NoopScope] = {}

    def span(
        self, name: str, kind: SpanKind = _INTERNAL,
        attributes: Optional[Mapping[str, object]] = None, *,
        links: Optional[Sequence[Link]] = None, parent: Parent = CURRENT,
        record_exception: bool = True,
    ) -> SpanScope:
        """A span for a ``with`` block (made current inside it) or, as a decorator, per call.

        The span starts when the block is entered (or the decorated function is called) and
        ends when it is left; an exception leaving it is recorded and sets the status to ERROR.
        Decorates plain and ``async`` functions, generators and async generators.
        """
        if _active is None:
            if (type(name) is str and attributes is None and kind is _INTERNAL and links is None
                    and parent is CURRENT and record_exception is True):
                scope = self._plain_scopes.get(name)
                if scope is None:
                    scope = self._plain_scope(name)
                return scope
            return _tuple_new(_NoopScope, (self, name, kind, attributes, links, parent, record_exception))
        active = _new_object(_ActiveScope)
        active._args = (self, name, kind, attributes, links, parent, record_exception)
        active._token = active._nested = None
        return active

    def _plain_scope(self, name: str) -> _NoopScope:
        scope = _tuple_new(_NoopScope, (self, name, _INTERNAL, None, None, CURRENT, True))
        if len(self._plain_scopes) < 1024:  # bounded: names may be dynamic
            self._plain_scopes[name] = scope
        return scope

    def start_span(
        self, name: str, kind: SpanKind = _INTERNAL,
        attributes: Optional[Mapping[str, object]] = None, *,
        links: Optional[Sequence[Link]] = None, parent: Parent = CURRENT,
        start_time: Optional[int] = None,
    ) -> AnySpan:
        """A started span that is not made current; end it with ``span.end()``.

        ``parent`` is a ``Context`` (from ``extract``), a span, a ``SpanContext``, None for a
        new trace, or by default the current span.
        """
        pipeline = _active
        if pipeline is None:
            return INVALID_SPAN
        return pipeline.start(self.scope, name, kind, attributes, links, parent, start_time)

    def __repr__(self) -> str:
        return f"Tracer({self.scope.name!r})"


def get_tracer(name: str, version: Optional[str] = None) -> Tracer:
    """A tracer for ``name`` (usually ``__name__``); cheap, and safe to call at import time."""
    return Tracer(name, version)


class _Decorates:
    """What both scopes share: used as a decorator, they open a fresh span per call."""

    __slots__ = ()

    def _arguments(self) -> tuple[Any, ...]:
        raise NotImplementedError

    def __enter__(self) -> AnySpan:
        raise NotImplementedError

    def __exit__(
        self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        raise NotImplementedError

    def __call__(self, fn: F) -> F:
        arguments = self._arguments()
        tracer: Tracer = arguments[0]
        name, kind, attributes, links, parent, record = arguments[1:]

        def scope() -> SpanScope:
            return tracer.span(
                name, kind, attributes, links=links, parent=parent, record_exception=record
            )

        def start() -> AnySpan:
            return tracer.start_span(name, kind, attributes, links=links, parent=parent)

        code = getattr(getattr(fn, "__func__", fn), "__code__", None)
        flags = code.co_flags if code is not None else 0
        if flags & _CO_ASYNC_GENERATOR:
            return _wrap_async_generator(fn, start, record)  # type: ignore[return-value]
        if flags & _CO_GENERATOR:
            return _wrap_generator(fn, start, record)  # type: ignore[return-value]
        if flags & _CO_COROUTINE:

            @functools.wraps(fn)
            async def traced_coroutine(*args: Any, **kwargs: Any) -> Any:
                with scope():
                    return await fn(*args, **kwargs)

            return traced_coroutine  # type: ignore[return-value]

        @functools.wraps(fn)
        def traced(*args: Any, **kwargs: Any) -> Any:
            with scope():
                return fn(*args, **kwargs)

        return traced  # type: ignore[return-value]


class _NoopScope(tuple, _Decorates):  # type: ignore[type-arg]
    """The scope when nothing is configured: a tuple of the arguments, for decorator use."""

    __slots__ = ()

    def _arguments(self) -> tuple[Any, ...]:
        return tuple(self)

    def __enter__(self) -> AnySpan:
        return INVALID_SPAN

    def __exit__(
        self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        return None


class _ActiveScope(_Decorates):
    """The scope when a pipeline is configured (made without ``__init__``: see ``Tracer.span``)."""

    __slots__ = ("_args", "_nested", "_span", "_token")
    _args: tuple[Any, ...]
    _nested: Optional[List[_ActiveScope]]
    _token: Optional[Token[AnySpan]]

    def _arguments(self) -> tuple[Any, ...]:
        return self._args

    def __enter__(self) -> AnySpan:
        if self._token is not None:  # entered again before it was left: a span per entry
            inner = _new_object(_ActiveScope)
            inner._args = self._args
            inner._token = inner._nested = None
            if self._nested is None:
                self._nested = []
            self._nested.append(inner)
            return inner.__enter__()
        tracer, name, kind, attributes, links, parent, _ = self._args
        pipeline = _active
        if pipeline is None:
            span: AnySpan = INVALID_SPAN
        else:
            span = pipeline.start(tracer.scope, name, kind, attributes, links, parent, None)
        self._span = span
        self._token = _SPAN.set(span)
        return span

    def __exit__(
        self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if self._nested:  # the latest entry is left first
            self._nested.pop().__exit__(exc_type, exc, tb)
            return
        span = self._span
        token = self._token
        self._token = None
        try:
            _SPAN.reset(token)  # type: ignore[arg-type]
        except (ValueError, RuntimeError):  # left from another context: see context._detach
            _detach(_SPAN, token, span)  # type: ignore[arg-type]
        if type(span) is Span:
            if exc is not None and self._args[6]:
                record_error(span, exc)
            span.end()


SpanScope = _Decorates
"""What ``Tracer.span`` returns: a context manager yielding the span, and a decorator."""


def _wrap_generator(
    fn: Callable[..., Generator[Any, Any, Any]], start: Callable[[], AnySpan], record: bool
) -> Callable[..., Generator[Any, Any, Any]]:
    @functools.wraps(fn)
    def traced_generator(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        # The span starts at the first next(); it is current only while the generator's own
        # code runs, never in the consumer between items.
        span = start()
        if span is INVALID_SPAN:  # nothing configured: leave the context as it is
            return (yield from fn(*args, **kwargs))
        gen = fn(*args, **kwargs)
        method: Callable[[Any], Any] = gen.send
        arg: Any = None
        try:
            while True:
                token = _SPAN.set(span)
                try:
                    value = method(arg)
                except StopIteration as stop:
                    return stop.value
                finally:
                    _detach(_SPAN, token, span)
                try:
                    arg = yield value
                    method = gen.send
                except GeneratorExit:
                    token = _SPAN.set(span)
                    try:
                        gen.close()
                    finally:
                        _detach(_SPAN, token, span)
                    raise
                except BaseException as exc:
                    method, arg = gen.throw, exc
        except BaseException as exc:
            if record:
                record_error(span, exc)
            raise
        finally:
            span.end()

    return traced_generator


def _wrap_async_generator(
    fn: Callable[..., AsyncGenerator[Any, Any]], start: Callable[[], AnySpan], record: bool
) -> Callable[..., AsyncGenerator[Any, Any]]:
    @functools.wraps(fn)
    async def traced_async_generator(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        span = start()
        active = span is not INVALID_SPAN  # nothing configured: leave the context as it is
        agen = fn(*args, **kwargs)
        method: Callable[[Any], Any] = agen.asend
        arg: Any = None
        try:
            while True:
                token = _SPAN.set(span) if active else None
                try:
                    value = await method(arg)
                except StopAsyncIteration:
                    return
                finally:
                    if token is not None:
                        _detach(_SPAN, token, span)
                try:
                    arg = yield value
                    method = agen.asend
                except GeneratorExit:
                    token = _SPAN.set(span) if active else None
                    try:
                        await agen.aclose()
                    finally:
                        if token is not None:
                            _detach(_SPAN, token, span)
                    raise
                except BaseException as exc:
                    method, arg = agen.athrow, exc
        except BaseException as exc:
            if record:
                record_error(span, exc)
            raise
        finally:
            span.end()

    return traced_async_generator
