"""Reading the frames out of a formatted Python traceback, for Cloud Trace's ``stack_trace``.

An ``exception`` event carries ``exception.stacktrace`` as the text ``traceback`` prints. Cloud
Trace has a field of its own for stack traces, made of frames, which its console shows whole;
an attribute value would be just one more string. This module turns the text into frames.
"""

from __future__ import annotations

import hashlib
import re
from typing import List, NamedTuple, Optional

MAX_FRAMES = 128
"""Cloud Trace keeps at most this many frames of a stack trace."""

# `  File "app.py", line 3, in handler`; exception groups indent frames behind `|` bars, and a
# SyntaxError's frame has no function.
_FRAME = re.compile(r'^[ |+\-]*File "(?P<file>.*)", line (?P<line>\d+)(?:, in (?P<func>.*))?$')
_START = "Traceback (most recent call last):"
# An exception group's own traceback, at the top level: its frames follow behind "  | ", then
# each sub-exception's traceback, indented further, after a "  +-+----- 1 -----" separator.
_GROUP_START = "  + Exception Group Traceback (most recent call last):"
_GROUP_LINE = "  |"


class Frame(NamedTuple):
    """One frame: the function, its file and the line being run."""

    function: str
    file: str
    line: int


class Frames(NamedTuple):
    """The frames of a stack trace, innermost first, as Cloud Trace orders them; how many were
    left out over ``MAX_FRAMES``; and a hash that identifies this stack trace.
    """

    frames: List[Frame]
    dropped: int
    hash_id: int


def parse(text: str, max_frames: int = MAX_FRAMES) -> Optional[Frames]:
    """The frames of the last exception in a formatted traceback, or None if there are none.

    With chained exceptions (``raise ... from ...``) the text holds one traceback per exception,
    the one raised last at the end: its frames are the ones kept. When that is an exception group
    (``asyncio.TaskGroup``, ``except*``), its own frames are kept, not its sub-exceptions'.
    """
    if not isinstance(text, str) or "File " not in text:
        return None
    found: List[Frame] = []
    for line in _last_traceback(text):
        match = _FRAME.match(line)
        if match is not None:
            try:
                number = int(match.group("line"))
            except ValueError:
                continue
            if number >= 1 << 63:
                number = 0  # not a real line number; int64 cannot hold it
            found.append(Frame(match.group("func") or "", match.group("file"), number))
    if not found:
        return None
    found.reverse()  # Python prints the innermost call last; Cloud Trace wants it first
    digest = hashlib.blake2b(digest_size=8)
    for frame in found:
        digest.update(f"{frame.file}\0{frame.line}\0{frame.function}\n".encode("utf-8", "replace"))
    hash_id = int.from_bytes(digest.digest(), "big", signed=True) or 1  # 0 means "no hash"
    kept = found[:max_frames]
    return Frames(kept, len(found) - len(kept), hash_id)


def _last_traceback(text: str) -> List[str]:
    """The lines of the traceback of the exception raised last in ``text``."""
    lines = text.splitlines()
    start = -1
    for index, line in enumerate(lines):
        # Only tracebacks at the top level count: a group's sub-exceptions have theirs too,
        # indented behind bars, and the last of them is not the exception that was raised.
        if line.rstrip() in (_START, _GROUP_START):
            start = index
    if start < 0:  # not as Python prints it: the last header anywhere, or all of it
        cut = text.rfind(_START)
        return text[cut:].splitlines() if cut >= 0 else lines
    if lines[start].rstrip() != _GROUP_START:
        return lines[start:]
    own = [lines[start]]
    for line in lines[start + 1:]:
        if not line.startswith(_GROUP_LINE):
            break  # the first sub-exception's separator: the group's own traceback has ended
        own.append(line)
    return own
