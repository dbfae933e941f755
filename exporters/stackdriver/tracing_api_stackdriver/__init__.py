"""Google Cloud Trace (Stackdriver) exporter for tracing-api.

Applications select it by name; it answers to ``stackdriver`` and ``cloud_trace``::

    import tracing_api as tracing

    tracing.configure(exporter="stackdriver", project_id="my-project")

Options (keyword arguments of ``configure`` or of ``exporter``): ``project_id``,
``credentials`` (a ``google.auth`` credentials object; Application Default Credentials when
left out), ``client`` (a ready ``google.cloud.trace_v2.TraceServiceClient``), ``timeout``
(seconds per call), ``retry`` (a ``tracing_api.delivery.RetryPolicy``: backoff and the total
deadline of one export), ``max_spans_per_request`` and ``max_request_bytes``. Spans are cut to
the Cloud Trace v2 API's limits (``Limits()``); ``CloudTraceExporter(project_id,
limits=Limits(...))`` sends within others.

Importing this package loads nothing from Google: the client library is imported when an
exporter is made.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Optional

from tracing_api import ConfigurationError

from . import _project

if TYPE_CHECKING:
    from tracing_api.delivery import RetryPolicy

    from ._exporter import CloudTraceExporter
    from ._mapping import Limits

__version__ = "0.1.0"

_MIN_REQUEST_BYTES = 64 * 1024  # room for one span at its limits' common sizes


def _positive(value: Any, name: str, *, integer: bool = False, minimum: float = 0.0) -> Any:
    ok = type(value) is int or (type(value) is float and not integer)
    if not ok or not value > minimum:  # also refuses NaN
        kind = "a whole number" if integer else "a number"
        raise ConfigurationError(f"exporter 'stackdriver': {name}: expected {kind} > {minimum}, "
                                 f"got {value!r}")
    return value


def exporter(
    *, project_id: Optional[str] = None, credentials: Any = None, client: Any = None,
    timeout: float = 10.0, retry: Optional[RetryPolicy] = None,
    max_spans_per_request: int = 1000, max_request_bytes: int = 4_000_000,
) -> CloudTraceExporter:
    """A Cloud Trace exporter: the ``stackdriver`` and ``cloud_trace`` entry points.

    The project id comes from ``project_id``, else ``GOOGLE_CLOUD_PROJECT``, else the
    credentials (the object given, or the Application Default Credentials' files). Nothing here
    touches the network: the client is made at the first export unless ``client`` is given.
    Raises ``ConfigurationError`` for a missing project id or a bad option.
    """
    from tracing_api.delivery import retry_setting

    if client is not None and not callable(getattr(client, "batch_write_spans", None)):
        raise ConfigurationError(
            f"exporter 'stackdriver': client: expected a google.cloud.trace_v2."
            f"TraceServiceClient, got {client!r}")
    if client is not None and inspect.iscoroutinefunction(client.batch_write_spans):
        # Export runs on a plain thread: a coroutine would never be awaited, nothing sent.
        raise ConfigurationError(
            f"exporter 'stackdriver': client: expected a google.cloud.trace_v2."
            f"TraceServiceClient, got an asynchronous client ({type(client).__name__}); "
            f"pass the synchronous one")
    policy = retry_setting(retry, "exporter 'stackdriver': retry")
    _positive(timeout, "timeout")
    _positive(max_spans_per_request, "max_spans_per_request", integer=True)
    _positive(max_request_bytes, "max_request_bytes", integer=True,
              minimum=_MIN_REQUEST_BYTES - 1)
    project, _ = _project.resolve(project_id, credentials)
    try:
        from ._exporter import CloudTraceExporter
    except ImportError as exc:
        raise ConfigurationError(
            f"exporter 'stackdriver' needs google-cloud-trace: pip install "
            f'"tracing-api[stackdriver]" ({exc})') from exc
    return CloudTraceExporter(
        project, client=client, credentials=credentials, timeout=float(timeout),
        retry=policy,
        max_spans_per_request=int(max_spans_per_request),
        max_request_bytes=int(max_request_bytes),
    )


def __getattr__(name: str) -> Any:
    # The class lives with the Google imports; load it only when asked for by name.
    if name == "CloudTraceExporter":
        from ._exporter import CloudTraceExporter

        return CloudTraceExporter
    if name == "Limits":
        from ._mapping import Limits

        return Limits
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CloudTraceExporter", "Limits", "__version__", "exporter"]
