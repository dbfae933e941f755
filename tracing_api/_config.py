"""``configure``, ``shutdown``, ``force_flush`` and ``stats``: the application's switchboard.

Settings come from the arguments first, then ``TRACING_*`` environment variables, then their
``OTEL_*`` equivalents, then the defaults. Every bad name or value raises one
``ConfigurationError`` here, naming the setting and what it accepts; nothing is checked later.
"""

from __future__ import annotations

import atexit
import threading
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from . import _plugins, _tracer
from ._pipeline import Pipeline
from ._processors import BatchProcessor, SimpleProcessor, counts_sum
from ._settings import env as _env
from ._settings import limits as _limits
from ._settings import number as _number
from ._settings import resource as _resource
from ._settings import setting as _setting
from ._span import Limits
from ._types import ConfigurationError
from .export import SpanExporter, SpanProcessor
from .propagation import CompositePropagator, Propagator
from .sampling import Sampler, from_name, parent_based
from .sampling import always_on as _always_on

ExporterSpec = Union[str, SpanExporter, Tuple[str, Mapping[str, Any]]]

_lock = threading.Lock()
_propagator: Optional[Propagator] = None
_atexit_registered = False
_shutdown_timeout = 5.0
# The ``testing.capture()`` blocks now open, innermost last, each as a maker of the processor
# that every pipeline ``configure`` builds meanwhile adds (it sends to the capture too), so a
# test keeps the spans of code that configures tracing itself (an application factory).
_captures: List[Callable[[], SpanProcessor]] = []


def push_capture(make_tap: Callable[[], SpanProcessor]) -> None:
    """Add ``make_tap()`` to every pipeline configured from now on (``testing.capture``)."""
    with _lock:
        _captures.append(make_tap)


def pop_capture(make_tap: Callable[[], SpanProcessor]) -> None:
    """Undo ``push_capture(make_tap)``."""
    with _lock:
        for index in range(len(_captures) - 1, -1, -1):
            if _captures[index] is make_tap:
                del _captures[index]
                break


def _split(value: Any) -> List[Any]:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, (list, tuple)) and not (
        len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], Mapping)
    ):
        return list(value)
    return [value]


def _make_exporters(
    spec: Any, source: str, options: Dict[str, Any]
) -> List[Tuple[SpanExporter, Optional[Callable[[], SpanExporter]]]]:
    items = _split(spec)
    named = [i for i in items if isinstance(i, str)]
    if options and len(named) != 1:
        raise ConfigurationError(
            f"exporter options {sorted(options)} need exactly one exporter named by string; "
            "with several, pass (name, {options}) pairs"
        )
    made: List[Tuple[SpanExporter, Optional[Callable[[], SpanExporter]]]] = []
    for item in items:
        if isinstance(item, str) and item.lower() == "none":
            continue
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            name, opts = item[0], dict(item[1])
        elif isinstance(item, str):
            name, opts = item, options
        elif isinstance(item, SpanExporter):
            made.append((item, None))
            continue
        else:
            raise ConfigurationError(
                f"{source}: expected an exporter name or an object with export(), force_flush() "
                f"and shutdown(), got {item!r}"
            )
        factory = _plugins.load(_plugins.EXPORTERS, name)

        def make(factory: Any = factory, name: str = name, opts: Dict[str, Any] = opts) -> Any:
            try:
                exporter = factory(**opts)
            except ConfigurationError:
                raise
            except (TypeError, ValueError) as exc:
                raise ConfigurationError(f"exporter {name!r}: {exc}") from exc
            if not isinstance(exporter, SpanExporter):
                raise ConfigurationError(f"exporter {name!r} made {exporter!r}, not an exporter")
            return exporter

        made.append((make(), make))
    return made


# OpenTelemetry's OTEL_SDK_DISABLED takes "true" or "false" in any case; 1/0, yes/no, on/off too.
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def _disabled() -> bool:
    """Whether ``TRACING_DISABLED`` (or ``OTEL_SDK_DISABLED``) turns tracing off."""
    found = _env("TRACING_DISABLED", "OTEL_SDK_DISABLED")
    if found is None or found[1].lower() in _FALSE:
        return False
    if found[1].lower() in _TRUE:
        return True
    raise ConfigurationError(
        f"{found[0]}: expected true or false (or 1/0, yes/no, on/off), got {found[1]!r}")


