"""A small traced program: a request handler that queries a database and calls a service.

Run it with ``python examples/quickstart.py``; it prints its trace as a tree with timings.
"""

from __future__ import annotations

import time

import tracing_api as tracing

tracer = tracing.get_tracer("examples.quickstart")


@tracer.span("db.query", kind=tracing.SpanKind.CLIENT, attributes={"db.system": "sqlite"})
def query(user: str) -> list[str]:
    time.sleep(0.002)
    tracing.current_span().set_attribute("db.rows", 2)
    return [f"{user}-order-1", f"{user}-order-2"]


def handle(user: str) -> str:
    with tracer.span("GET /orders", kind=tracing.SpanKind.SERVER) as span:
        span.set_attribute("enduser.id", user)
        orders = query(user)
        with tracer.span("render") as render:
            render.add_event("template.loaded", {"template": "orders.html"})
            time.sleep(0.001)
        return ", ".join(orders)


def main() -> None:
    tracing.configure(exporter="console", service_name="quickstart")
    print(handle("alice"))
    tracing.shutdown()
    print(tracing.stats())


if __name__ == "__main__":
    main()
