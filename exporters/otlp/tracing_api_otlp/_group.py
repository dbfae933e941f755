"""Spans grouped as OTLP nests them: by resource, then by instrumentation scope."""

from __future__ import annotations

from typing import Dict, List, Mapping, Sequence, Tuple

from tracing_api.export import InstrumentationScope, SpanData

Groups = List[Tuple[Mapping[str, object], List[Tuple[InstrumentationScope, List[SpanData]]]]]

HAS_IS_REMOTE = 0x100
IS_REMOTE = 0x200
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def group(spans: Sequence[SpanData]) -> Groups:
    """``spans`` by resource (the same object, or an equal one) and then by scope, in the order
    each first appears. Spans with an invalid context are left out: no backend can store them.
    """
    by_resource: Dict[int, Tuple[Mapping[str, object], Dict[InstrumentationScope, List[SpanData]]]]
    by_resource = {}
    for span in spans:
        if not span.context.is_valid:
            continue
        entry = by_resource.get(id(span.resource))
        if entry is None:
            entry = by_resource[id(span.resource)] = (span.resource, {})
        entry[1].setdefault(span.scope, []).append(span)
    merged: Dict[Tuple[Tuple[str, object], ...], Tuple[Mapping[str, object],
                                                        Dict[InstrumentationScope, List[SpanData]]]]
    merged = {}
    for resource, scopes in by_resource.values():
        # Distinct but equal resources (one per configure() call) still share one entry.
        try:
            key: Tuple[Tuple[str, object], ...] = tuple(sorted(
                (k, repr(v)) for k, v in resource.items()))
        except Exception:
            key = (("", id(resource)),)
        if key in merged:
            for scope, items in scopes.items():
                merged[key][1].setdefault(scope, []).extend(items)
        else:
            merged[key] = (resource, scopes)
    return [(resource, list(scopes.items())) for resource, scopes in merged.values()]


def span_flags(trace_flags: int, remote: bool) -> int:
    """The OTLP ``flags`` of a span (parent remote or not) or a link (its context remote)."""
    return (trace_flags & 0xFF) | HAS_IS_REMOTE | (IS_REMOTE if remote else 0)
