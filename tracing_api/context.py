"""The current span and baggage, carried by ``contextvars``; helpers for threads and executors.

asyncio tasks inherit the context they were created in, so nothing is needed there. A thread or
an executor does not: wrap the callable (``wrap``) or the executor (``wrap_executor``).
Leaving a span's scope from another context (a generator closed elsewhere, a callback) never
raises and never changes the current span of the context it happens in.
"""

from __future__ import annotations

import contextvars
import functools
import sys
from _thread import allocate_lock as _allocate_lock
from collections import namedtuple
from contextvars import ContextVar, Token
from types import MappingProxyType, TracebackType

from ._span import INVALID_SPAN, NonRecordingSpan, Span, record_error
from ._types import (
    _SPAN_ID_MAX,
    _TRACE_ID_MAX,
    EMPTY_TRACE_STATE,
    INVALID_SPAN_CONTEXT,
    SpanContext,
    TraceState,
)

EMPTY_BAGGAGE: Mapping[str, str] = MappingProxyType({})
_tuple_new = tuple.__new__
_new_object = object.__new__

TYPE_CHECKING = False
if TYPE_CHECKING:
    from concurrent.futures import Executor, Future
    from typing import (
        Any,
        Callable,
        Iterable,
        Iterator,
        List,
        Mapping,
        NamedTuple,
        Optional,
        Tuple,
        TypeVar,
    )

    from ._span import AnySpan

    T = TypeVar("T")

    class _ContextFields(NamedTuple):
        span: AnySpan = INVALID_SPAN
        baggage: Mapping[str, str] = EMPTY_BAGGAGE
        baggage_properties: Mapping[str, str] = EMPTY_BAGGAGE

    class _AttachTokenFields(NamedTuple):
        context: Context
        span: Token[AnySpan]
        baggage: Token[Tuple[Mapping[str, str], Mapping[str, str]]]

else:
    _ContextFields = namedtuple(
        "Context", "span baggage baggage_properties",
        defaults=(INVALID_SPAN, EMPTY_BAGGAGE, EMPTY_BAGGAGE),
    )
    _AttachTokenFields = namedtuple("AttachToken", "context span baggage")


_entries_lock = _allocate_lock()  # guards the tokens of objects entered more than once
_SPAN: ContextVar[AnySpan] = ContextVar("tracing_api.span", default=INVALID_SPAN)
_BAGGAGE: ContextVar[Tuple[Mapping[str, str], Mapping[str, str]]] = ContextVar(
    "tracing_api.baggage", default=(EMPTY_BAGGAGE, EMPTY_BAGGAGE)
)


class Context(_ContextFields):
    """What travels with a request: the current span and the baggage. Immutable.

    ``baggage_properties`` keeps the W3C baggage properties of an entry (the text after its
    first ``;``), so a service forwards what it received unchanged.
    """

    __slots__ = ()

    @property
    def span_context(self) -> SpanContext:
        """The span's context (invalid when there is no span, or something else in its place)."""
        span: object = self.span
        if isinstance(span, (Span, NonRecordingSpan)):
            return span.context
        return parent_context(span)

    def with_span_context(self, span_context: SpanContext) -> Context:
        """This context with a non-recording span for ``span_context`` (what extract makes);
        anything but a ``SpanContext`` whose ids, flags and trace state a span can carry stands
        for none (an invalid one): every span started under it would inherit the fault."""
        span = _new_object(NonRecordingSpan)  # what its __init__ does, without the call
        span.context = span_context if _carriable(span_context) else INVALID_SPAN_CONTEXT
        return _tuple_new(Context, (span, self.baggage, self.baggage_properties))

    def with_remote_parent(
        self, trace_id: int, span_id: int, trace_flags: int = 0,
        trace_state: TraceState = EMPTY_TRACE_STATE, debug: bool = False, deferred: bool = False,
    ) -> Context:
        """This context with a remote parent: what a propagator's ``extract`` returns.

        The same as ``with_span_context(SpanContext(..., is_remote=True))`` at a third of the
        cost (extract runs on every request). The arguments are not checked: pass ids already
        known to be valid.
        """
        span = _new_object(NonRecordingSpan)
        span.context = _tuple_new(
            SpanContext, (trace_id, span_id, trace_flags, trace_state, True, debug, deferred)
        )
        if self is EMPTY_CONTEXT:  # the usual case: no baggage to carry over
            return _tuple_new(Context, (span, EMPTY_BAGGAGE, EMPTY_BAGGAGE))
        return _tuple_new(Context, (span, self.baggage, self.baggage_properties))

    def with_baggage(
        self, entries: Mapping[str, Optional[str]], properties: Optional[Mapping[str, str]] = None
    ) -> Context:
        """This context with ``entries`` merged into the baggage; a value of None removes a key."""
        values = dict(self.baggage)
        props = dict(self.baggage_properties)
        for key, value in entries.items():
            props.pop(key, None)
            if value is None:
                values.pop(key, None)
            else:
                values[key] = value
        if properties:
            props.update((k, v) for k, v in properties.items() if k in values)
        return self._replace(baggage=MappingProxyType(values), baggage_properties=MappingProxyType(props))


