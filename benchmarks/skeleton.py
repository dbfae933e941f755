"""The least a tracer with this API must do per span in CPython: the floor under any design.

``bench_core.py`` runs the recording case with it beside ours and OpenTelemetry's. It keeps the
current span in a ``ContextVar``, draws a 128-bit trace id and a 64-bit span id, keeps attributes
in a dict and events in a list, and queues one tuple per span for a worker thread that takes
them in batches of 512. It validates nothing, samples nothing, limits nothing, counts nothing
and builds no immutable records: a real tracer can only be slower.
"""

from __future__ import annotations

import threading
from collections import deque
from contextvars import ContextVar
from random import getrandbits
from time import time_ns
from typing import Any, Deque, Dict, List, Optional, Tuple

_NO_SPAN: Tuple[int, int] = (0, 0)
_current: ContextVar[Tuple[int, int]] = ContextVar("skeleton", default=_NO_SPAN)
_queue: Deque[Tuple[Any, ...]] = deque()
_wake = threading.Event()


class _Span:
    __slots__ = ("attributes", "context", "events", "name", "parent", "start", "token")

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> _Span:
        parent = _current.get()
        self.parent = parent
        self.context = (parent[0] or getrandbits(128), getrandbits(64))
        self.attributes: Dict[str, Any] = {}
        self.events: List[Tuple[str, int]] = []
        self.token = _current.set(self.context)
        self.start = time_ns()
        return self

    def set_attribute(self, key: str, value: Any) -> None:
        self.attributes[key] = value

    def add_event(self, name: str) -> None:
        self.events.append((name, time_ns()))

    def __exit__(self, *exc: Any) -> None:
        _current.reset(self.token)
        _queue.append((self.name, self.context, self.parent, self.start, time_ns(),
                       self.attributes, self.events))
        if len(_queue) == 512:
            _wake.set()


class Tracer:
    """``span(name)`` only."""

    def span(self, name: str) -> _Span:
        return _Span(name)


def _drain() -> None:
    while True:
        _wake.wait(1.0)
        _wake.clear()
        while _queue:
            batch = [_queue.popleft() for _ in range(min(512, len(_queue)))]
            del batch


_worker: Optional[threading.Thread] = None


def tracer() -> Tracer:
    """A tracer, with its worker started."""
    global _worker
    if _worker is None:
        _worker = threading.Thread(target=_drain, daemon=True)
        _worker.start()
    return Tracer()
