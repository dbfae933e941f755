"""OpenTelemetry HTTP semantic conventions: method names, URLs without secrets, status mapping.

Every value that comes from a request is data from a stranger: nothing here raises on it, and
text taken from headers is cut to ``MAX_VALUE`` characters so one request cannot make a span big.
"""

from __future__ import annotations

from typing import Dict, Optional, Pattern, Tuple
from urllib.parse import unquote, urlsplit, urlunsplit

from tracing_api import StatusCode

MAX_VALUE = 2048
"""The longest text kept from a request header, path or URL (characters)."""

KNOWN_METHODS = frozenset(
    ("CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY", "TRACE")
)

REDACTED = "REDACTED"
# Query parameters that carry signatures, keys or tokens in pre-signed URLs (the semantic
# conventions' list, and AWS signature version 4's); compared without case, percent-decoded.
SENSITIVE_QUERY_KEYS = frozenset((
    "AWSAccessKeyId", "Signature", "sig", "X-Goog-Signature", "X-Goog-Credential",
    "X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token",
))
_SENSITIVE_LOWER = frozenset(key.lower() for key in SENSITIVE_QUERY_KEYS)


def cap(value: str) -> str:
    """``value`` cut to ``MAX_VALUE`` characters."""
    return value if len(value) <= MAX_VALUE else value[:MAX_VALUE]


def method(raw: object) -> Tuple[str, Optional[str]]:
    """The ``http.request.method`` value and, for an unknown method, the original one.

    Unknown methods are reported as ``_OTHER`` so a scanner sending random verbs cannot create
    unbounded span names.
    """
    text = raw if isinstance(raw, str) else ""
    if text in KNOWN_METHODS:
        return text, None
    return "_OTHER", cap(text)


def span_name(method_value: str, route: Optional[str] = None) -> str:
    """``GET /users/{id}``, or ``GET`` without a route; ``HTTP`` for an unknown method."""
    verb = "HTTP" if method_value == "_OTHER" else method_value
    return f"{verb} {route}" if route else verb


def redact_query(query: str) -> str:
    """``query`` with the values of signature and key parameters replaced by ``REDACTED``."""
    if not query:
        return query
    lowered = query.lower()
    if "%" not in query and not any(key in lowered for key in _SENSITIVE_LOWER):
        return query
    parts = []
    for part in query.split("&"):
        key, sep, _ = part.partition("=")
        sensitive = sep and unquote(key).strip().lower() in _SENSITIVE_LOWER
        parts.append(f"{key}={REDACTED}" if sensitive else part)
    return "&".join(parts)


_URL_SECRETS: Optional[Tuple[Pattern[str], Pattern[str]]] = None


def scrub(text: str) -> str:
    """``text`` (an error message, a stack trace) with every URL query string and every
    ``user:password@`` replaced: transport errors quote the URL they failed on.
    """
    global _URL_SECRETS
    if _URL_SECRETS is None:
        import re

        _URL_SECRETS = (
            re.compile(r"(//)[^/\s@'\"]+@"),               # credentials in a URL
            re.compile(r"\?[^\s'\"<>()]*"),                # a query string
        )
    userinfo, query = _URL_SECRETS
    return query.sub("?" + REDACTED, userinfo.sub(r"\1" + REDACTED + "@", cap(text)))


def redact_url(url: str) -> str:
    """``url`` without credentials: ``user:password@`` becomes ``REDACTED:REDACTED@`` and the
    values of signature parameters in the query are replaced. The fragment is dropped.
    """
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hostport = netloc.rpartition("@")
            netloc = f"{REDACTED}:{REDACTED}@{hostport}" if ":" in userinfo else f"{REDACTED}@{hostport}"
        return cap(urlunsplit((parts.scheme, netloc, parts.path, redact_query(parts.query), "")))
    except ValueError:  # an unparsable URL (bad IPv6 literal, bad port) is not exported at all
        return REDACTED


def split_host(value: str, default_port: Optional[int]) -> Tuple[str, Optional[int]]:
    """A ``Host`` header (``example.com:8080``, ``[::1]:80``) as host and port."""
    value = value.strip()
    if value.startswith("["):
        end = value.find("]")
        if end == -1:
            return cap(value), default_port
        host, rest = value[1:end], value[end + 1:]
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port_text = value.partition(":")
    port: Optional[int] = default_port
    # isascii: str.isdigit() also accepts digits such as '¹' that int() refuses.
    if port_text.isascii() and port_text.isdigit() and len(port_text) <= 5 \
            and int(port_text) <= 65535:
        port = int(port_text)
    return cap(host), port


def protocol_version(raw: str) -> Optional[str]:
    """``1.1`` for ``HTTP/1.1``, ``2`` for ``2`` or ``HTTP/2.0``; None when unrecognised."""
    value = raw[5:] if raw.upper().startswith("HTTP/") else raw
    if value in ("1.0", "1.1", "2", "3"):
        return value
    if value in ("2.0", "3.0"):
        return value[0]
    return None


def server_status(status_code: int) -> Tuple[StatusCode, Dict[str, object]]:
    """A server span's status for a response code: 5xx is an error, 4xx is the client's."""
    if status_code >= 500 or status_code < 100:
        return StatusCode.ERROR, {"error.type": str(status_code)}
    return StatusCode.UNSET, {}


def client_status(status_code: int) -> Tuple[StatusCode, Dict[str, object]]:
    """A client span's status for a response code: 4xx and 5xx are both errors."""
    if status_code >= 400 or status_code < 100:
        return StatusCode.ERROR, {"error.type": str(status_code)}
    return StatusCode.UNSET, {}


def error_type(exc: BaseException) -> str:
    """The ``error.type`` for an exception: its fully qualified class name."""
    kind = type(exc)
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"
