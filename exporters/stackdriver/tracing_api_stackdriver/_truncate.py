"""Cutting strings to Cloud Trace's byte limits on UTF-8 character boundaries.

Cloud Trace measures limits in UTF-8 bytes and reports what was cut in a ``TruncatableString``'s
``truncated_byte_count``. Python strings may hold lone surrogates, which UTF-8 cannot carry (and
protobuf refuses to set): each becomes ``?`` first, so counts are in bytes of what can be sent.
"""

from __future__ import annotations

from typing import Tuple


def clean(value: str) -> Tuple[str, bytes]:
    """``value`` with any lone surrogate replaced by ``?``, and its UTF-8 encoding."""
    try:
        return value, value.encode("utf-8")
    except UnicodeEncodeError:
        data = value.encode("utf-8", "replace")
        return data.decode("utf-8"), data


def truncate(value: str, limit: int) -> Tuple[str, int]:
    """``value`` cut to at most ``limit`` UTF-8 bytes on a character boundary, and the number of
    bytes cut off. Never raises; the result always encodes as valid UTF-8.
    """
    limit = max(limit, 0)
    if value.isascii():  # one byte a character: the common case costs no encoding
        if len(value) <= limit:
            return value, 0
        return value[:limit], len(value) - limit
    text, data = clean(value)
    if len(data) <= limit:
        return text, 0
    cut = limit
    # Step back over continuation bytes (10xxxxxx) so no character is split.
    while cut > 0 and (data[cut] & 0xC0) == 0x80:
        cut -= 1
    return data[:cut].decode("utf-8"), len(data) - cut