def _make_sampler(sampler: Any, arg: Any) -> Sampler:
    value, source = _setting(sampler, "sampler", "TRACING_SAMPLER", "OTEL_TRACES_SAMPLER")
    if value is None:
        return parent_based(_always_on())
    if isinstance(value, Sampler):
        return value
    if isinstance(value, str):
        try:  # the name alone first, so a bad name is blamed on the setting that holds it
            made = from_name(value)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{source}: {exc}") from None
        argument, arg_source = _setting(arg, "sampler_arg", "TRACING_SAMPLER_ARG",
                                        "OTEL_TRACES_SAMPLER_ARG")
        if argument is None:
            return made
        try:
            return from_name(value, str(argument))
        except ConfigurationError as exc:
            raise ConfigurationError(f"{arg_source}: {exc}") from None
    raise ConfigurationError(
        f"{source}: expected a sampler (tracing_api.sampling.ratio(0.1), ...) or its name, "
        f"got {value!r}"
    )


def make_propagator(spec: Any, source: str = "propagators") -> Propagator:
    """A composite propagator from names and/or propagator objects."""
    found: List[Propagator] = []
    for item in _split(spec):
        if isinstance(item, str):
            if item.lower() == "none":
                continue
            loaded = _plugins.load(_plugins.PROPAGATORS, item)
            item = loaded() if isinstance(loaded, type) else loaded
        if not isinstance(item, Propagator):
            raise ConfigurationError(
                f"{source}: expected a propagator name or an object with inject(), extract() "
                f"and fields, got {item!r}"
            )
        found.append(item)
    return CompositePropagator(found)


