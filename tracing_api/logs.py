"""Logs that join traces: the current trace and span ids on every ``logging`` record.

One line at startup turns it on for every logger::

    import tracing_api.logs

    tracing_api.logs.correlate(project_id="my-project")   # project_id only for Google Cloud
    logging.basicConfig(format="%(levelname)s [%(trace_id)s/%(span_id)s] %(message)s")

Each record gets ``trace_id`` (32 hex digits), ``span_id`` (16 hex digits) and ``trace_sampled``
(a bool), and the field names Google Cloud Logging reads from a structured (JSON) log line:
``logging.googleapis.com/trace`` (``projects/PROJECT/traces/TRACE_ID`` when a project id is
known, else the bare trace id), ``logging.googleapis.com/spanId`` and
``logging.googleapis.com/trace_sampled``. Outside a span the ids are empty strings and
``trace_sampled`` is False, so format strings never fail. A value the application passed itself
(``extra={"trace_id": ...}``, or any of the other fields) is kept, and the others are still added.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any, Callable, Optional, Union

from .context import current_span

GCP_TRACE = "logging.googleapis.com/trace"
GCP_SPAN_ID = "logging.googleapis.com/spanId"
GCP_TRACE_SAMPLED = "logging.googleapis.com/trace_sampled"

_FIELDS = ("trace_id", "span_id", "trace_sampled", GCP_TRACE, GCP_SPAN_ID, GCP_TRACE_SAMPLED)

_PROJECT_VARIABLES = ("GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT", "GCP_PROJECT")


def _project_from_environment() -> Optional[str]:
    for name in _PROJECT_VARIABLES:
        value = os.environ.get(name)
        if value:
            return value
    return None


class TraceContextFilter(logging.Filter):
    """Adds the current trace context to every record it sees; never drops a record.

    ``project_id`` (or, when None, the ``GOOGLE_CLOUD_PROJECT`` environment variable) makes
    the Google Cloud trace field the full resource name Cloud Logging links to Cloud Trace.
    """

    def __init__(self, project_id: Optional[str] = None) -> None:
        super().__init__()
        self.project_id = project_id if project_id is not None else _project_from_environment()

    def filter(self, record: logging.LogRecord) -> bool:
        """Add the fields to ``record`` (keeping any it already has); always True."""
        annotate(record, self.project_id)
        return True


def annotate(record: logging.LogRecord, project_id: Optional[str] = None) -> None:
    """Add the current trace context to ``record``; never raises."""
    fields = record.__dict__
    if "trace_id" in fields and all(name in fields for name in _FIELDS):
        # Nothing to add: done already (a filter on both a logger and its handler), or every
        # field set by the caller. Any one missing is added below, beside the caller's.
        return
    try:
        context = current_span().context
        if context.is_valid:
            trace_id = context.trace_id_hex
            span_id = context.span_id_hex
            sampled = context.sampled
        else:
            trace_id = span_id = ""
            sampled = False
    except Exception:  # a record must be logged even if the context is unreadable
        trace_id = span_id = ""
        sampled = False
    fields.setdefault("trace_id", trace_id)
    fields.setdefault("span_id", span_id)
    fields.setdefault("trace_sampled", sampled)
    if trace_id and project_id:
        fields.setdefault(GCP_TRACE, f"projects/{project_id}/traces/{trace_id}")
    else:
        fields.setdefault(GCP_TRACE, trace_id)
    fields.setdefault(GCP_SPAN_ID, span_id)
    fields.setdefault(GCP_TRACE_SAMPLED, sampled)


_lock = threading.Lock()
_project: Optional[str] = None
# Whether records are annotated: ``uncorrelate`` clears it when something else has wrapped
# ``makeRecord`` over ours, so ours stays in that chain as a pass-through.
_active = False
# Whether ours is (or was, until unlinked) ``Logger.makeRecord``, and what it wraps.
_installed = False
_wrapped: Callable[..., logging.LogRecord] = logging.Logger.makeRecord


def _make_record(self: logging.Logger, *args: Any, **kwargs: Any) -> logging.LogRecord:
    # Runs after the wrapped makeRecord has applied ``extra``, so the application's own values
    # stay (``annotate`` only fills what is absent) and ``extra`` never collides with ours, as
    # it would with fields set by a log-record factory, before ``extra``.
    record = _wrapped(self, *args, **kwargs)
    if _active:
        annotate(record, _project)
    return record


def _in_chain() -> bool:
    """Whether ``Logger.makeRecord`` still reaches ours (another library may have replaced it
    without calling what was there); called with ``_active`` set, so ours adds the fields.
    """
    if logging.Logger.__dict__.get("makeRecord") is _make_record:
        return True
    try:
        probe = logging.Logger.makeRecord(logging.root, __name__, logging.DEBUG, __file__, 0,
                                          "probe", (), None)
    except Exception:  # a wrapper that cannot be probed: assume ours is still under it
        return True
    return GCP_TRACE in probe.__dict__


def correlate(
    logger: Union[logging.Logger, str, None] = None, project_id: Optional[str] = None
) -> Optional[TraceContextFilter]:
    """Add the trace context to log records; call once at startup. Calling again is harmless.

    Without ``logger``, every record of every logger gets the fields when it is made, on the
    thread that logs it (so a ``QueueHandler`` passes the right ids on); returns None. With a
    ``logger`` (or its name), a ``TraceContextFilter`` is added to it and to each of its
    handlers (a handler also sees records propagated from child loggers); returns the filter.
    Calling again only changes ``project_id``.
    """
    global _project, _active, _installed, _wrapped
    if project_id is None:
        project_id = _project_from_environment()
    if logger is None:
        with _lock:
            _project = project_id
            _active = True
            # Installed once: wrapping again (after another library wrapped ours) would make
            # ours call itself through that library's wrapper, once per log call, forever.
            if not _installed or not _in_chain():
                _wrapped = logging.Logger.makeRecord
                logging.Logger.makeRecord = _make_record  # type: ignore[method-assign]
                _installed = True
        return None
    if isinstance(logger, str):
        logger = logging.getLogger(logger)
    installed = next((f for f in logger.filters if isinstance(f, TraceContextFilter)), None)
    log_filter = installed or TraceContextFilter(project_id)
    log_filter.project_id = project_id
    for target in (logger, *logger.handlers):
        if not any(isinstance(f, TraceContextFilter) for f in target.filters):
            target.addFilter(log_filter)
    return log_filter


def uncorrelate(logger: Union[logging.Logger, str, None] = None) -> None:
    """Undo ``correlate`` for ``logger`` (or, without one, for every record)."""
    global _active, _installed
    if logger is None:
        with _lock:
            _active = False
            # Unlinked only when ours is outermost; under another library's wrapper it stays,
            # doing nothing, since that wrapper calls it directly.
            if _installed and logging.Logger.__dict__.get("makeRecord") is _make_record:
                logging.Logger.makeRecord = _wrapped  # type: ignore[method-assign]
                _installed = False
        return
    if isinstance(logger, str):
        logger = logging.getLogger(logger)
    for target in (logger, *logger.handlers):
        for f in [f for f in target.filters if isinstance(f, TraceContextFilter)]:
            target.removeFilter(f)


__all__ = [
    "GCP_SPAN_ID",
    "GCP_TRACE",
    "GCP_TRACE_SAMPLED",
    "TraceContextFilter",
    "annotate",
    "correlate",
    "uncorrelate",
]
