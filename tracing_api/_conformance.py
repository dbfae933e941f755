"""The exporter conformance kit: representative spans, and a check of the exporter contract.

Any exporter's tests call ``check_exporter`` with a factory (and, when a backend is at hand, a
way to ask it what it received)::

    from tracing_api.testing import check_exporter

    def test_my_exporter_meets_the_contract(server):
        check_exporter(lambda: MyExporter(server.url), received=server.span_ids)

``check_exporter`` raises one ``AssertionError`` listing every rule broken. Every call it makes
is watched: a call that does not return within ``timeout`` seconds is reported, not waited for.
``RecordingServer`` is a real HTTP server on loopback for exporters that POST.
"""

from __future__ import annotations

import threading
from types import MappingProxyType
from typing import (
    Any,
    Callable,
    Iterable,
    List,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from ._recording_server import RecordingServer, Reply, Request
from ._types import (
    EMPTY_ATTRIBUTES,
    Event,
    Link,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceState,
)
from .export import ExportResult, InstrumentationScope, PartialSuccess, SpanData, SpanExporter

_T0 = 1_700_000_000_000_000_000  # a fixed instant (ns), so encodings are reproducible
_MS = 1_000_000

HUGE_STRING_LENGTH = 256 * 1024
"""The length of the longest attribute value among ``representative_spans()``."""

_RESOURCE = MappingProxyType({
    "service.name": "conformance-ü-服务",
    "service.version": "1.2.3",
    "telemetry.sdk.name": "tracing-api",
    "host.cpus": 8,
    "deployment.regions": ("eu-west-1", "us-east-1"),
})
_SCOPE = InstrumentationScope("tracing_api.conformance", "1.0")
_SCOPE_NO_VERSION = InstrumentationScope("other.library")

_UNSET = Status()
_TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736
_TRACE_64 = 0x00F067AA0BA902B7  # a 64-bit trace id: the high half is zero
_OTHER_TRACE = 0x0AF7651916CD43DD8448EB211C80319C


def _ctx(trace_id: int, span_id: int, *, remote: bool = False, debug: bool = False,
         state: Tuple[Tuple[str, str], ...] = ()) -> SpanContext:
    return SpanContext(trace_id, span_id, 0x01, TraceState(state), is_remote=remote, debug=debug)


def _attrs(**values: Any) -> Any:
    return MappingProxyType(values)


def _span(name: str, context: SpanContext, parent: Optional[SpanContext], kind: SpanKind,
          start_ms: int, end_ms: int, attributes: Any = EMPTY_ATTRIBUTES, *,
          events: Tuple[Event, ...] = (), links: Tuple[Link, ...] = (),
          status: Status = _UNSET, scope: InstrumentationScope = _SCOPE,
          dropped: Tuple[int, int, int] = (0, 0, 0)) -> SpanData:
    return SpanData(name, context, parent, kind, _T0 + start_ms * _MS, _T0 + end_ms * _MS,
                    attributes, events, links, status, _RESOURCE, scope, *dropped)


def representative_spans() -> List[SpanData]:
    """Finished spans that between them use every field of ``SpanData``: every kind, attributes
    of every type (sequences, empty ones, unicode, a 256 KiB string, NaN and infinities, extreme
    integers), events, links, an error with its exception event, a remote parent, a 64-bit trace
    id, a debug trace, trace state, two scopes, a resource, dropped counts and a zero-length span.
    """
    remote_parent = _ctx(_TRACE, 0x00F067AA0BA902B7, remote=True, state=(("vendor", "value"),))
    server = _ctx(_TRACE, 0x53995C3F42CD8AD8, state=(("vendor", "value"),))
    client = _ctx(_TRACE, 0x1111111111111111)
    internal = _ctx(_TRACE, 0x2222222222222222)
    error = _ctx(_TRACE, 0x3333333333333333)
    producer = _ctx(_OTHER_TRACE, 0x4444444444444444)
    consumer = _ctx(_OTHER_TRACE, 0x5555555555555555)
    short = _ctx(_TRACE_64, 0x6666666666666666, debug=True)
    short_child = _ctx(_TRACE_64, 0x0000000000000001)
    exception_event = Event("exception", _T0 + 33 * _MS, _attrs(**{
        "exception.type": "ValueError",
        "exception.message": "bad value: 'ü'",
        "exception.stacktrace": "Traceback (most recent call last):\n"
        + '  File "app.py", line 1, in <module>\n' * 200 + "ValueError: bad value: 'ü'\n",
        "exception.escaped": True,
    }))
    return [
        _span("GET /users/{id}", server, remote_parent, SpanKind.SERVER, 0, 50, _attrs(**{
            "http.request.method": "GET", "http.route": "/users/{id}",
            "http.response.status_code": 200, "url.full": "https://example.com/users/7?q=ü",
            "client.address": "192.0.2.1", "user_agent.original": "curl/8.0",
        }), events=(Event("request.received", _T0 + 1 * _MS, EMPTY_ATTRIBUTES),),
            status=Status(StatusCode.OK)),
        _span("SELECT users", client, server, SpanKind.CLIENT, 5, 20, _attrs(**{
            "db.system": "postgresql", "db.statement": "SELECT * FROM users WHERE id = $1",
            "server.address": "db.internal", "server.port": 5432,
            "network.peer.address": "10.0.0.5", "network.peer.port": 5432,
        })),
        _span("every attribute type — ü 服务 😀 \u202e", internal, server, SpanKind.INTERNAL,
              20, 30, _attrs(**{
                  "str": "text", "empty.str": "", "unicode": "ü 服务 😀 \u202e\u0000\x1f\"\\",
                  "bool.true": True, "bool.false": False,
                  "int": 42, "int.negative": -7, "int.max": 2**63 - 1, "int.min": -(2**63),
                  "float": 3.25, "float.negative": -0.5, "float.nan": float("nan"),
                  "float.inf": float("inf"), "float.-inf": float("-inf"),
                  "strs": ("a", "ü", ""), "bools": (True, False), "ints": (1, -2, 2**40),
                  "floats": (1.5, -0.25), "empty.sequence": (),
                  "huge": "x" * (HUGE_STRING_LENGTH - 1) + "ü",
              }), events=(
                  Event("cache.miss", _T0 + 21 * _MS, _attrs(key="user:7", size=3, hit=False,
                                                             ratios=(0.5, 1.0)), 2),
                  Event("", _T0 + 22 * _MS, EMPTY_ATTRIBUTES),
                  Event("ünicode event 😀", _T0 + 23 * _MS, _attrs(note="ü")),
              ), dropped=(3, 4, 5)),
        _span("fails", error, server, SpanKind.INTERNAL, 30, 35, _attrs(**{"retry": 1}),
              events=(exception_event,),
              status=Status(StatusCode.ERROR, "ValueError: bad value: 'ü'")),
        _span("publish orders", producer, None, SpanKind.PRODUCER, 40, 41, _attrs(**{
            "messaging.system": "kafka", "messaging.destination.name": "orders",
        }), links=(Link(server, _attrs(reason="caused by")),), scope=_SCOPE_NO_VERSION),
        _span("process orders", consumer, producer, SpanKind.CONSUMER, 45, 60, EMPTY_ATTRIBUTES,
              links=(Link(producer, _attrs(**{"messaging.batch": True}), 1),
                     Link(_ctx(_TRACE_64, 0x7777777777777777, remote=True), EMPTY_ATTRIBUTES)),
              scope=_SCOPE_NO_VERSION, dropped=(0, 0, 2)),
        _span("debug root with a 64-bit trace id", short, None, SpanKind.SERVER, 0, 10),
        _span("", short_child, short, SpanKind.INTERNAL, 10, 10),  # unnamed and zero-length
        _span("n" * 2000, _ctx(_TRACE, 0x8888888888888888), internal, SpanKind.CLIENT, 25, 26,
              _attrs(**{"k" * 600: "v" * 70_000})),
    ]


class _Call:
    """One watched call: its result, its exception, or that it never returned."""

    def __init__(self, function: Callable[[], Any], timeout: float) -> None:
        self.result: Any = None
        self.error: Optional[BaseException] = None
        thread = threading.Thread(target=self._run, args=(function,), daemon=True,
                                  name="tracing-conformance")
        thread.start()
        thread.join(timeout)
        self.finished = not thread.is_alive()

    def _run(self, function: Callable[[], Any]) -> None:
        try:
            self.result = function()
        except BaseException as exc:  # reported as a broken rule, not raised
            self.error = exc


class _Checker:
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.problems: List[str] = []

    def call(self, what: str, function: Callable[[], Any]) -> _Call:
        call = _Call(function, self.timeout)
        if not call.finished:
            self.problems.append(f"{what} did not return within {self.timeout} s")
        elif call.error is not None:
            self.problems.append(f"{what} raised {type(call.error).__name__}: {call.error}")
        return call

    def export(self, what: str, exporter: Any, spans: Sequence[SpanData],
               expected: Optional[ExportResult]) -> Optional[ExportResult]:
        call = self.call(what, lambda: exporter.export(spans))
        if not call.finished or call.error is not None:
            return None
        if isinstance(call.result, PartialSuccess):
            exported = call.result.exported
            if type(exported) is not int or not 0 <= exported <= len(spans):
                self.problems.append(
                    f"{what} returned {call.result!r}: not a count of the {len(spans)} spans given"
                )
            elif expected is not None:
                self.problems.append(f"{what} returned {call.result!r}, expected {expected}")
            return None
        if not isinstance(call.result, ExportResult):
            self.problems.append(
                f"{what} returned {call.result!r}, not an ExportResult or a PartialSuccess"
            )
            return None
        if expected is not None and call.result is not expected:
            self.problems.append(f"{what} returned {call.result}, expected {expected}")
        return call.result

    def flush(self, what: str, exporter: Any) -> None:
        call = self.call(what, lambda: exporter.force_flush(min(self.timeout / 2, 5.0)))
        if call.finished and call.error is None and not isinstance(call.result, bool):
            self.problems.append(f"{what} returned {call.result!r}, not a bool")

    def shutdown(self, what: str, exporter: Any) -> None:
        self.call(what, exporter.shutdown)


def _span_id(value: Union[int, str]) -> int:
    return value if isinstance(value, int) else int(value, 16)


def check_exporter(
    make_exporter: Callable[[], SpanExporter], *,
    received: Optional[Callable[[], Iterable[Union[int, str]]]] = None,
    spans: Optional[Sequence[SpanData]] = None, threads: int = 4, timeout: float = 10.0,
    expect_success: bool = True,
) -> None:
    """Check that the exporters ``make_exporter()`` makes keep the exporter contract.

    Each exporter made is fed ``spans`` (default: ``representative_spans()``) whole, one by
    one, empty, and from ``threads`` threads at once; ``force_flush`` and ``shutdown`` are
    called in the awkward orders (flush before any export, shutdown twice, export and flush
    after shutdown, shutdown while other threads export). The rules: every call returns within
    ``timeout`` seconds and raises nothing; ``export`` returns an ``ExportResult`` (``SUCCESS``
    while the backend works, when ``expect_success``; ``FAILURE`` after shutdown) or, when
    ``expect_success`` is false, a ``PartialSuccess`` counting at most the spans given, and leaves
    its input alone; ``force_flush`` returns a bool. With ``received`` (a callable returning the
    span ids, as ints or hex, that the backend has been sent so far), every span exported with
    ``SUCCESS`` must be among them.

    Raises ``AssertionError`` listing every rule broken.
    """
    batch = list(representative_spans() if spans is None else spans)
    before = list(batch)
    want = ExportResult.SUCCESS if expect_success else None
    check = _Checker(timeout)
    delivered: set[int] = set()

    made = check.call("make_exporter()", make_exporter)
    if not made.finished or made.error is not None:
        raise AssertionError("exporter contract broken:\n  " + "\n  ".join(check.problems))
    exporter = made.result
    for method in ("export", "force_flush", "shutdown"):
        if not callable(getattr(exporter, method, None)):
            check.problems.append(f"the exporter has no {method}() method")
    if check.problems:
        raise AssertionError("exporter contract broken:\n  " + "\n  ".join(check.problems))

    # A fresh exporter: flush first, then the whole batch, nothing, and each span alone.
    check.flush("force_flush() before any export", exporter)
    if check.export("export(all representative spans)", exporter, batch, want) \
            is ExportResult.SUCCESS:
        delivered.update(s.context.span_id for s in batch)
    if batch != before:
        check.problems.append("export() changed the sequence it was given")
    check.export("export([])", exporter, [], None)
    for span in batch:
        if check.export(f"export([{span.name[:40]!r}])", exporter, [span], want) \
                is ExportResult.SUCCESS:
            delivered.add(span.context.span_id)

    # Several threads export at once, and one flushes meanwhile.
    results: List[Optional[ExportResult]] = [None] * threads
    workers = [threading.Thread(
        target=lambda i=i: results.__setitem__(
            i, check.export(f"export() on thread {i}", exporter, batch, want)), daemon=True)
        for i in range(threads)]
    for worker in workers:
        worker.start()
    check.flush("force_flush() during concurrent exports", exporter)
    for worker in workers:
        worker.join(timeout + 1.0)
    if any(r is ExportResult.SUCCESS for r in results):
        delivered.update(s.context.span_id for s in batch)
    check.flush("force_flush() after exports", exporter)

    if received is not None:
        got = check.call("received()", lambda: {_span_id(v) for v in received()})
        if got.finished and got.error is None:
            missing = sorted(delivered - got.result)
            if missing:
                check.problems.append(
                    f"{len(missing)} span(s) exported with SUCCESS never reached the backend: "
                    + ", ".join(format(m, "016x") for m in missing[:5]))

    # Shutdown twice, then everything after it.
    check.shutdown("shutdown()", exporter)
    check.shutdown("shutdown() a second time", exporter)
    check.export("export() after shutdown()", exporter, batch, ExportResult.FAILURE)
    check.export("export([]) after shutdown()", exporter, [], None)
    check.flush("force_flush() after shutdown()", exporter)

    # A second exporter: shut down from another thread while threads export.
    second = check.call("make_exporter() again", make_exporter)
    if second.finished and second.error is None:
        other = second.result
        racing = [threading.Thread(
            target=lambda i=i: check.export(f"export() racing shutdown on thread {i}", other,
                                            batch, None), daemon=True) for i in range(threads)]
        for worker in racing:
            worker.start()
        check.shutdown("shutdown() while other threads export", other)
        for worker in racing:
            worker.join(timeout + 1.0)
        check.export("export() after a racing shutdown()", other, batch[:1], ExportResult.FAILURE)
        check.shutdown("shutdown() again after a racing one", other)

    # A third exporter: shut down without ever exporting.
    third = check.call("make_exporter() a third time", make_exporter)
    if third.finished and third.error is None:
        check.shutdown("shutdown() before any export", third.result)
        check.export("export() after shutdown() of an unused exporter", third.result, batch[:1],
                     ExportResult.FAILURE)

    if check.problems:
        raise AssertionError("exporter contract broken:\n  " + "\n  ".join(check.problems))


def span_data_strategy() -> Any:
    """A hypothesis strategy for any valid ``SpanData`` (hypothesis must be installed): any
    ids, kinds, names, times, attribute values of every type, events, links, statuses, scopes,
    resources and dropped counts. For property tests of encoders.
    """
    from hypothesis import strategies as st

    text = st.text(max_size=40)
    scalar = st.one_of(text, st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats())
    value = st.one_of(scalar, st.lists(text, max_size=4).map(tuple),
                      st.lists(st.booleans(), max_size=4).map(tuple),
                      st.lists(st.integers(-(2**63), 2**63 - 1), max_size=4).map(tuple),
                      st.lists(st.floats(), max_size=4).map(tuple))
    attributes = st.dictionaries(text, value, max_size=6).map(MappingProxyType)
    count = st.integers(0, 2**31 - 1)
    times = st.integers(0, 2**63 - 1)
    context = st.builds(
        SpanContext, st.integers(1, 2**128 - 1) | st.integers(1, 2**64 - 1),
        st.integers(1, 2**64 - 1), st.integers(0, 255), st.just(TraceState()), st.booleans(),
        st.booleans(), st.booleans())
    event = st.builds(Event, text, times, attributes, count)
    link = st.builds(Link, context, attributes, count)
    status = st.one_of(st.just(_UNSET), st.just(Status(StatusCode.OK)),
                       st.builds(Status, st.just(StatusCode.ERROR), st.none() | text))
    scope = st.builds(InstrumentationScope, text, st.none() | text)
    resource = st.dictionaries(text, scalar, max_size=4).map(
        lambda r: MappingProxyType({"service.name": "svc", **r}))
    return st.builds(
        lambda name, ctx, parent, kind, start, length, *rest: SpanData(
            name, ctx, parent, kind, start, start + length, *rest),
        text, context, st.none() | context, st.sampled_from(SpanKind), times,
        st.integers(0, 10**12), attributes, st.lists(event, max_size=3).map(tuple),
        st.lists(link, max_size=3).map(tuple), status, resource, scope, count, count, count)


__all__ = [
    "HUGE_STRING_LENGTH",
    "RecordingServer",
    "Reply",
    "Request",
    "check_exporter",
    "representative_spans",
    "span_data_strategy",
]
