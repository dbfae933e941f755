"""Log correlation: trace and span ids, and the Google Cloud Logging fields, on log records."""

from __future__ import annotations

import io
import json
import logging
import threading
from typing import Any, Iterator, List

import pytest

import tracing_api
from tracing_api import logs
from tracing_api.testing import CapturedSpans

tracer = tracing_api.get_tracer(__name__)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: List[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    log = logging.getLogger(f"test_logs.{id(object())}")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    handler = _Collect()
    log.addHandler(handler)
    try:
        yield log
    finally:
        logs.uncorrelate(log)
        logs.uncorrelate()
        log.removeHandler(handler)


def _records(log: logging.Logger) -> List[logging.LogRecord]:
    handler = log.handlers[0]
    assert isinstance(handler, _Collect)
    return handler.records


@pytest.fixture(autouse=True)
def _no_project_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT", "GCP_PROJECT"):
        monkeypatch.delenv(name, raising=False)


def test_filter_adds_ids_of_current_span(trace_capture: CapturedSpans, logger: logging.Logger) -> None:
    logs.correlate(logger)
    with tracer.span("work") as span:
        logger.info("inside")
    record = _records(logger)[0]
    assert record.__dict__["trace_id"] == span.context.trace_id_hex
    assert record.__dict__["span_id"] == span.context.span_id_hex
    assert record.__dict__["trace_sampled"] is True


def test_filter_adds_google_cloud_fields_with_project(
    trace_capture: CapturedSpans, logger: logging.Logger
) -> None:
    logs.correlate(logger, project_id="my-project")
    with tracer.span("work") as span:
        logger.info("inside")
    fields = _records(logger)[0].__dict__
    assert fields[logs.GCP_TRACE] == f"projects/my-project/traces/{span.context.trace_id_hex}"
    assert fields[logs.GCP_SPAN_ID] == span.context.span_id_hex
    assert fields[logs.GCP_TRACE_SAMPLED] is True


def test_google_trace_field_is_bare_trace_id_without_project(
    trace_capture: CapturedSpans, logger: logging.Logger
) -> None:
    logs.correlate(logger)
    with tracer.span("work") as span:
        logger.info("inside")
    assert _records(logger)[0].__dict__[logs.GCP_TRACE] == span.context.trace_id_hex


def test_project_id_is_read_from_environment(
    trace_capture: CapturedSpans, logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "env-project")
    logs.correlate(logger)
    with tracer.span("work") as span:
        logger.info("inside")
    trace = _records(logger)[0].__dict__[logs.GCP_TRACE]
    assert trace == f"projects/env-project/traces/{span.context.trace_id_hex}"


def test_outside_a_span_fields_are_empty_and_not_sampled(logger: logging.Logger) -> None:
    logs.correlate(logger, project_id="p")
    logger.info("outside")
    record = _records(logger)[0]
    fields = record.__dict__
    assert (fields["trace_id"], fields["span_id"], fields["trace_sampled"]) == ("", "", False)
    assert record.__dict__[logs.GCP_TRACE] == ""


def test_unsampled_span_reports_ids_and_sampled_false(logger: logging.Logger) -> None:
    from tracing_api import sampling
    from tracing_api.testing import capture

    logs.correlate(logger)
    with capture(sampler=sampling.always_off()), tracer.span("work") as span:
        logger.info("inside")
    record = _records(logger)[0]
    assert record.__dict__["trace_id"] == span.context.trace_id_hex
    assert record.__dict__["trace_sampled"] is False


def test_value_passed_in_extra_is_kept(trace_capture: CapturedSpans, logger: logging.Logger) -> None:
    logs.correlate(logger)
    with tracer.span("work"):
        logger.info("inside", extra={"trace_id": "mine"})
    assert _records(logger)[0].__dict__["trace_id"] == "mine"


def test_correlate_twice_adds_one_filter(logger: logging.Logger) -> None:
    first = logs.correlate(logger)
    second = logs.correlate(logger, project_id="later")
    assert first is second
    assert sum(isinstance(f, logs.TraceContextFilter) for f in logger.filters) == 1
    assert second is not None
    assert second.project_id == "later"


def test_handler_filter_annotates_records_from_child_loggers(
    trace_capture: CapturedSpans, logger: logging.Logger
) -> None:
    logs.correlate(logger)
    child = logging.getLogger(logger.name + ".child")
    with tracer.span("work") as span:
        child.warning("from child")
    assert _records(logger)[0].__dict__["span_id"] == span.context.span_id_hex


def test_format_string_with_ids_works_outside_spans(logger: logging.Logger) -> None:
    logs.correlate(logger)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("[%(trace_id)s/%(span_id)s] %(message)s"))
    logger.addHandler(handler)
    try:
        logger.info("plain")
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue() == "[/] plain\n"


