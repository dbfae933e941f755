# Development entry points. Everything runs in the uv workspace (.venv), set up from uv.lock.
PYTHON ?= python3
UV_VERSION := 0.13.8
UV := .tools/bin/uv
RUN := $(UV) run --locked --quiet

.PHONY: demo test lint check bench fuzz setup clean

demo: setup  ## The traced demo: gRPC client -> greeter -> HTTP backend, printed as trace trees.
	$(RUN) python -m examples.helloworld

test: setup  ## The whole test suite.
	$(RUN) pytest

lint: setup  ## ruff and mypy --strict over the core, the plugins and the typing snippets.
	$(RUN) ruff check .
	$(RUN) mypy

check: lint test

bench: setup  ## The pyperf benchmarks, side by side with OpenTelemetry (see docs/performance.md).
	$(RUN) python benchmarks/run.py

fuzz: setup  ## The property tests with many more examples (slow).
	HYPOTHESIS_PROFILE=thorough $(RUN) pytest -k "hostile or never_raises or property or given"

setup: $(UV)
	$(UV) sync --locked --quiet

# uv in a private virtual environment: works where the system pip refuses to install (PEP 668).
$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

clean:
	rm -rf .venv .tools .mypy_cache .ruff_cache .hypothesis
