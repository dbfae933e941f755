"""Our processors across ``os.fork()`` and multiprocessing, and the export lock they share.

Every live processor is known here: a forked child resets each one (fresh locks, an empty queue,
a new worker), and a multiprocessing child, which leaves through ``os._exit``, flushes at its
exit through multiprocessing's own finalizers. Processors sending to the same exporter object
share one lock around ``export``, so that the exporter is called from one thread at a time.
"""

from __future__ import annotations

import os
import sys
import threading
import weakref
from typing import Any, Tuple

from . import _log


class ExportLock:
    """The lock held around one exporter's ``export()``, and which thread holds it.

    A span can end on the thread that holds it, in the middle of the export (the GC finalizing
    a traced generator, an exporter tracing its own HTTP calls): a simple processor reads
    ``owner`` to drop that span rather than wait for its own thread (or re-enter the exporter).
    """

    __slots__ = ("lock", "owner")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.owner = 0  # the ident of the thread exporting under ``lock``; 0 when none is


_live_processors: weakref.WeakSet[Any] = weakref.WeakSet()
_export_locks: weakref.WeakKeyDictionary[Any, Tuple[int, ExportLock]] = (
    weakref.WeakKeyDictionary())  # each processor's export lock, and the process it is for
_live_lock = threading.Lock()  # for changing and reading the two from any thread
_fork_hook_installed = False
_bootstrap_hook_registered = False  # in multiprocessing's after-fork registry (forks inherit it)


def _after_fork_in_child() -> None:
    global _live_lock
    _live_lock = threading.Lock()  # a thread of the parent may have held it
    for processor in list(_live_processors):
        processor._reset_after_fork()
    _flush_at_exit_of_multiprocessing_children()


def _flush_at_exit_of_multiprocessing_children() -> None:
    """Have a process that multiprocessing starts from here (or is starting now) flush at exit.

    A multiprocessing child leaves through ``os._exit``, which skips ``atexit`` (and so the
    flush at exit), after running multiprocessing's own finalizers: the flush goes there too.
    ``Process._bootstrap`` clears the finalizers made before it (inherited ones, and those of a
    ``configure()`` that ran while a forkserver or spawn child imported the main module or
    unpickled its target, when ``parent_process()`` is still None), then runs the after-fork
    hooks: this one registers the finalizer. (multiprocessing not loaded: a child it starts
    has it loaded when it configures, or when it forks from here, and registers it then.)
    """
    global _bootstrap_hook_registered
    mp_util = sys.modules.get("multiprocessing.util")
    if _bootstrap_hook_registered or mp_util is None:
        return
    try:
        mp_util.register_after_fork(_FORK_MARK, _flush_at_multiprocessing_exit)
        _bootstrap_hook_registered = True
    except Exception:
        _log.warn("fork", "could not arrange a flush at the child's exit", exc_info=True)


class _ForkMark:
    """A key for multiprocessing's after-fork registry (it holds its keys weakly)."""


_FORK_MARK = _ForkMark()


_finalizer_pid = 0  # the process whose multiprocessing exit flushes (one finalizer each)


def _flush_at_multiprocessing_exit(mark: object = None) -> None:
    global _finalizer_pid
    if _finalizer_pid == os.getpid():
        return
    import multiprocessing.util

    multiprocessing.util.Finalize(None, _shutdown_at_child_exit, exitpriority=0)
    _finalizer_pid = os.getpid()


def _in_multiprocessing_child() -> bool:
    multiprocessing = sys.modules.get("multiprocessing")
    try:
        return multiprocessing is not None and multiprocessing.parent_process() is not None
    except Exception:
        return False


def _shutdown_at_child_exit() -> None:
    from . import _config

    _config._at_exit()


def watch_forks(processor: Any) -> None:
    """Have ``processor._reset_after_fork()`` run in every child forked from now on."""
    global _fork_hook_installed
    with _live_lock:
        _live_processors.add(processor)
    if not _fork_hook_installed and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _fork_hook_installed = True
    _flush_at_exit_of_multiprocessing_children()
    if _finalizer_pid != os.getpid() and _in_multiprocessing_child():
        # Configured in a multiprocessing child once it runs: flush at its exit all the same.
        try:
            _flush_at_multiprocessing_exit()
        except Exception:
            _log.warn("fork", "could not arrange a flush at the child's exit", exc_info=True)


def export_lock_for(processor: Any) -> ExportLock:
    """The lock that ``processor`` is to hold around ``processor.exporter.export()``: the one
    of another of our processors sending to the same exporter object (a pipeline and the one
    replacing it, say), so that export is called from one thread at a time; else a new one.
    Only a lock handed out in this process is shared: after a fork, a thread of the parent
    may hold one, and every processor asks again."""
    pid = os.getpid()
    exporter = processor.exporter
    with _live_lock:
        shared = [lock for other, (other_pid, lock) in list(_export_locks.items())
                  if other_pid == pid and other is not processor and other.exporter is exporter]
        lock = shared[0] if shared else ExportLock()
        _export_locks[processor] = (pid, lock)
    return lock