def test_global_correlate_annotates_every_logger(trace_capture: CapturedSpans) -> None:
    collect = _Collect()
    other = logging.getLogger("test_logs.unrelated")
    other.addHandler(collect)
    other.propagate = False
    logs.correlate(project_id="p")
    try:
        with tracer.span("work") as span:
            other.error("anywhere")
    finally:
        logs.uncorrelate()
        other.removeHandler(collect)
    fields = collect.records[0].__dict__
    assert fields["span_id"] == span.context.span_id_hex
    assert fields[logs.GCP_TRACE] == f"projects/p/traces/{span.context.trace_id_hex}"


def test_global_correlate_uses_logging_thread_context(trace_capture: CapturedSpans) -> None:
    """The ids are those of the thread that logs, even when another thread formats."""
    collect = _Collect()
    other = logging.getLogger("test_logs.threads")
    other.addHandler(collect)
    other.propagate = False
    logs.correlate()
    seen = {}
    try:
        def work() -> None:
            with tracer.span("in-thread") as span:
                seen["span"] = span.context.span_id_hex
                other.error("from thread")

        with tracer.span("main"):
            thread = threading.Thread(target=work)
            thread.start()
            thread.join(10)
    finally:
        logs.uncorrelate()
        other.removeHandler(collect)
    assert collect.records[0].__dict__["span_id"] == seen["span"]


def test_uncorrelate_restores_make_record() -> None:
    before = logging.Logger.__dict__["makeRecord"]
    logs.correlate()
    logs.uncorrelate()
    assert logging.Logger.__dict__["makeRecord"] is before


@pytest.fixture
def other() -> Iterator[_Collect]:
    """A logger of its own, its records collected; every global change undone afterwards."""
    collect = _Collect()
    log = logging.getLogger("test_logs.other")
    log.addHandler(collect)
    log.propagate = False
    log.setLevel(logging.DEBUG)
    factory = logging.getLogRecordFactory()
    make_record = logging.Logger.__dict__["makeRecord"]
    try:
        yield collect
    finally:
        logs.uncorrelate()
        logging.setLogRecordFactory(factory)
        logging.Logger.makeRecord = make_record  # type: ignore[method-assign]
        log.removeHandler(collect)


_FIELDS = ["trace_id", "span_id", "trace_sampled", logs.GCP_TRACE, logs.GCP_SPAN_ID,
           logs.GCP_TRACE_SAMPLED]


@pytest.mark.parametrize("field", _FIELDS)
def test_global_correlate_keeps_a_field_passed_in_extra(
    trace_capture: CapturedSpans, other: _Collect, field: str
) -> None:
    logs.correlate()
    with tracer.span("work"):
        logging.getLogger("test_logs.other").info("hello", extra={field: "mine"})
    assert other.records[0].__dict__[field] == "mine"


def test_global_correlate_adds_the_other_fields_beside_one_passed_in_extra(
    trace_capture: CapturedSpans, other: _Collect
) -> None:
    logs.correlate(project_id="p")
    with tracer.span("work") as span:
        logging.getLogger("test_logs.other").info("hello", extra={"trace_id": "mine"})
    fields = other.records[0].__dict__
    assert fields["span_id"] == span.context.span_id_hex
    assert fields[logs.GCP_TRACE] == f"projects/p/traces/{span.context.trace_id_hex}"


def test_global_correlate_adds_the_other_fields_beside_both_trace_fields_passed_in_extra(
    trace_capture: CapturedSpans, other: _Collect
) -> None:
    logs.correlate()
    with tracer.span("work") as span:
        logging.getLogger("test_logs.other").info(
            "hello", extra={"trace_id": "mine", logs.GCP_TRACE: "projects/p/traces/mine"}
        )
    fields = other.records[0].__dict__
    assert (fields["trace_id"], fields[logs.GCP_TRACE]) == ("mine", "projects/p/traces/mine")
    assert fields["span_id"] == fields[logs.GCP_SPAN_ID] == span.context.span_id_hex
    assert fields["trace_sampled"] is fields[logs.GCP_TRACE_SAMPLED] is True


