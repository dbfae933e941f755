"""atheris harness: ``tracing_api.extract`` with every installed propagator, any header bytes.

Run locally (atheris is not a project dependency; see docs/reliability.md)::

    python fuzz/fuzz_extract.py -atheris_runs=200000

A crash is any exception out of ``extract``/``inject``, or extracted state past the formats'
limits (baggage of 180 entries and 8,192 bytes, trace state of 32 members).
"""

from __future__ import annotations

import sys
from importlib.metadata import entry_points
from typing import Any, Dict, List

import atheris  # type: ignore[import-not-found,import-untyped,unused-ignore]

with atheris.instrument_imports():  # coverage feedback from the parsers themselves
    import tracing_api_propagation  # noqa: F401  # the plugin formats, if installed

    import tracing_api as tracing
    import tracing_api.propagation
    import tracing_api.w3c
    from tracing_api.testing import capture

_GROUP = entry_points().select(group="tracing_api.propagators")  # Python 3.10+
PROPAGATORS = [ep.load()() for ep in sorted(_GROUP, key=lambda ep: ep.name)]
KEYS = ["traceparent", "tracestate", "baggage", "b3", "x-b3-traceid", "x-b3-spanid",
        "x-b3-parentspanid", "x-b3-sampled", "x-b3-flags", "x-cloud-trace-context",
        "grpc-trace-bin", "uber-trace-id", "uberctx-user", "jaeger-baggage"]


def _value(data: Any) -> Any:
    kind = data.ConsumeIntInRange(0, 5)
    if kind == 0:
        return data.ConsumeBytes(data.ConsumeIntInRange(0, 512))
    if kind == 1:
        return data.ConsumeUnicodeNoSurrogates(data.ConsumeIntInRange(0, 512))
    if kind == 2:
        return data.ConsumeUnicode(data.ConsumeIntInRange(0, 64))
    if kind == 3:
        return [data.ConsumeUnicodeNoSurrogates(64) for _ in range(data.ConsumeIntInRange(0, 3))]
    if kind == 4:
        return data.ConsumeInt(8)
    return None


def one_input(raw: bytes) -> None:
    """Build a carrier from ``raw`` and extract it with every propagator."""
    data = atheris.FuzzedDataProvider(raw)
    headers: Dict[Any, Any] = {}
    for _ in range(data.ConsumeIntInRange(0, 8)):
        key = KEYS[data.ConsumeIntInRange(0, len(KEYS) - 1)] if data.ConsumeBool() \
            else data.ConsumeUnicodeNoSurrogates(16)
        headers[key] = _value(data)
    shape = data.ConsumeIntInRange(0, 2)
    carrier: Any = headers
    if shape == 1:
        carrier = list(headers.items())
    elif shape == 2:
        carrier = {"REQUEST_METHOD": "GET",
                   **{"HTTP_" + str(k).upper().replace("-", "_"): v for k, v in headers.items()}}
    context = tracing.extract(carrier)
    assert len(context.baggage) <= 180
    assert sum(len(k) + len(v) for k, v in context.baggage.items()) <= 8192
    assert len(context.span_context.trace_state) <= 32
    out: List[Any] = []
    tracing.inject(out, context=context)


def main() -> None:
    """Fuzz with all installed propagators configured at once."""
    with capture(propagators=PROPAGATORS):
        atheris.Setup(sys.argv, one_input)
        atheris.Fuzz()


if __name__ == "__main__":
    main()
