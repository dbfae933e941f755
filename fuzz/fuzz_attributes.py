"""atheris harness: span attributes, events, links and names built from any bytes.

Run locally (see docs/reliability.md)::

    python fuzz/fuzz_attributes.py -atheris_runs=200000

A crash is an exception out of the span API or out of an exporter's encoder (Zipkin JSON, OTLP
protobuf and JSON), or a kept value that is not a valid attribute value.
"""

from __future__ import annotations

import sys
from typing import Any, Dict

import atheris  # type: ignore[import-not-found,import-untyped,unused-ignore]

with atheris.instrument_imports():
    from tracing_api_otlp import encode_json, encode_protobuf
    from tracing_api_zipkin import encode_spans

    import tracing_api as tracing
    from tracing_api.testing import capture

tracer = tracing.get_tracer("fuzz")
VALID_TYPES = (str, bool, int, float, tuple)


def _value(data: Any, depth: int = 0) -> Any:
    kind = data.ConsumeIntInRange(0, 9)
    if kind == 0:
        return data.ConsumeUnicode(data.ConsumeIntInRange(0, 256))
    if kind == 1:
        return data.ConsumeInt(data.ConsumeIntInRange(1, 12))  # beyond int64 too
    if kind == 2:
        return data.ConsumeRegularFloat() if data.ConsumeBool() else data.ConsumeFloat()
    if kind == 3:
        return data.ConsumeBool()
    if kind == 4:
        return data.ConsumeBytes(16)
    if kind == 5 and depth < 3:
        return [_value(data, depth + 1) for _ in range(data.ConsumeIntInRange(0, 4))]
    if kind == 6 and depth < 3:
        return tuple(_value(data, depth + 1) for _ in range(data.ConsumeIntInRange(0, 4)))
    if kind == 7 and depth < 3:
        return {data.ConsumeUnicode(4): _value(data, depth + 1)}
    if kind == 8:
        return "x" * data.ConsumeIntInRange(0, 100_000)
    return None


def one_input(raw: bytes) -> None:
    """A span written with values from ``raw``, then encoded by every exporter."""
    data = atheris.FuzzedDataProvider(raw)
    attributes: Dict[Any, Any] = {data.ConsumeUnicode(8): _value(data)
                                  for _ in range(data.ConsumeIntInRange(0, 8))}
    name = data.ConsumeUnicode(32)
    with capture(limits=tracing.Limits(value_length=1024)) as spans, \
            tracer.span(name, attributes=attributes) as span:
        for _ in range(data.ConsumeIntInRange(0, 8)):
            span.set_attribute(data.ConsumeUnicode(8), _value(data))
        span.add_event(data.ConsumeUnicode(16), attributes)
        span.add_link(tracing.SpanContext(data.ConsumeIntInRange(0, 2**128 - 1),
                                          data.ConsumeIntInRange(0, 2**64 - 1), 1), attributes)
        span.set_status(tracing.StatusCode.ERROR, data.ConsumeUnicode(32))
    for record in spans:
        for value in record.attributes.values():
            assert isinstance(value, VALID_TYPES), value
        encode_spans([record], None)
        encode_protobuf([record])
        encode_json([record])


def main() -> None:
    """Fuzz the span API and the encoders."""
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