def test_filter_adds_the_other_fields_beside_both_trace_fields_passed_in_extra(
    trace_capture: CapturedSpans, logger: logging.Logger
) -> None:
    logs.correlate(logger)
    with tracer.span("work") as span:
        logger.info("inside", extra={"trace_id": "mine", logs.GCP_TRACE: "mine"})
    fields = _records(logger)[0].__dict__
    assert fields["trace_id"] == "mine"
    assert fields["span_id"] == fields[logs.GCP_SPAN_ID] == span.context.span_id_hex


def test_global_correlate_formats_a_trace_id_passed_in_extra(other: _Collect) -> None:
    logs.correlate()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(trace_id)s|%(span_id)s %(message)s"))
    log = logging.getLogger("test_logs.other")
    log.addHandler(handler)
    try:
        log.warning("hello", extra={"trace_id": "mine"})
    finally:
        log.removeHandler(handler)
    assert stream.getvalue() == "mine| hello\n"


def test_second_correlate_after_another_record_factory_does_not_recurse(other: _Collect) -> None:
    logs.correlate()
    inner = logging.getLogRecordFactory()

    def another_library(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = inner(*args, **kwargs)
        record.other = 1
        return record

    logging.setLogRecordFactory(another_library)
    logs.correlate()
    logging.getLogger("test_logs.other").warning("hello")
    assert other.records[0].__dict__["other"] == 1
    assert other.records[0].__dict__["trace_id"] == ""


def test_second_correlate_after_another_make_record_wrapper_does_not_recurse(
    other: _Collect,
) -> None:
    logs.correlate()
    inner = logging.Logger.makeRecord

    def another_library(self: logging.Logger, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = inner(self, *args, **kwargs)
        record.other = 1
        return record

    logging.Logger.makeRecord = another_library  # type: ignore[method-assign]
    logs.correlate()
    logging.getLogger("test_logs.other").warning("hello")
    assert other.records[0].__dict__["other"] == 1
    assert other.records[0].__dict__["trace_id"] == ""


def test_second_correlate_changes_the_project_id(
    trace_capture: CapturedSpans, other: _Collect
) -> None:
    logs.correlate(project_id="first")
    logs.correlate(project_id="second")
    with tracer.span("work") as span:
        logging.getLogger("test_logs.other").warning("hello")
    expected = f"projects/second/traces/{span.context.trace_id_hex}"
    assert other.records[0].__dict__[logs.GCP_TRACE] == expected


def test_correlate_wraps_again_after_another_library_replaced_make_record(
    trace_capture: CapturedSpans, other: _Collect
) -> None:
    original = logging.Logger.__dict__["makeRecord"]
    logs.correlate()
    logs.uncorrelate()
    logs.correlate()
    logging.Logger.makeRecord = original  # type: ignore[method-assign]  # ours dropped without being called
    logs.correlate()
    with tracer.span("work") as span:
        logging.getLogger("test_logs.other").warning("hello")
    assert other.records[0].__dict__["trace_id"] == span.context.trace_id_hex


def test_uncorrelate_under_another_wrapper_stops_adding_fields(other: _Collect) -> None:
    logs.correlate()
    inner = logging.Logger.makeRecord

    def another_library(self: logging.Logger, *args: Any, **kwargs: Any) -> logging.LogRecord:
        return inner(self, *args, **kwargs)

    logging.Logger.makeRecord = another_library  # type: ignore[method-assign]
    logs.uncorrelate()
    logging.getLogger("test_logs.other").warning("hello")
    assert logging.Logger.__dict__["makeRecord"] is another_library
    assert "trace_id" not in other.records[0].__dict__


def test_fields_serialise_to_json(trace_capture: CapturedSpans, logger: logging.Logger) -> None:
    logs.correlate(logger, project_id="p")
    with tracer.span("work"):
        logger.info("inside")
    fields = _records(logger)[0].__dict__
    line = json.dumps({k: fields[k] for k in (logs.GCP_TRACE, logs.GCP_SPAN_ID, logs.GCP_TRACE_SAMPLED)})
    assert json.loads(line)[logs.GCP_TRACE_SAMPLED] is True
