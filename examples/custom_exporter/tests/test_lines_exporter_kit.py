"""The example exporter: found by name through its entry point, and passing the kit."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator, List

import pytest

import tracing_api as tracing
from tracing_api import delivery
from tracing_api.testing import RecordingServer, check_exporter

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))
from tracing_api_lines import LinesExporter  # noqa: E402

FAST = delivery.RetryPolicy(initial_backoff=0.01, max_backoff=0.05, deadline=5.0)


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    with RecordingServer() as running:
        yield running


def span_ids(server: RecordingServer) -> List[str]:
    return [line.split(" ")[1] for r in server.requests
            for line in r.body.decode().splitlines()]


def test_lines_exporter_passes_the_kit(server: RecordingServer) -> None:
    check_exporter(lambda: LinesExporter(server.url, retry=FAST), received=lambda: span_ids(server))


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What `pip install -e examples/custom_exporter` leaves behind: metadata naming the entry
    point (taken from the example's own pyproject.toml) on the import path.
    """
    import tomllib

    project = tomllib.loads((HERE / "pyproject.toml").read_text("utf-8"))["project"]
    points = project["entry-points"]["tracing_api.exporters"]
    info = tmp_path / "tracing_api_lines-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\n"
                                   f"Version: {project['version']}\n")
    (info / "entry_points.txt").write_text(
        "[tracing_api.exporters]\n" + "".join(f"{k} = {v}\n" for k, v in points.items()))
    monkeypatch.syspath_prepend(str(tmp_path))


@pytest.mark.usefixtures("installed")
def test_lines_exporter_is_selected_by_name(server: RecordingServer) -> None:
    tracing.configure(exporter="lines", processor="simple", endpoint=server.url + "/spans")
    with tracing.get_tracer("example").span("hello") as span:
        span_id = span.context.span_id_hex
    tracing.shutdown()
    assert span_ids(server) == [span_id]
    assert server.requests[0].body.decode().rstrip().endswith(" hello")
