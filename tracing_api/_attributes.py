"""Attribute values: what is kept, what is converted, and what is dropped (and counted).

Values are ``str``, ``bool``, ``int`` (64-bit, as OTLP carries them), ``float``, or homogeneous
sequences of one of those; subclasses (``IntEnum``, ``str`` enums) become the plain type. Anything
else, including objects whose conversions raise, is dropped; nothing here raises.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Mapping, Optional

    from ._types import AttributeValue

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1


def as_text(value: object, fallback: str) -> str:
    """``value`` as text, or ``fallback`` when its ``__str__`` raises: user code passes anything."""
    if type(value) is str:
        return value
    try:
        return str(value)
    except Exception:
        return fallback


class _Invalid:
    __slots__ = ()


INVALID_VALUE: Any = _Invalid()


def clean_value(value: object, max_length: Optional[int]) -> Any:
    """``value`` as an attribute value, cut to ``max_length``; ``INVALID_VALUE`` if it cannot be one."""
    kind = type(value)
    if kind is str:
        if max_length is not None and len(value) > max_length:  # type: ignore[arg-type]
            return value[:max_length]  # type: ignore[index]
        return value
    if kind is bool or kind is float:
        return value
    if kind is int:
        return value if _INT64_MIN <= value <= _INT64_MAX else INVALID_VALUE  # type: ignore[operator]
    return _clean_other(value, max_length)


def _clean_other(value: object, max_length: Optional[int]) -> Any:
    try:
        if isinstance(value, (list, tuple)):
            items = tuple(value)
            if not items:
                return items
            first = type(items[0])
            base = next((t for t in (bool, str, int, float) if issubclass(first, t)), None)
            if base is None or not all(type(i) is first or type(i) is base for i in items):
                return INVALID_VALUE
            cleaned = tuple(clean_value(_plain(base, i), max_length) for i in items)
            return INVALID_VALUE if INVALID_VALUE in cleaned else cleaned
        for base in (bool, str, int, float):  # subclasses such as IntEnum or str enums
            if isinstance(value, base):
                return clean_value(_plain(base, value), max_length)
    except Exception:  # a hostile __iter__ or __index__: the value is dropped, not raised
        pass
    return INVALID_VALUE


def _plain(base: type, value: Any) -> Any:
    """``value``, an instance of a subclass of ``base``, as a plain ``base``: a str enum's own
    text (``str()`` of a ``(str, Enum)`` member is ``"Class.NAME"``), an IntEnum's number."""
    return str.__str__(value) if base is str else base(value)


def clean_attributes(
    attributes: Optional[Mapping[str, object]], limit: int, max_length: Optional[int]
) -> tuple[Dict[str, AttributeValue], int]:
    """A cleaned copy of ``attributes`` and the number of entries dropped."""
    cleaned: Dict[str, AttributeValue] = {}
    dropped = 0
    if attributes is None:  # not its truth value: a pandas row's raises
        return cleaned, 0
    try:
        items = list(attributes.items())
    except Exception:
        return cleaned, 1
    not_pairs = 0
    for second_pass in (False, True):
        try:
            for key, value in items:
                value = clean_value(value, max_length)
                if type(key) is not str and isinstance(key, str):  # a str enum: its text
                    key = str.__str__(key)
                if value is INVALID_VALUE or type(key) is not str or not key:
                    dropped += 1
                elif len(cleaned) < limit or key in cleaned:
                    cleaned[key] = value
                else:
                    dropped += 1
            return cleaned, dropped + not_pairs
        except Exception:
            # Some item is not a (key, value) pair: once, start again with the pairs alone.
            # Anything else that raised (a key whose class lookup raises, a RecursionError on
            # Python 3.12+) would raise again: the attributes are given up, and counted.
            pairs = _pairs(items)
            if second_pass or len(pairs) == len(items):
                return {}, len(items) + not_pairs
            not_pairs, items = len(items) - len(pairs), pairs
            cleaned, dropped = {}, 0
    return {}, len(items) + not_pairs  # not reached: the second pass returns


def _pairs(items: List[Any]) -> List[Any]:
    """The items that unpack as (key, value) pairs (an ``items()`` may give anything)."""
    pairs = []
    for item in items:
        try:
            key, value = item
        except Exception:
            continue
        pairs.append((key, value))
    return pairs
