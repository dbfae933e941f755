"""OpenCensus binary trace context in gRPC metadata: ``grpc-trace-bin``.

What Go and Java services instrumented with OpenCensus send and read. The value (version 0)::

    00                                  version
    00 <16 bytes trace id>              field 0
    01 <8 bytes span id>                field 1
    02 <1 byte options, bit 0 sampled>  field 2 (optional: defaults to not sampled)

Fields come in field-id order; reading stops at the first unknown field id (newer fields are
appended), which is not an error. Another version, a first field other than the trace id, a
field cut short, or a zero id yields no context, and so does a trace id without a span id (there
is no parent to continue). Only the first 29 bytes are ever looked at.

The value is ``bytes``: in gRPC metadata a ``-bin`` key must carry bytes, and the gRPC library
base64-encodes it on the wire. When a carrier hands over text instead (an HTTP server that sees
the wire form), the value is read as base64, standard or URL-safe alphabet, padding optional. A
value that starts with a zero byte/character is taken as the raw form, since base64 never
contains one (a carrier that decodes header bytes as Latin-1 gives the raw form back as text).
``GrpcBinaryPropagator(base64=True)`` writes the base64 text instead, for carriers that only
take text.

The format has no debug flag and no "no decision": debug is written as sampled, deferred as not
sampled. A Python grpcio server never shows ``grpc-trace-bin`` to interceptors, so send
``traceparent`` as well when the receiver may be a Python service.
"""

from __future__ import annotations

import binascii
from struct import Struct
from typing import Any, Optional, Tuple, Union

from tracing_api import SpanContext, TraceState
from tracing_api.context import Context
from tracing_api.propagation import Getter, Setter, first_value, remote_span_context

HEADER = "grpc-trace-bin"
_NO_STATE = TraceState()
_TRACE_ID_MAX = (1 << 128) - 1
_LOW_64 = (1 << 64) - 1
# version, trace-id field (id, high, low), span-id field (id, span), options field (id, options)
_FULL = Struct(">BBQQBQBB")
_TRACE = Struct(">QQ")
_SPAN = Struct(">Q")
_LENGTH = _FULL.size  # 29
_BASE64_READ = 40  # base64 characters that hold the first 29 bytes (and one more)
_URL_SAFE = str.maketrans("-_", "+/")


def parse(data: bytes) -> Optional[SpanContext]:
    """The remote span context in a binary ``grpc-trace-bin`` value, or None."""
    if len(data) < 27 or data[0] != 0 or data[1] != 0 or data[18] != 1:
        return None
    high, low = _TRACE.unpack_from(data, 2)
    (span_id,) = _SPAN.unpack_from(data, 19)
    trace_id = high << 64 | low
    if not trace_id or not span_id:
        return None
    flags = 0
    if len(data) > 27 and data[27] == 2:  # any other field id there is a newer field: ignored
        if len(data) < _LENGTH:
            return None
        flags = data[28] & 0x01
    return remote_span_context(trace_id, span_id, flags, _NO_STATE)


def decode(value: Union[str, bytes]) -> Optional[bytes]:
    """The binary form of a header value: bytes as given, text read as base64; None if neither."""
    if isinstance(value, bytes):
        if value[:1] == b"\x00":
            return value[:_LENGTH]
        value = value[: _BASE64_READ + 8].decode("latin-1")
    elif value[:1] == "\x00":
        return value[:_LENGTH].encode("latin-1", "replace")
    # Surrounding whitespace is not part of the value; a little of it is allowed for. Base64
    # has no comma: one is where a WSGI server joined a repeated header, and the first wins.
    chunk = value[: _BASE64_READ + 8]
    if "," in chunk:
        chunk = chunk[: chunk.index(",")]
    chunk = chunk.strip()[:_BASE64_READ]
    if "-" in chunk or "_" in chunk:  # URL-safe alphabet (translate() costs a microsecond)
        chunk = chunk.translate(_URL_SAFE)
    try:
        return binascii.a2b_base64(chunk + "=" * (-len(chunk) % 4))
    except (binascii.Error, ValueError):
        return None


def encode(span_context: SpanContext) -> bytes:
    """The 29-byte value for a valid ``span_context``."""
    trace_id = span_context.trace_id
    sampled = 1 if span_context.trace_flags & 0x01 or span_context.debug else 0
    return _FULL.pack(0, 0, trace_id >> 64, trace_id & _LOW_64, 1, span_context.span_id, 2, sampled)


def _is_grpc_metadata(carrier: Any) -> bool:
    """Whether ``carrier`` looks like gRPC metadata: a list of pairs with text names (ASGI's
    header pairs have bytes names; HTTP header objects and dicts are not lists).
    """
    if not isinstance(carrier, list):
        return False
    try:
        return not carrier or isinstance(carrier[0][0], str)
    except (TypeError, IndexError, KeyError):
        return False


class GrpcBinaryPropagator:
    """OpenCensus ``grpc-trace-bin`` (gRPC metadata). ``base64=True`` writes text, not bytes."""

    fields: Tuple[str, ...] = (HEADER,)

    def __init__(self, base64: bool = False) -> None:
        self.base64 = base64

    def inject(self, context: Context, carrier: Any, setter: Setter) -> None:
        """Write ``grpc-trace-bin`` for a valid span context."""
        span_context = context.span.context
        # SpanContext.is_valid, inlined: the property costs a tenth of an inject.
        if not (0 < span_context.trace_id <= _TRACE_ID_MAX and 0 < span_context.span_id <= _LOW_64):
            return
        data = encode(span_context)
        if self.base64 or not _is_grpc_metadata(carrier):
            # Raw bytes only where gRPC carries them: in an HTTP header they would be refused
            # (or worse, sent). Elsewhere the value is written as gRPC puts it on the wire.
            setter.set(carrier, HEADER, binascii.b2a_base64(data, newline=False).decode("ascii"))
        else:
            setter.set(carrier, HEADER, data)

    def extract(self, carrier: Any, context: Context, getter: Getter) -> Context:
        """``context`` with the remote span context ``grpc-trace-bin`` holds."""
        value = first_value(getter, carrier, HEADER)
        if value is None:
            return context
        data = decode(value)
        parsed = parse(data) if data is not None else None
        if parsed is None:
            return context
        return context.with_span_context(parsed)

    def __repr__(self) -> str:
        return f"GrpcBinaryPropagator(base64={self.base64!r})" if self.base64 else (
            "GrpcBinaryPropagator()"
        )


__all__ = ["GrpcBinaryPropagator", "decode", "encode", "parse"]
