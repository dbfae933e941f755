"""Zipkin test fixtures: validators for the official Zipkin v2 schema and a strict copy of it."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any, Callable, Dict, List

import jsonschema
import pytest
import yaml

# The schema lives beside the repository (shared/specs), not in it.
SPEC = Path(os.environ.get(
    "ZIPKIN_SCHEMA", Path(__file__).resolve().parents[4] / "shared/specs/zipkin2-api.yaml"))

Validate = Callable[[bytes], List[str]]


def _validator(doc: Dict[str, Any]) -> Validate:
    doc = dict(doc)
    doc["$ref"] = "#/definitions/ListOfSpans"
    validator = jsonschema.Draft4Validator(doc, format_checker=jsonschema.FormatChecker())

    def validate(body: bytes) -> List[str]:
        return [f"{list(e.absolute_path)}: {e.message}"
                for e in validator.iter_errors(json.loads(body))]

    return validate


def _strict(doc: Dict[str, Any]) -> Dict[str, Any]:
    """The published schema with anchored id patterns and no unknown fields."""
    strict = copy.deepcopy(doc)
    definitions = strict["definitions"]
    span = definitions["Span"]["properties"]
    span["traceId"]["pattern"] = "^([a-f0-9]{16}|[a-f0-9]{32})$"
    span["id"]["pattern"] = "^[a-f0-9]{16}$"
    span["parentId"]["pattern"] = "^[a-f0-9]{16}$"
    for name in ("Span", "Endpoint", "Annotation"):
        definitions[name]["additionalProperties"] = False
    return strict


@pytest.fixture(scope="session")
def zipkin_schema() -> Dict[str, Any]:
    if not SPEC.exists():
        pytest.skip(f"{SPEC} is not here")
    return dict(yaml.safe_load(SPEC.read_text("utf-8")))


@pytest.fixture(scope="session")
def official(zipkin_schema: Dict[str, Any]) -> Validate:
    """Errors of a body against the official ListOfSpans schema."""
    return _validator(zipkin_schema)


@pytest.fixture(scope="session")
def strict(zipkin_schema: Dict[str, Any]) -> Validate:
    """Errors of a body against the strict copy (anchored ids, additionalProperties false)."""
    return _validator(_strict(zipkin_schema))
