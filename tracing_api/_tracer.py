"""Tracers: ``tracer.span(...)`` as a context manager or a decorator, and ``start_span``.

Libraries call ``get_tracer(__name__)`` at import time; the tracer reads the active pipeline on
every span, so it follows a later ``configure()``. Until then every span is the shared no-op
``INVALID_SPAN`` and ``tracer.span(...)`` costs one small tuple.
"""

from __future__ import annotations

import functools
from _thread import allocate_lock as _allocate_lock
from contextvars import Token as _Token
from time import time_ns
from types import MethodType

from ._attributes import as_text
from ._span import INVALID_SPAN, NonRecordingSpan, Span, _timestamp, record_error
from ._types import EMPTY_TRACE_STATE, INVALID_SPAN_CONTEXT, UNSET_STATUS, SpanContext, SpanKind
from .context import _SPAN, CURRENT, _detach, parent_context
from .export import InstrumentationScope

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import TracebackType
    from typing import (
        Any,
        AsyncGenerator,
        Callable,
        Dict,
        Generator,
        Mapping,
        Optional,
        Sequence,
        TypeVar,
        Union,
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
_CO_ITERABLE_COROUTINE = 0x100  # a generator made awaitable by @types.coroutine
_CO_ASYNC_GENERATOR = 0x200

_active: Optional[Pipeline] = None
_tuple_new = tuple.__new__
_new_object = object.__new__
_INTERNAL = SpanKind.INTERNAL


def _load_getrandbits(bits: int) -> int:
    """``random.getrandbits``, imported on the first span (``random`` costs 1.5 ms to import,
    and importing the core must stay cheap); the module's generator is reseeded after fork."""
    global _getrandbits
    from random import getrandbits

    _getrandbits = getrandbits
    return getrandbits(bits)


_getrandbits: Callable[[int], int] = _load_getrandbits
_NO_PARENT = INVALID_SPAN_CONTEXT


def _as_kind(kind: Any) -> SpanKind:
    try:
        return SpanKind(kind)
    except (ValueError, TypeError):
        return SpanKind.INTERNAL


def install(pipeline: Optional[Pipeline]) -> Optional[Pipeline]:
    """Make ``pipeline`` the active one (None: nothing is traced); return the previous one."""
    global _active
    previous, _active = _active, pipeline
    return previous


def active() -> Optional[Pipeline]:
    """The active pipeline, or None."""
    return _active


def enabled() -> bool:
    """Whether tracing is configured (``configure()`` installed a pipeline that is not disabled).

    For integrations that would change how they hand a call on only to trace it: asks no
    sampler and starts no span. Spans may still be sampled out when this is True.
    """
    return _active is not None


class Tracer:
    """Starts spans on behalf of one instrumentation scope (a module or library)."""

    __slots__ = ("_plain_scopes", "scope")

    def __init__(self, name: str, version: Optional[str] = None) -> None:
        # Text, whatever was passed (a version given as 1.2, say): exporters write strings.
        self.scope = InstrumentationScope(
            as_text(name, "unknown"), None if version is None else as_text(version, "unknown"))
        # No-op scopes of spans named without other arguments, made once per name: an
        # unconfigured ``with tracer.span("name"):`` then allocates nothing.
        self._plain_scopes: Dict[str, _NoopScope] = {}

    # No keyword-only marker here, although only the first three are meant to be passed by
    # position: CPython 3.11 specializes calls of functions without keyword-only parameters,
    # which makes every ``tracer.span(...)`` about 25 ns cheaper.
    def span(
        self, name: str, kind: SpanKind = _INTERNAL,
        attributes: Optional[Mapping[str, object]] = None,
        links: Optional[Sequence[Link]] = None, parent: Parent = CURRENT,
        record_exception: bool = True, start_time: Optional[int] = None,
    ) -> SpanScope:
        """A span for a ``with`` block (made current inside it) or, as a decorator, per call.

        The span starts here (at ``start_time``, ns since the epoch, if given), ends when the
        block is left, and an exception leaving the block is recorded and sets the status to
        ERROR. As a decorator (of plain and ``async`` functions, generators, async generators
        and ``@types.coroutine`` generators) it starts a new span per call; the one made by this
        call is then never ended (the sampler has seen it). Entering the same object again
        starts a new span per entry.
        """
        pipeline = _active
        if pipeline is None:
            if (kind is _INTERNAL and attributes is None and links is None and parent is CURRENT
                    and record_exception is True):
                try:
                    return self._plain_scopes[name]
                except KeyError:
                    return self._plain_scope(name)
                except Exception:  # a name that cannot be a dict key, or whose hash/eq raises
                    pass
            return _tuple_new(_NoopScope, (self, name, kind, attributes, links, parent, record_exception))
        # Every span starts here, inline: this is the hot path of the library.
        parent_ctx = _SPAN.get().context if parent is CURRENT else parent_context(parent)
        span_parent: Optional[SpanContext] = None
        if parent_ctx is _NO_PARENT:  # a new trace, and nothing to read from a parent
            trace_id = _getrandbits(128) or 1
            flags = 0x02  # the whole id is random: the W3C random flag is set
            sampler_parent: Optional[SpanContext] = None
            trace_state = EMPTY_TRACE_STATE
            debug = deferred = False
            parent_flags = 0
        else:
            trace_id, parent_id, parent_flags, trace_state, is_remote, debug, deferred = parent_ctx
            if trace_id:
                flags = parent_flags & 0x02  # the random flag travels with the trace id
                sampler_parent = parent_ctx
                if parent_id:
                    span_parent = parent_ctx
            else:  # a new trace
                trace_id = _getrandbits(128) or 1
                flags = 0x02
                # A remote parent may hold only a sampling decision (B3 "b3: 0"): samplers see it.
                sampler_parent = parent_ctx if is_remote else None
        sampled = pipeline.constant
        if sampled is None:
            if pipeline.parent_based_always_on:
                sampled = sampler_parent is None or deferred or debug or parent_flags & 0x01 == 0x01
            else:
                try:
                    sampled = bool(
                        pipeline.should_sample(sampler_parent, trace_id, name, kind, attributes)
                    )
                except Exception:  # a sampler of the application's must not raise into it
                    sampled = False
        if type(kind) is not SpanKind:  # a wrong kind is the application's slip, not a crash
            kind = _as_kind(kind)
        span: Union[_ScopedSpan, _ScopedNonRecordingSpan]
        if sampled:
            # Made without ``__init__`` (one call less per span); every slot is set here.
            span = recording = _new_object(_ScopedSpan)
            recording.name = name if type(name) is str else as_text(name, "span")
            recording.context = _tuple_new(SpanContext, (
                trace_id, _getrandbits(64) or 1, flags | 0x01, trace_state, False, debug, False,
            ))
            recording.parent = span_parent
            recording.kind = kind
            recording._pipeline = pipeline
            recording._scope = self.scope
            recording.status = UNSET_STATUS
            recording.end_time = None
            recording._attributes = recording._events = recording._links = None
            recording._dropped_attributes = recording._dropped_events = 0
            recording._dropped_links = 0
            # "is not None", not truth values: a pandas row's raises, and nothing here may.
            if attributes is not None:
                recording._set_initial_attributes(attributes)
            if links is not None:
                recording._add_links(links)
            recording.start_time = time_ns() if start_time is None else _timestamp(start_time)
        else:
            # A sampled-out span is often a leaf whose context nobody reads: its ids are drawn
            # now, its SpanContext made when first read.
            span = _new_object(_ScopedNonRecordingSpan)
            span._fields = (trace_id, _getrandbits(64) or 1, flags, trace_state, False, debug, False)
            span._context = None
        span._args = (self, name, kind, attributes, links, parent, record_exception)
        span._token = None
        return span

    def _plain_scope(self, name: str) -> _NoopScope:
        scope = _tuple_new(_NoopScope, (self, name, _INTERNAL, None, None, CURRENT, True))
        if type(name) is str and len(self._plain_scopes) < 1024:  # bounded: names may be dynamic
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
        span = self.span(name, kind, attributes, links=links, parent=parent, start_time=start_time)
        if type(span) is _NoopScope:  # nothing configured (or no longer, since the call began)
            return INVALID_SPAN
        # Not a scope: ``with`` on it only ends it, as on any span (see _enter_again).
        span._token = _UNSCOPED  # type: ignore[attr-defined]
        return span  # type: ignore[return-value]

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
            traced_generator = _wrap_generator(fn, start, record)
            if flags & _CO_ITERABLE_COROUTINE:
                # A @types.coroutine generator: the wrapper is one too, so its result can be
                # awaited and still driven with ``yield from``, as the undecorated one.
                import types

                return types.coroutine(traced_generator)  # type: ignore[return-value]
            return traced_generator  # type: ignore[return-value]
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

    if TYPE_CHECKING:

        def __enter__(self) -> AnySpan: ...

        def __exit__(
            self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException],
            tb: Optional[TracebackType],
        ) -> None: ...

    else:
        # Built-in callables, so that an unconfigured ``with`` runs no Python frame of ours.
        # ``with`` calls them unbound: ``__enter__()`` is ``{INVALID_SPAN: INVALID_SPAN}.get(
        # INVALID_SPAN)``, the shared no-op span, and ``__exit__(type, value, tb)`` returns ""
        # (false: an exception goes on). ``ExitStack.enter_context`` passes the scope as well:
        # ``.get(INVALID_SPAN, scope)`` and ``"".format(scope, ...)`` give the same.
        __enter__ = MethodType({INVALID_SPAN: INVALID_SPAN}.get, INVALID_SPAN)
        __exit__ = "".format


