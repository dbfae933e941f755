"""The library's own diagnostics, on the ``tracing_api`` logger, loaded only when first needed.

Warnings about the same thing (a backend that keeps failing) are written at most once a minute,
so a failing exporter cannot flood the application's logs.
"""

from __future__ import annotations

import time
from typing import Any, Dict

_last_warned: Dict[str, float] = {}
_QUIET_SECONDS = 60.0


def debug(message: str, *args: Any, exc_info: bool = False) -> None:
    """Log at DEBUG."""
    import logging

    logging.getLogger("tracing_api").debug(message, *args, exc_info=exc_info)


def warn(key: str, message: str, *args: Any, exc_info: bool = False) -> None:
    """Log at WARNING, unless a warning with the same ``key`` went out in the last minute."""
    now = time.monotonic()
    last = _last_warned.get(key)
    if last is not None and now - last < _QUIET_SECONDS:
        debug(message, *args, exc_info=exc_info)
        return
    _last_warned[key] = now
    import logging

    logging.getLogger("tracing_api").warning(message, *args, exc_info=exc_info)