def configure(
    exporter: Union[ExporterSpec, Sequence[ExporterSpec], None] = None,
    *,
    service_name: Optional[str] = None,
    resource: Optional[Mapping[str, Any]] = None,
    sampler: Union[Sampler, str, None] = None,
    sampler_arg: Optional[str] = None,
    processor: Union[str, SpanProcessor, None] = None,
    propagators: Union[str, Sequence[Union[str, Propagator]], None] = None,
    limits: Optional[Limits] = None,
    max_queue_size: Optional[int] = None,
    max_export_batch_size: Optional[int] = None,
    schedule_delay: Optional[float] = None,
    shutdown_timeout: Optional[float] = None,
    **exporter_options: Any,
) -> None:
    """Turn tracing on for this process. Applications call this, once, at startup; libraries never do.

    ``exporter`` is an entry-point name (``"console"``, ``"zipkin"``, ...; its options are the
    extra keyword arguments), an exporter object, or a list of them (``(name, {options})`` pairs
    for several named ones). ``processor`` is ``"batch"`` (the default) or ``"simple"``, or a
    span processor of your own that receives every span instead of the exporters. Anything left
    out comes from the environment (``TRACING_*``, then ``OTEL_*``) or the defaults: the
    ``console`` exporter, ``parent_based(always_on())``, W3C trace context and baggage.
    Calling it again replaces the pipeline (the old one is flushed and shut down).
    Raises ``ConfigurationError`` for any bad setting, naming it.
    """
    global _propagator, _atexit_registered, _shutdown_timeout
    if _disabled():
        with _lock:
            old = _tracer.install(None)
        if old is not None:
            old.shutdown(_shutdown_timeout)
        return

    timeout = _number(shutdown_timeout, "shutdown_timeout", ["TRACING_SHUTDOWN_TIMEOUT"], 5.0,
                      integer=False)
    new_sampler = _make_sampler(sampler, sampler_arg)
    new_resource = _resource(service_name, resource)
    new_limits = _limits(limits)
    prop_value, prop_source = _setting(propagators, "propagators", "TRACING_PROPAGATORS",
                                       "OTEL_PROPAGATORS")
    new_propagator = make_propagator(
        "tracecontext,baggage" if prop_value is None else prop_value, prop_source
    )

    processors: List[SpanProcessor] = []
    if processor is not None and not isinstance(processor, str):
        given: object = processor  # from the application: checked, whatever its annotation
        if not isinstance(given, SpanProcessor):
            missing = [m for m in ("on_end", "force_flush", "shutdown", "stats")
                       if not callable(getattr(given, m, None))]
            raise ConfigurationError(
                f"configure(processor=...): expected 'batch', 'simple' or a span processor "
                f"(on_end, force_flush, shutdown, stats), got {processor!r}"
                + (f", which lacks {', '.join(missing)}" if missing else "")
            )
        if exporter is not None or exporter_options:
            raise ConfigurationError(
                "configure(processor=...) with a processor object takes no exporter: "
                "the processor receives every span"
            )
        processors.append(processor)
    else:
        kind, kind_source = _setting(processor, "processor", "TRACING_PROCESSOR")
        kind = "batch" if kind is None else str(kind).lower()
        if kind not in ("batch", "simple"):
            raise ConfigurationError(f"{kind_source}: expected 'batch' or 'simple', got {kind!r}")
        queue = _number(max_queue_size, "max_queue_size",
                        ["TRACING_BSP_MAX_QUEUE_SIZE", "OTEL_BSP_MAX_QUEUE_SIZE"], 32768, minimum=1)
        batch = _number(max_export_batch_size, "max_export_batch_size",
                        ["TRACING_BSP_MAX_EXPORT_BATCH_SIZE", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"],
                        512, minimum=1)
        delay = (
            _number(schedule_delay, "schedule_delay", [], 1.0, integer=False)
            if schedule_delay is not None
            else _number(None, "schedule_delay",
                         ["TRACING_BSP_SCHEDULE_DELAY", "OTEL_BSP_SCHEDULE_DELAY"], 1.0,
                         integer=False, scale=0.001)
        )
        spec, spec_source = _setting(exporter, "exporter", "TRACING_EXPORTER", "OTEL_TRACES_EXPORTER")
        for made, rebuild in _make_exporters("console" if spec is None else spec, spec_source,
                                             exporter_options):
            if kind == "simple":
                processors.append(SimpleProcessor(made, make_exporter=rebuild))
            else:
                processors.append(BatchProcessor(
                    made, max_queue_size=queue, max_export_batch_size=min(batch, queue),
                    schedule_delay=delay, make_exporter=rebuild,
                ))

    with _lock:
        if _captures:
            processors.append(_captures[-1]())
    pipeline = Pipeline(new_sampler, processors, new_resource, new_limits)
    with _lock:
        old = _tracer.install(pipeline)
        _propagator = new_propagator
        _shutdown_timeout = timeout
        if not _atexit_registered:
            atexit.register(_at_exit)
            _atexit_registered = True
    if old is not None:
        # A processor or exporter object handed to the new pipeline too (to change only the
        # sampler, say) stays open.
        old.shutdown(timeout, successor=pipeline)


def _at_exit() -> None:
    pipeline = _tracer.active()
    if pipeline is not None:
        pipeline.shutdown(_shutdown_timeout)


def propagator() -> Propagator:
    """The configured propagator (W3C trace context and baggage until ``configure``)."""
    global _propagator
    if _propagator is None:
        from .w3c import BaggagePropagator, TraceContextPropagator

        _propagator = CompositePropagator([TraceContextPropagator(), BaggagePropagator()])
    return _propagator


def set_propagator(value: Optional[Propagator]) -> Optional[Propagator]:
    """Replace the configured propagator; returns the previous one (for ``testing``)."""
    global _propagator
    previous, _propagator = _propagator, value
    return previous


def saved_settings() -> Tuple[Optional[Propagator], float]:
    """The propagator and shutdown timeout as set now, for ``restore_settings`` (``testing``)."""
    return _propagator, _shutdown_timeout


def restore_settings(saved: Tuple[Optional[Propagator], float]) -> None:
    """Put back what ``saved_settings`` returned."""
    global _propagator, _shutdown_timeout
    _propagator, _shutdown_timeout = saved


def shutdown(timeout: float = 5.0) -> bool:
    """Flush and stop the pipeline within ``timeout`` seconds; True if that finished in time.
    (Spans the backend refused are counted in ``stats()``: ``dropped`` and ``failed``.)

    Runs at interpreter exit too. Safe to call twice; spans ended afterwards are dropped and
    counted in ``stats()``.
    """
    pipeline = _tracer.active()
    return True if pipeline is None else pipeline.shutdown(timeout)


def force_flush(timeout: float = 5.0) -> bool:
    """Export every span ended so far, within ``timeout`` seconds; True if that finished in
    time. (Spans the backend refused are counted in ``stats()``: ``dropped`` and ``failed``.)"""
    pipeline = _tracer.active()
    return True if pipeline is None else pipeline.force_flush(timeout)


def stats() -> Dict[str, int]:
    """Span counts of the pipeline: ``ended``, ``exported``, ``dropped``, ``failed``, ``queued``.

    Every span ended is exported, dropped or still queued: ``ended == exported + dropped +
    queued``. ``failed`` counts the dropped spans whose export failed. With several exporters,
    each counts its own spans and the figures are their sums.
    """
    pipeline = _tracer.active()
    if pipeline is None:
        return counts_sum([])
    counts = []
    for processor in pipeline.processors:
        try:
            counts.append(processor.stats())
        except Exception:  # a processor of the application's: its figures are left out
            continue
    return counts_sum(counts)