EMPTY_CONTEXT = Context()


class _Current:
    """The default ``parent``: whatever span is current."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "CURRENT"


CURRENT: Any = _Current()

if TYPE_CHECKING:
    Parent = Any  # Context, a span, a SpanContext, None (a new trace) or CURRENT


def parent_context(parent: Parent) -> SpanContext:
    """The span context a ``parent=`` argument stands for (invalid for a new trace). Never
    raises: anything that is not a span, a ``SpanContext`` or a ``Context`` holding one (in
    the span's place) stands for a new trace, and so does a ``SpanContext`` whose ids or flags
    no span could carry (negative, too wide, not integers)."""
    if parent is CURRENT:
        return _SPAN.get().context
    if parent is None:
        return INVALID_SPAN_CONTEXT
    if isinstance(parent, Context):  # the usual explicit parent: what extract returns
        parent = parent.span
    if isinstance(parent, (NonRecordingSpan, Span)):  # extract's first
        # Made by a tracer or by extract (or from a checked value by use_span): ids in range.
        return parent.context
    # A SpanContext the application made (or an object's ``context``): checked.
    context = parent
    if not isinstance(context, SpanContext):
        try:
            context = parent.context
        except Exception:
            return INVALID_SPAN_CONTEXT
        if not isinstance(context, SpanContext):
            return INVALID_SPAN_CONTEXT
    return context if _carriable(context) else INVALID_SPAN_CONTEXT


def _carriable(context: object) -> bool:
    """Whether ``context`` is a ``SpanContext`` a span can carry on: integer ids within their
    widths (zero allowed: with both zero, a remote context carries only a sampling decision),
    integer flags, and a ``TraceState`` (a header string there breaks inject and exporters)."""
    if not isinstance(context, SpanContext):
        return False
    trace_id = context[0]
    span_id = context[1]
    return (type(trace_id) is int and type(span_id) is int and type(context[2]) is int
            and 0 <= trace_id <= _TRACE_ID_MAX and 0 <= span_id <= _SPAN_ID_MAX
            and isinstance(context[3], TraceState))


_SPAN_TYPES = (Span, NonRecordingSpan)  # a constant: no tuple built per check


def _as_span(value: object) -> AnySpan:
    """``value`` as something that may be current: a span as it is; anything else (a
    ``SpanContext``, a ``Context``, None, ...) as a non-recording span for the context it stands
    for, so that a bad value never reaches the spans started under it."""
    if isinstance(value, _SPAN_TYPES):
        return value
    context = parent_context(value)
    return INVALID_SPAN if context is INVALID_SPAN_CONTEXT else NonRecordingSpan(context)


def current_span() -> AnySpan:
    """The current span; never None (a shared non-recording span when there is none)."""
    return _SPAN.get()


def current_context() -> Context:
    """The current span and baggage as one ``Context``."""
    values, props = _BAGGAGE.get()
    return Context(_SPAN.get(), values, props)


def baggage() -> Mapping[str, str]:
    """The current baggage (read-only)."""
    return _BAGGAGE.get()[0]


def get_baggage(key: str) -> Optional[str]:
    """One baggage value, or None."""
    return _BAGGAGE.get()[0].get(key)


def _own(var: ContextVar[Any], tokens: List[Token[Any]]) -> Optional[Token[Any]]:
    """Of the ``tokens`` of one object entered several times, the latest one that this context
    made, reset and taken out of the list (None when none is: entered in other contexts only).

    A token resets only in the context that made it, so trying them costs nothing elsewhere.
    """
    for index in range(len(tokens) - 1, -1, -1):
        try:
            var.reset(tokens[index])
        except (ValueError, RuntimeError):
            continue
        return tokens.pop(index)
    return None


def _detach(var: ContextVar[Any], token: Token[Any], value: object) -> None:
    try:
        var.reset(token)
    except (ValueError, RuntimeError):
        # The token belongs to another context (a generator or callback finished elsewhere)
        # or was used already. Restore only if this context still shows our value.
        if var.get() is value:
            old = token.old_value
            if old is Token.MISSING:
                old = INVALID_SPAN if var is _SPAN else (EMPTY_BAGGAGE, EMPTY_BAGGAGE)
            var.set(old)


class use_span:
    """Make ``span`` current for a ``with`` block; optionally end it when the block exits.

    An exception leaving the block is recorded on the span and sets its status to ERROR
    (unless ``record_exception=False``).
    """

    __slots__ = ("_end_on_exit", "_record", "_span", "_token")

    def __init__(self, span: AnySpan, end_on_exit: bool = False, record_exception: bool = True):
        # A SpanContext (or anything else) where a span belongs would reach every span started
        # inside: made a span here, once, rather than checked on every span's start.
        self._span = span if isinstance(span, _SPAN_TYPES) else _as_span(span)
        self._end_on_exit = end_on_exit
        self._record = record_exception
        self._token: Any = None  # a Token while entered once; a list of them when entered again

    def __enter__(self) -> AnySpan:
        span = self._span
        if self._token is None:
            self._token = _SPAN.set(span)
        else:  # entered again, nested or from another task: each entry keeps its own token
            self._enter_again()
        return span

    def _enter_again(self) -> None:
        token = _SPAN.set(self._span)
        with _entries_lock:  # threads may enter and leave the same object at once
            held = self._token
            if type(held) is list:
                held.append(token)
            elif held is None:
                self._token = token
            else:
                self._token = [held, token]

    def __exit__(
        self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        held = self._token
        if type(held) is Token:
            self._token = None
            try:
                _SPAN.reset(held)
            except (ValueError, RuntimeError):  # left from another context
                _detach(_SPAN, held, self._span)
        elif held is not None:
            self._exit_again(held)
        if exc is None:
            if self._end_on_exit:
                self._span.end()
            return
        # The application's exception must go on unchanged, even if recording it or ending
        # the span raises (RecursionError near the recursion limit).
        try:
            if self._record and isinstance(self._span, Span):
                record_error(self._span, exc)
        except Exception:
            pass
        if self._end_on_exit:
            try:
                self._span.end()
            except Exception:
                pass

    def _exit_again(self, held: List[Token[AnySpan]]) -> None:
        with _entries_lock:
            other = held.pop() if _own(_SPAN, held) is None and held else None
            if not held and self._token is held:
                self._token = None
        if other is not None:  # none of this context's: see _detach
            _detach(_SPAN, other, self._span)


class use_context:
    """Make ``context`` (for example one returned by ``extract``) current for a ``with`` block."""

    __slots__ = ("_context", "_tokens")

    def __init__(self, context: Context) -> None:
        self._context = context
        self._tokens: List[AttachToken] = []  # one per entry still open (entered again: more)

    def __enter__(self) -> Context:
        self._tokens.append(attach(self._context))
        return self._context

    def __exit__(
        self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        tokens = self._tokens
        with _entries_lock:  # threads may enter and leave the same object at once
            if len(tokens) == 1:
                token, own = tokens.pop(), False
            else:
                # Entered several times: leave the entry this context made (its span token
                # resets only here).
                for index in range(len(tokens) - 1, -1, -1):
                    try:
                        _SPAN.reset(tokens[index].span)
                    except (ValueError, RuntimeError):
                        continue
                    token, own = tokens.pop(index), True
                    break
                else:
                    if not tokens:
                        return
                    token, own = tokens.pop(), False
        if own:
            _detach_baggage(token)
        else:
            detach(token)


class AttachToken(_AttachTokenFields):
    """What ``attach`` returns and ``detach`` takes."""

    __slots__ = ()


def attach(context: Context) -> AttachToken:
    """Make ``context`` current until ``detach``: for frameworks with separate before/after hooks."""
    span: object = context.span
    if not isinstance(span, _SPAN_TYPES):  # Context(span_context), Context(None)
        context = _tuple_new(Context, (_as_span(span), context.baggage, context.baggage_properties))
    return AttachToken(
        context,
        _SPAN.set(context.span),
        _BAGGAGE.set((context.baggage, context.baggage_properties)),
    )


def detach(token: AttachToken) -> None:
    """Undo ``attach``. Never raises, even from another context, where it changes nothing that
    context set itself.
    """
    _detach(_SPAN, token.span, token.context.span)
    _detach_baggage(token)


def _detach_baggage(token: AttachToken) -> None:
    context = token.context
    try:
        _BAGGAGE.reset(token.baggage)
    except (ValueError, RuntimeError):
        current = _BAGGAGE.get()
        if current[0] is context.baggage and current[1] is context.baggage_properties:
            _detach(_BAGGAGE, token.baggage, current)


def use_baggage(entries: Mapping[str, Optional[str]]) -> use_context:
    """A ``with`` block in which ``entries`` are merged into the baggage (None removes a key)."""
    return use_context(current_context().with_baggage(entries))


def wrap(fn: Callable[..., T]) -> Callable[..., T]:
    """``fn`` bound to the current context, to run in another thread or a callback later."""
    captured = contextvars.copy_context()

    @functools.wraps(fn)
    def run_in_context(*args: Any, **kwargs: Any) -> T:
        # A copy per call: one contextvars.Context cannot be entered by two threads at once.
        return captured.copy().run(fn, *args, **kwargs)

    return run_in_context


def _runs_elsewhere(executor: Executor) -> bool:
    """Whether ``executor`` pickles its tasks to run in another process or interpreter, where a
    ``contextvars.Context`` cannot go (it cannot be pickled)."""
    # Looked up among the loaded modules: the executor's own class has loaded its module, and
    # importing the process pool's here would cost every thread-pool user.
    for module, name in (
        ("concurrent.futures.process", "ProcessPoolExecutor"),
        ("concurrent.futures.interpreter", "InterpreterPoolExecutor"),
    ):
        kind = getattr(sys.modules.get(module), name, None)
        if kind is not None and isinstance(executor, kind):
            return True
    return False


class ContextExecutor:
    """An executor whose tasks run in the context they were submitted from.

    It wraps a ``concurrent.futures.Executor`` and offers the same methods. A process pool's
    tasks run in another process, where the context cannot follow: they are passed through
    unchanged (send the context along with ``inject``/``extract`` instead).
    """

    def __init__(self, executor: Executor) -> None:
        self._executor = executor
        self._passes_through = _runs_elsewhere(executor)

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Submit ``fn`` to run in a copy of the current context."""
        if self._passes_through:
            return self._executor.submit(fn, *args, **kwargs)
        return self._executor.submit(contextvars.copy_context().run, fn, *args, **kwargs)

    def map(
        self, fn: Callable[..., T], *iterables: Iterable[Any], timeout: Optional[float] = None,
        chunksize: int = 1,
    ) -> Iterator[T]:
        """Like ``Executor.map``, each call in a copy of the submitter's context."""
        if self._passes_through:
            return self._executor.map(fn, *iterables, timeout=timeout, chunksize=chunksize)
        context = contextvars.copy_context()

        def run(*args: Any) -> T:
            return context.copy().run(fn, *args)

        return self._executor.map(run, *iterables, timeout=timeout, chunksize=chunksize)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Shut the wrapped executor down."""
        self._executor.shutdown(wait=wait, cancel_futures=cancel_futures)

    def __enter__(self) -> ContextExecutor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown(wait=True)


def wrap_executor(executor: Executor) -> ContextExecutor:
    """``executor`` with every submitted task run in its submitter's context (a process pool's
    tasks are passed through unchanged: the context cannot go to another process)."""
    return ContextExecutor(executor)


__all__ = [
    "EMPTY_CONTEXT",
    "AttachToken",
    "Context",
    "ContextExecutor",
    "SpanContext",
    "attach",
    "baggage",
    "current_context",
    "current_span",
    "detach",
    "get_baggage",
    "use_baggage",
    "use_context",
    "use_span",
    "wrap",
    "wrap_executor",
]