_entries_lock = _allocate_lock()  # guards the entries of scopes entered more than once
_EXITED = "exited"  # a scoped span's ``_token`` once its block is left
_UNSCOPED = "unscoped"  # the ``_token`` of a span from ``start_span``: ``with`` does not make it current


class _ScopedSpan(Span, _Decorates):
    """A recording span made by ``Tracer.span``: a ``with`` block makes it current."""

    __slots__ = ("_args", "_token")
    _args: tuple[Any, ...]
    _token: Any  # None, a Token while entered, _EXITED, or a list while entered again

    def _arguments(self) -> tuple[Any, ...]:
        return self._args

    def __enter__(self) -> Span:
        if self._token is not None:
            return _enter_again(self)  # type: ignore[return-value]
        self._token = _SPAN.set(self)
        return self

    def __exit__(
        self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        token = self._token
        if type(token) is _Token:
            self._token = _EXITED
            try:
                _SPAN.reset(token)
            except (ValueError, RuntimeError):  # left from another context: see context._detach
                _detach(_SPAN, token, self)
        elif token is not _UNSCOPED:  # entered again, or left twice
            return _exit_again(self, exc_type, exc, tb)
        # (A span from start_span, never made current: ``with`` only ends it, here too, so that
        # no call stands between the application's exception and the guards below.)
        if exc is None:
            self.end()
            return
        # Leaving with the application's exception, which must go on unchanged: near the
        # recursion limit, recording it or ending the span may raise RecursionError itself.
        # Written out here (and in the other exits), not in a helper: a call is one frame more,
        # and the call itself could then raise in place of the application's exception.
        if self._args[6]:
            try:
                record_error(self, exc)
            except Exception:
                pass
        try:
            self.end()
        except Exception:
            pass


class _ScopedNonRecordingSpan(NonRecordingSpan, _Decorates):
    """A sampled-out span made by ``Tracer.span``: current inside its block, so that its
    children and outgoing requests carry its trace id and the decision not to sample."""

    __slots__ = ("_args", "_context", "_fields", "_token")
    _args: tuple[Any, ...]
    _context: Optional[SpanContext]
    _fields: tuple[Any, ...]  # the SpanContext's, ids included
    _token: Any

    def __reduce__(self) -> tuple[Any, ...]:  # copies and pickles are plain non-recording spans
        return (NonRecordingSpan, (self.context,))

    @property
    def context(self) -> SpanContext:  # type: ignore[override]
        """The span's context, made on first use (equal every time: the ids are fixed)."""
        context = self._context
        if context is None:
            context = self._context = _tuple_new(SpanContext, self._fields)
        return context

    def _arguments(self) -> tuple[Any, ...]:
        return self._args

    def __enter__(self) -> NonRecordingSpan:
        if self._token is not None:
            return _enter_again(self)  # type: ignore[return-value]
        self._token = _SPAN.set(self)
        return self

    def __exit__(
        self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        token = self._token
        if type(token) is not _Token:
            return _exit_again(self, exc_type, exc, tb)
        self._token = _EXITED
        try:
            _SPAN.reset(token)
        except (ValueError, RuntimeError):
            _detach(_SPAN, token, self)


def _enter_again(outer: Union[_ScopedSpan, _ScopedNonRecordingSpan]) -> AnySpan:
    """Enter ``outer`` while (or after) it is entered: a new span for this entry."""
    if outer._token is _UNSCOPED:  # from start_span: like any span, ``with`` only ends it
        return outer
    tracer, name, kind, attributes, links, parent, record = outer._args
    inner = tracer.span(name, kind, attributes, links=links, parent=parent, record_exception=record)
    entered: AnySpan = inner.__enter__()
    with _entries_lock:  # threads may enter and leave the same object at once
        entries = outer._token
        if type(entries) is not list:
            outer._token = entries = [entries]
        entries.append(inner)
    return entered


def _exit_again(
    outer: Union[_ScopedSpan, _ScopedNonRecordingSpan], exc_type: Optional[type[BaseException]],
    exc: Optional[BaseException], tb: Optional[TracebackType],
) -> None:
    """Leave the entry of ``outer`` that this context made (the first one or one made by
    ``_enter_again``); nothing if none is open."""
    entries = outer._token
    if entries is _UNSCOPED:  # from start_span: what Span.__exit__ does
        if isinstance(outer, Span):
            Span.__exit__(outer, exc_type, exc, tb)
        return
    if type(entries) is not list:
        return
    # entries: [the first entry's token (or _EXITED), the inner scopes of the later entries].
    # Entries may overlap from several tasks or threads: each context leaves its own, found
    # as the inner scope current here (a well-nested block leaves its span current). The list
    # changes under a lock; the spans are left outside it.
    current = _SPAN.get()
    first: Any = None
    inner: Any = None
    with _entries_lock:
        for index in range(len(entries) - 1, 0, -1):
            if entries[index] is current:
                inner = entries.pop(index)
                break
        else:
            if type(entries[0]) is _Token:  # the first entry leaves
                first = entries[0]
                entries[0] = _EXITED
            elif len(entries) > 1:
                inner = entries.pop()  # left from nowhere we know: the latest entry
        if len(entries) == 1:
            outer._token = entries[0]
    if first is not None:  # what __exit__ does for the first entry
        try:
            _SPAN.reset(first)
        except (ValueError, RuntimeError):
            _detach(_SPAN, first, outer)
        if isinstance(outer, Span):  # records (unless told not to) and ends, never raising
            Span.__exit__(outer, exc_type, exc if outer._args[6] else None, tb)
    elif inner is not None:
        inner.__exit__(exc_type, exc, tb)


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
        # What is current inside the generator: its span, or a span it made current and held
        # across a yield (a ``with`` block around it), made current again on the next resume.
        inside: AnySpan = span
        try:
            while True:
                token = _SPAN.set(inside)
                try:
                    value = method(arg)
                except StopIteration as stop:
                    result = stop.value
                    break
                finally:
                    inside = _SPAN.get()
                    _detach(_SPAN, token, inside)
                try:
                    arg = yield value
                    method = gen.send
                except GeneratorExit:
                    token = _SPAN.set(inside)
                    try:
                        gen.close()
                    finally:
                        _detach(_SPAN, token, _SPAN.get())
                    raise
                except BaseException as exc:
                    method, arg = gen.throw, exc
        except BaseException as exc:
            # The exception goes on unchanged even if recording it or ending the span raises
            # (RecursionError near the limit).
            try:
                if record:
                    record_error(span, exc)
            except Exception:
                pass
            try:
                span.end()
            except Exception:
                pass
            raise
        span.end()
        return result

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
        inside: AnySpan = span  # what is current inside the generator: see _wrap_generator
        try:
            while True:
                token = _SPAN.set(inside) if active else None
                try:
                    value = await method(arg)
                except StopAsyncIteration:
                    break
                finally:
                    if token is not None:
                        inside = _SPAN.get()
                        _detach(_SPAN, token, inside)
                try:
                    arg = yield value
                    method = agen.asend
                except GeneratorExit:
                    token = _SPAN.set(inside) if active else None
                    try:
                        await agen.aclose()
                    finally:
                        if token is not None:
                            _detach(_SPAN, token, _SPAN.get())
                    raise
                except BaseException as exc:
                    method, arg = agen.athrow, exc
        except BaseException as exc:
            # The exception goes on unchanged even if recording it or ending the span raises
            # (RecursionError near the limit).
            try:
                if record:
                    record_error(span, exc)
            except Exception:
                pass
            try:
                span.end()
            except Exception:
                pass
            raise
        span.end()

    return traced_async_generator
