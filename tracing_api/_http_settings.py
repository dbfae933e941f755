"""Checks of the URLs and headers exporters send to, made when an exporter is built (a bad one
raises ``ConfigurationError`` naming the setting) and again before each request (never sent)."""

from __future__ import annotations

import base64
from typing import Dict, Mapping, Optional, Tuple

from ._types import ConfigurationError

_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def url_problem(url: object) -> Optional[str]:
    """Why ``url`` cannot be POSTed to, or None when it can."""
    from urllib.parse import urlsplit

    if not isinstance(url, str):
        return "not a string"
    if not url.isascii():
        return "non-ASCII characters (percent-encode them; a host name in its xn-- form)"
    if any(c <= " " or c == "\x7f" for c in url):
        return "spaces or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (it is the parsing that may raise)
    except ValueError as exc:
        return str(exc)
    if parts.scheme.lower() not in ("http", "https"):
        return "the scheme is not http or https"
    if not parts.hostname:
        return "no host"
    return None


def header_problem(name: object, value: object) -> Optional[str]:
    """Why ``name: value`` cannot be sent as a header, or None when it can."""
    if not isinstance(name, str) or not name or not set(name) <= _TOKEN:
        return f"header name {name!r} is not an HTTP token (letters, digits, !#$%&'*+-.^_`|~)"
    if not isinstance(value, str):
        return f"header {name!r}: expected a string value, got {type(value).__name__}"
    if "\r" in value or "\n" in value or "\0" in value:
        # A line break would let a value add headers of its own to the request.
        return f"header {name!r}: the value holds CR, LF or NUL"
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return f"header {name!r}: the value is not Latin-1 text"
    return None


def _shown(url: str) -> str:
    # An error message must carry neither the password a URL may hold nor its query values.
    stripped, credentials = split_credentials(url)
    if credentials is None and "@" in url:
        return "(not shown: it holds '@')"
    return shown_url(stripped)


def url_setting(url: object, source: str) -> str:
    """``url`` if it is an http:// or https:// URL with a host; otherwise a
    ``ConfigurationError`` naming ``source`` (the option or environment variable it came from).
    """
    problem = url_problem(url)
    if problem is not None:
        shown = _shown(url) if isinstance(url, str) else url
        raise ConfigurationError(
            f"{source}: expected an http:// or https:// URL with a host, got {shown!r} ({problem})")
    assert isinstance(url, str)
    return url


def headers_setting(headers: object, source: str) -> Dict[str, str]:
    """``headers`` (a mapping of names to values, or None) as a dict, every name an HTTP token
    and every value Latin-1 text without CR, LF or NUL; otherwise a ``ConfigurationError``
    naming ``source`` (values are not quoted: they are often credentials).
    """
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise ConfigurationError(
            f"{source}: expected a mapping of header names to values, such as "
            f"{{'api-key': '...'}}, got {type(headers).__name__}")
    for name, value in headers.items():
        problem = header_problem(name, value)
        if problem is not None:
            raise ConfigurationError(f"{source}: {problem}")
    return dict(headers)


def shown_url(url: str) -> str:
    """``url`` as logs, reprs and errors show it: every query value replaced by ``REDACTED`` (a
    query string may carry a signature or an API key; the names are kept, to tell URLs apart)."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return "(an unreadable URL)"
    if not parts.query:
        return url
    # A bare item ("?TOKEN") may be the secret itself: only "name=value" items keep the name.
    query = "&".join(
        f"{name}=REDACTED" if sep else "REDACTED"
        for name, sep, _ in (item.partition("=") for item in parts.query.split("&"))
    )
    return urlunsplit(parts._replace(query=query))


def split_credentials(url: str) -> Tuple[str, Optional[str]]:
    """``url`` without its ``user:password@`` part, and that part as a Basic ``Authorization``
    value (None when there is none).
    """
    from urllib.parse import unquote, urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return url, None
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    token = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode("ascii")
    return urlunsplit(parts._replace(netloc=host)), f"Basic {token}"
