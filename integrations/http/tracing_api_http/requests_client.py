"""``requests`` tracing: a transport adapter that starts a CLIENT span per request.

::

    import requests
    from tracing_api_http import traced_session

    session = traced_session(requests.Session())    # wraps every mounted adapter
    session.get("http://127.0.0.1:8080/hello", timeout=5)

Each hop of a followed redirect is its own span (a sibling under the caller's span), with its
own ``traceparent``. The span ends when ``send`` returns (after the body for a non-streamed
request); 4xx and 5xx mark it as an error, as do connection failures.
"""

from __future__ import annotations

from typing import Any, Optional

import requests
from requests.adapters import BaseAdapter, HTTPAdapter

from . import _client


class TracingAdapter(BaseAdapter):
    """Wraps a ``requests`` adapter (by default a new ``HTTPAdapter``) with CLIENT spans.

    Attributes the wrapped adapter has (``max_retries``, ...) are read and written through this
    one: ``session.get_adapter(url).max_retries = Retry(...)`` sets the wrapped adapter's.
    """

    def __init__(self, adapter: Optional[BaseAdapter] = None) -> None:
        super().__init__()
        self.adapter = adapter if adapter is not None else HTTPAdapter()

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        """Send ``request`` through the wrapped adapter inside a CLIENT span."""
        span, context = _client.start(request.method, request.url or "")
        _client.inject(context, request.headers)
        try:
            response = self.adapter.send(request, *args, **kwargs)
        except BaseException as exc:
            _client.fail(span, exc)
            raise
        version = getattr(getattr(response, "raw", None), "version", None)
        _client.finish(
            span, response.status_code,
            {10: "1.0", 11: "1.1", 20: "2"}.get(version) if isinstance(version, int) else None,
        )
        return response

    def close(self) -> None:
        """Close the wrapped adapter."""
        self.adapter.close()

    def __getattr__(self, name: str) -> Any:
        # Only called for names this object lacks; "adapter" itself is guarded so a
        # half-built instance (unpickling) cannot recurse. Special names are never forwarded:
        # before Python 3.11, objects have no __getstate__ of their own, and pickling would
        # take the wrapped adapter's state for this object's.
        if name == "adapter" or (name.startswith("__") and name.endswith("__")):
            raise AttributeError(name)
        return getattr(self.adapter, name)

    def __setattr__(self, name: str, value: Any) -> None:
        # The wrapped adapter is the one that sends: a setting written here after wrapping
        # (max_retries, ...) must reach it, not stay on this object unread.
        if name == "adapter":
            object.__setattr__(self, name, value)
        else:
            setattr(self.adapter, name, value)

    def __delattr__(self, name: str) -> None:
        if name == "adapter":
            object.__delattr__(self, name)
        else:
            delattr(self.adapter, name)


def traced_session(session: Optional[requests.Session] = None) -> requests.Session:
    """``session`` (or a new ``requests.Session``) with every mounted adapter traced.

    Call it after mounting your own adapters; calling it twice does not trace twice.
    """
    if session is None:
        session = requests.Session()
    for prefix, adapter in list(session.adapters.items()):
        if not isinstance(adapter, TracingAdapter):
            session.mount(prefix, TracingAdapter(adapter))
    return session
