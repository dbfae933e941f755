"""Forked children trace through a fresh worker; the parent goes on; no span arrives twice.

The real Zipkin exporter posts to a collector on loopback that keeps every span id it receives,
so a span exported by both parent and child, or lost by either, shows. Forks happen while
another thread of the parent is ending spans and spans sit in the parent's queue.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any, Callable, List

import pytest

import tracing_api as tracing

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")

tracer = tracing.get_tracer(__name__)


def end_spans(count: int, name: str) -> List[str]:
    ids = []
    for _ in range(count):
        with tracer.span(name) as span:
            pass
        ids.append(format(span.context.span_id, "016x"))
    return ids


class Busy:
    """A parent thread ending spans until stopped; keeps their ids."""

    def __init__(self) -> None:
        self.ids: List[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            self.ids.extend(end_spans(5, "parent-busy"))
            time.sleep(0.001)

    def join(self) -> List[str]:
        self.stop.set()
        self.thread.join(30)
        assert not self.thread.is_alive()
        return self.ids


def _child(count: int, write_fd: int) -> None:
    """In a forked child: end ``count`` spans, flush, report ids and stats through ``write_fd``."""
    code = 1
    try:
        ids = end_spans(count, f"child-{os.getpid()}")
        ok = tracing.force_flush(timeout=20)
        stats = tracing.stats()
        line = f"{int(ok)} {stats['ended']} {stats['exported']} {' '.join(ids)}\n"
        os.write(write_fd, line.encode())
        code = 0
    finally:
        os._exit(code)


def test_os_fork_child_exports_its_own_spans_once_while_the_parent_keeps_working(
    make_backend: Callable[[str], Any],
    exit_code_within: Any,
) -> None:
    backend = make_backend("zipkin")
    tracing.configure(**backend.exporter_options(timeout=10.0, deadline=10.0), schedule_delay=0.2)
    busy = Busy()
    queued_before = end_spans(100, "parent-before-fork")  # in the parent's queue at the fork
    children: List[List[str]] = []
    try:
        for _ in range(3):
            read_fd, write_fd = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(read_fd)
                _child(20, write_fd)
            os.close(write_fd)
            assert exit_code_within(pid, 60) == 0
            with os.fdopen(read_fd) as pipe:
                ok, ended, exported, *ids = pipe.read().split()
            assert (ok, ended, exported) == ("1", "20", "20")  # a fresh, working pipeline
            children.append(ids)
        after = end_spans(50, "parent-after-fork")
    finally:
        parent_busy = busy.join()
    assert tracing.shutdown(timeout=30)

    received = backend.span_ids()
    assert len(received) == len(set(received)), "a span was exported twice"
    parent = queued_before + after + parent_busy
    assert sorted(received) == sorted(parent + [i for ids in children for i in ids])
    stats = tracing.stats()
    assert stats["ended"] == stats["exported"] == len(parent)  # the parent's books: its own spans


def _mp_child(queue: Any) -> None:
    ids = end_spans(30, "mp-child")
    ok = tracing.force_flush(timeout=20)
    queue.put((ok, tracing.stats(), ids))


def test_multiprocessing_fork_children_export_their_own_spans_once(
    make_backend: Callable[[str], Any],
) -> None:
    import multiprocessing

    backend = make_backend("zipkin")
    tracing.configure(**backend.exporter_options(timeout=10.0, deadline=10.0), schedule_delay=0.2)
    busy = Busy()
    queued_before = end_spans(100, "parent-before-fork")
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    try:
        processes = [ctx.Process(target=_mp_child, args=(queue,)) for _ in range(4)]
        for process in processes:
            process.start()
        results = [queue.get(timeout=60) for _ in processes]
        for process in processes:
            process.join(30)
            assert process.exitcode == 0
    finally:
        parent_busy = busy.join()
    assert tracing.shutdown(timeout=30)

    child_ids = []
    for ok, stats, ids in results:
        assert ok
        assert (stats["ended"], stats["exported"], stats["dropped"]) == (30, 30, 0)
        child_ids.extend(ids)
    received = backend.span_ids()
    assert len(received) == len(set(received)), "a span was exported twice"
    assert sorted(received) == sorted(queued_before + parent_busy + child_ids)


def _mp_child_without_flush(count: int) -> None:
    end_spans(count, "mp-exiting-child")  # and return: the child leaves through os._exit


def test_multiprocessing_children_flush_what_they_queued_when_they_exit(
    make_backend: Callable[[str], Any],
) -> None:
    import multiprocessing

    backend = make_backend("zipkin")
    tracing.configure(**backend.exporter_options(timeout=10.0, deadline=10.0))  # 1 s delay
    ctx = multiprocessing.get_context("fork")
    processes = [ctx.Process(target=_mp_child_without_flush, args=(20,)) for _ in range(3)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    assert tracing.shutdown(timeout=30)
    assert len(backend.span_ids()) == 60  # every child's spans, exported at its exit


def test_simple_processor_rebuilds_an_exporter_chosen_by_name_in_a_forked_child(
    tmp_path: Any,
    exit_code_within: Any,
) -> None:
    import json

    path = tmp_path / "spans.jsonl"
    tracing.configure(exporter="jsonl", path=str(path), processor="simple")
    from tracing_api import _tracer

    parent_exporter = _tracer.active().processors[0].exporter  # type: ignore[union-attr]
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report whether it got a fresh exporter, and trace with it
        try:
            fresh = _tracer.active().processors[0].exporter is not parent_exporter  # type: ignore[union-attr]
            end_spans(2, "simple-child")
            os.write(write_fd, b"1" if fresh else b"0")
        finally:
            os._exit(0)
    os.close(write_fd)
    try:
        assert exit_code_within(pid, 60) == 0
        assert os.read(read_fd, 1) == b"1"
    finally:
        os.close(read_fd)
    names = [json.loads(line)["name"] for line in path.read_text().splitlines()]
    assert names == ["simple-child", "simple-child"]


def _mp_child_configuring(endpoint_options: Any) -> None:
    tracing.configure(**endpoint_options, schedule_delay=30.0)  # after the fork, in the child
    end_spans(5, "configured-in-child")


def test_a_multiprocessing_child_that_configures_after_the_fork_flushes_at_exit(
    make_backend: Callable[[str], Any],
) -> None:
    import multiprocessing

    backend = make_backend("zipkin")
    options = backend.exporter_options(timeout=10.0, deadline=10.0)
    tracing.shutdown()  # the parent traces nothing
    process = multiprocessing.get_context("fork").Process(
        target=_mp_child_configuring, args=(options,))
    process.start()
    process.join(60)
    assert process.exitcode == 0
    assert len(backend.span_ids()) == 5


APPLICATION = '''
import os
import sys

import tracing_api as tracing

tracing.configure(exporter="jsonl", path={path!r}, schedule_delay=30.0)  # at import, as apps do
tracer = tracing.get_tracer("application")


def work(count):
    for _ in range(count):
        with tracer.span("process-span"):
            pass


def ready():  # a pool's initializer: the workers import this module while they start
    pass


def task(number):
    with tracer.span("task-span"):
        pass
    return os.getpid()
'''


def _application(tmp_path: Any, monkeypatch: pytest.MonkeyPatch, name: str) -> Any:
    """A module that configures tracing at import, writing spans to ``tmp_path``; a
    ``forkserver`` child imports it while it unpickles its target, before multiprocessing has
    set the child up (``parent_process()`` is None then), as it imports a script's main module."""
    import importlib

    (tmp_path / f"{name}.py").write_text(APPLICATION.format(path=str(tmp_path / "spans.jsonl")))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)  # and gone after the test
    module = importlib.import_module(name)
    tracing.shutdown()  # this process traces nothing: every line in the file is a child's
    return module


def _exported(tmp_path: Any, name: str) -> List[str]:
    import json

    path = tmp_path / "spans.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return [r["span_id"] for r in records if r["name"] == name]


forkserver = pytest.mark.skipif(
    "forkserver" not in __import__("multiprocessing").get_all_start_methods(),
    reason="no forkserver start method here")


@forkserver
def test_a_forkserver_child_that_configures_while_it_starts_flushes_at_exit(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import multiprocessing

    app = _application(tmp_path, monkeypatch, "app_forkserver_process")
    process = multiprocessing.get_context("forkserver").Process(target=app.work, args=(10,))
    process.start()
    process.join(60)
    assert process.exitcode == 0
    ids = _exported(tmp_path, "process-span")
    assert len(ids) == len(set(ids)) == 10


@forkserver
def test_forkserver_pool_workers_that_configure_while_they_start_flush_at_exit(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    app = _application(tmp_path, monkeypatch, "app_forkserver_pool")
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("forkserver"),
                             initializer=app.ready) as pool:
        list(pool.map(app.task, range(20), timeout=60))
    ids = _exported(tmp_path, "task-span")
    assert len(ids) == len(set(ids)) == 20
