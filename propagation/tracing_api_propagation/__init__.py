"""Trace-context formats beyond W3C for tracing-api: B3, Google Cloud, gRPC binary, Jaeger.

Each format is one module and one entry point in the ``tracing_api.propagators`` group, so
applications select them by name::

    tracing.configure(propagators=["tracecontext", "baggage", "b3multi"])
    # or TRACING_PROPAGATORS=tracecontext,baggage,b3multi

========== ============================================ =====================================
name       header(s)                                    class
========== ============================================ =====================================
b3         ``b3``                                       ``b3.B3Propagator``
b3multi    ``X-B3-TraceId``, ``X-B3-SpanId``, ...       ``b3.B3MultiPropagator``
cloud_trace ``X-Cloud-Trace-Context``                   ``cloud_trace.CloudTracePropagator``
grpc_binary ``grpc-trace-bin`` (gRPC metadata)          ``grpc_binary.GrpcBinaryPropagator``
jaeger     ``uber-trace-id``, ``uberctx-*``             ``jaeger.JaegerPropagator``
========== ============================================ =====================================
"""

from __future__ import annotations

from .b3 import B3MultiPropagator, B3Propagator
from .cloud_trace import CloudTracePropagator
from .grpc_binary import GrpcBinaryPropagator
from .jaeger import JaegerPropagator

__all__ = [
    "B3MultiPropagator",
    "B3Propagator",
    "CloudTracePropagator",
    "GrpcBinaryPropagator",
    "JaegerPropagator",
]
