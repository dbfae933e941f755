"""Failures of ``BatchWriteSpans`` and of making the client, as retry outcomes.

gRPC codes are classified as ``tracing_api.delivery`` does, with a server's ``RetryInfo`` delay
honoured. Credentials that Google refuses are permanent failures, though gRPC reports them as
UNAVAILABLE; credentials whose token server cannot be reached are retried.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

from tracing_api.delivery import Outcome, grpc_outcome


class ClientNotReady(Exception):
    """The Cloud Trace client is still being made (credentials still being looked for)."""


class ClientFailed(Exception):
    """Making the Cloud Trace client failed a while ago with ``error``. Raised afresh at every
    export: the stored error is never raised again, so it does not gather each export's frames
    (and the spans they hold) in its traceback.
    """

    def __init__(self, error: BaseException) -> None:
        super().__init__(f"{type(error).__name__}: {error}")
        self.error = error


def _retry_after(exc: Any) -> Optional[float]:
    # The server may say when to come back, in a google.rpc.RetryInfo among the details.
    for detail in getattr(exc, "details", None) or ():
        delay = getattr(detail, "retry_delay", None)
        if delay is not None and hasattr(delay, "ToTimedelta"):
            try:
                return max(0.0, float(delay.ToTimedelta().total_seconds()))
            except (OverflowError, ValueError):
                return None
    return None


# gRPC reports call credentials that failed to give a token as UNAVAILABLE, with the error's
# text after this, whatever the error was.
_CREDENTIALS_FAILED = "Getting metadata from plugin failed"
# OAuth 2.0 error codes (RFC 6749 5.2, lower case) by which the token endpoint refuses the
# credentials themselves: a revoked or deleted key, a disabled account. No retry changes those.
# Any other failure to get a token (the token or metadata server out of reach, overloaded,
# answering 5xx) may pass, and is retried.
_REFUSALS = ("invalid_grant", "invalid_client", "unauthorized_client", "access_denied",
             "invalid_scope")


def _credentials_refused(message: str) -> bool:
    if _CREDENTIALS_FAILED not in message:
        return False
    lowered = message.lower()
    return any(text in lowered for text in _REFUSALS)


def classify(exc: BaseException) -> Tuple[Outcome, str]:
    """An exception from ``batch_write_spans`` as an outcome, and its gRPC code name."""
    from google.api_core import exceptions as api_exceptions
    from google.auth import exceptions as auth_exceptions

    if isinstance(exc, ClientFailed):
        return classify(exc.error)
    if isinstance(exc, api_exceptions.GoogleAPICallError):
        code = getattr(exc, "grpc_status_code", None)
        name = code.name if code is not None else type(exc).__name__
        message = str(exc.message)
        if name == "UNAVAILABLE" and _credentials_refused(message):
            return Outcome.permanent(f"credentials refused: {message}"), "UNAUTHENTICATED"
        outcome = grpc_outcome(name, message)
        after = _retry_after(exc) if outcome.retryable else None
        return (outcome._replace(retry_after=after) if after is not None else outcome), name
    if isinstance(exc, auth_exceptions.TransportError):  # could not reach the token server
        return Outcome.retry(f"credentials: {exc}"), "UNAVAILABLE"
    if isinstance(exc, ClientNotReady):
        return Outcome.retry(str(exc)), "UNAVAILABLE"
    return Outcome.permanent(f"{type(exc).__name__}: {exc}"), type(exc).__name__
