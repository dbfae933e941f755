"""What the Jaeger propagator writes as ``uberctx-*`` baggage: only names every carrier takes
(gRPC metadata among them), and within a budget that leaves room for W3C ``baggage`` beside it
under gRPC's 16 KiB header limit. What it reads from ``jaeger-baggage``: whole members within
its read budget."""

from __future__ import annotations

import os
from typing import Any, Dict, List, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tracing_api_propagation import JaegerPropagator, jaeger

from tracing_api import SpanContext
from tracing_api.context import EMPTY_CONTEXT, Context
from tracing_api.propagation import DICT, PAIRS
from tracing_api.w3c import BaggagePropagator

EXAMPLES = int(os.environ.get("TRACING_FUZZ_EXAMPLES", "200"))
fuzz = settings(max_examples=EXAMPLES, deadline=None)
PARENT = SpanContext(0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7, 1, is_remote=True)
GRPC_NAME = frozenset("0123456789abcdefghijklmnopqrstuvwxyz_.-")


def _written(baggage: Dict[Any, Any]) -> List[Tuple[str, Any]]:
    """The ``uberctx-*`` pairs Jaeger writes for ``baggage``, as gRPC metadata."""
    context = Context(EMPTY_CONTEXT.span, baggage, {})  # unchecked keys, as a buggy caller may
    metadata: List[Tuple[str, Any]] = []
    JaegerPropagator().inject(context, metadata, PAIRS)
    return [(k, v) for k, v in metadata if k.startswith(jaeger.BAGGAGE_PREFIX)]


def _cost(pairs: List[Tuple[str, Any]]) -> int:
    """What gRPC counts for ``pairs``: name, value and 32 bytes for each."""
    return sum(len(k) + len(v) + 32 for k, v in pairs)


@pytest.mark.parametrize("key", ["x~y", "user*id", "a!b", "k'", "caf\u00e9", "\u212a", "a b", ""])
def test_key_outside_what_grpc_metadata_names_take_is_not_written(key: str) -> None:
    assert _written({key: "1", "user.id": "42"}) == [("uberctx-user.id", "42")]


def test_key_in_upper_case_is_written_in_lower_case() -> None:
    assert _written({"User_ID": "42"}) == [("uberctx-user_id", "42")]


def test_key_that_is_not_text_is_skipped_without_raising() -> None:
    assert _written({7: "x", None: "y", "ok": "1"}) == [("uberctx-ok", "1")]


def test_skipped_key_still_travels_in_w3c_baggage() -> None:
    carrier: Dict[str, Any] = {}
    context = EMPTY_CONTEXT.with_span_context(PARENT).with_baggage({"x~y": "1"})
    JaegerPropagator().inject(context, carrier, DICT)
    BaggagePropagator().inject(context, carrier, DICT)
    assert carrier["baggage"] == "x~y=1"
    assert not any(k.startswith("uberctx-") for k in carrier)


def test_written_baggage_counts_32_bytes_per_header() -> None:
    """100 entries of 21 characters are 2,100 bytes of text but 5,300 as gRPC counts them."""
    baggage = {f"k{i:02d}": "v" * 10 for i in range(100)}
    pairs = _written(baggage)
    assert _cost(pairs) <= jaeger.MAX_WRITTEN_BAGGAGE_BYTES
    assert len(pairs) == jaeger.MAX_WRITTEN_BAGGAGE_BYTES // (len("uberctx-k00") + 10 + 32)


def test_entry_too_big_for_the_budget_is_skipped_and_later_ones_still_written() -> None:
    pairs = _written({"big": "v" * jaeger.MAX_WRITTEN_BAGGAGE_BYTES, "small": "1"})
    assert pairs == [("uberctx-small", "1")]


def test_budget_counts_the_url_encoded_value() -> None:
    pairs = _written({"k": " " * 2000})  # 6,000 bytes once encoded as %20
    assert pairs == []


@fuzz
@given(st.dictionaries(st.text(max_size=30), st.text(max_size=400), max_size=60))
def test_written_baggage_stays_within_the_budget_and_the_grpc_name_set(entries: Dict[str, str]) -> None:
    pairs = _written(entries)
    assert _cost(pairs) <= jaeger.MAX_WRITTEN_BAGGAGE_BYTES
    assert len(pairs) <= jaeger.MAX_BAGGAGE_ENTRIES
    for name, value in pairs:
        assert set(name) <= GRPC_NAME and len(name) > len(jaeger.BAGGAGE_PREFIX)
        assert value.isascii() and value.isprintable()


# ------------------------------------------------------------------- reading jaeger-baggage


def _read(carrier: Dict[str, str]) -> Dict[str, str]:
    return dict(JaegerPropagator().extract(carrier, EMPTY_CONTEXT, DICT).baggage)


def test_adhoc_member_cut_by_the_read_budget_is_dropped_whole() -> None:
    assert _read({"jaeger-baggage": "a=1,b=" + "x" * 9000}) == {"a": "1"}


def test_adhoc_members_filling_the_read_budget_exactly_are_all_kept() -> None:
    last = "z=" + "v" * (jaeger.MAX_BAGGAGE_BYTES - len("a=1,") - 2)  # 8,192 with the comma
    assert _read({"jaeger-baggage": "a=1," + last}) == {"a": "1", "z": last[2:]}


def test_adhoc_member_one_byte_past_the_read_budget_is_dropped() -> None:
    last = "z=" + "v" * (jaeger.MAX_BAGGAGE_BYTES - len("a=1,") - 1)
    assert _read({"jaeger-baggage": "a=1," + last}) == {"a": "1"}


def test_adhoc_budget_is_what_uberctx_headers_leave() -> None:
    carrier = {"uberctx-k": "v" * 4000, "jaeger-baggage": "a=1,b=" + "x" * 4200}
    assert _read(carrier) == {"k": "v" * 4000, "a": "1"}


_MEMBER_KEY = st.text(alphabet="abcdefghij", min_size=1, max_size=8)
# Lengths drawn evenly up to 3,000 (text() favours short ones), so the budget is often passed.
_MEMBER_VALUE = st.builds(lambda size, char: char * size, st.integers(0, 3000), st.sampled_from("0xyz"))


@fuzz
@given(st.lists(st.tuples(_MEMBER_KEY, _MEMBER_VALUE), max_size=12, unique_by=lambda m: m[0]))
def test_adhoc_baggage_read_holds_only_whole_members_within_the_budget(
    members: List[Tuple[str, str]],
) -> None:
    header = ",".join(f"{k}={v}" for k, v in members)
    read = _read({"jaeger-baggage": header})
    sent = dict(members)
    assert all(sent[key] == value for key, value in read.items())  # no value cut short
    assert len(",".join(f"{k}={v}" for k, v in read.items())) <= jaeger.MAX_BAGGAGE_BYTES
    assert list(read) == list(sent)[: len(read)]  # a prefix of the members, in order
