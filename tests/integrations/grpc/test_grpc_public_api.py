"""The face of ``tracing_api_grpc``: what it exports, documented."""

from __future__ import annotations

import grpc
import grpc.aio
import tracing_api_grpc


def test_all_is_sorted_and_every_name_exists() -> None:
    assert tracing_api_grpc.__all__ == sorted(tracing_api_grpc.__all__)
    for name in tracing_api_grpc.__all__:
        assert hasattr(tracing_api_grpc, name), name


def test_every_public_name_has_a_docstring() -> None:
    for name in tracing_api_grpc.__all__:
        if name != "__version__":
            assert getattr(tracing_api_grpc, name).__doc__, name


def test_client_interceptors_serve_every_call_shape_of_a_grpc_channel() -> None:
    [interceptor] = tracing_api_grpc.client_interceptors()
    for shape in (grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                  grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
        assert isinstance(interceptor, shape)


def test_aio_client_interceptors_are_one_per_call_shape() -> None:
    interceptors = tracing_api_grpc.aio_client_interceptors()
    shapes = (grpc.aio.UnaryUnaryClientInterceptor, grpc.aio.UnaryStreamClientInterceptor,
              grpc.aio.StreamUnaryClientInterceptor, grpc.aio.StreamStreamClientInterceptor)
    assert len(interceptors) == len(shapes)
    for interceptor, shape in zip(interceptors, shapes):
        assert isinstance(interceptor, shape)


def test_server_interceptors_fit_their_servers() -> None:
    [sync] = tracing_api_grpc.server_interceptors()
    [aio] = tracing_api_grpc.aio_server_interceptors()
    assert isinstance(sync, grpc.ServerInterceptor)
    assert isinstance(aio, grpc.aio.ServerInterceptor)
