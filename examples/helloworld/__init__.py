"""The traced helloworld: a gRPC greeter that asks an HTTP backend for its greetings.

Run it from the repository root with ``python -m examples.helloworld`` (or
``python examples/helloworld/run.py``); ``--help`` lists the exporters.
"""
