"""Credentials in URLs (`https://admin:PW@host`): the one place that knows how to keep them out of sight.

Requests still get the URL as configured; everything a person or a file sees gets `public_url`.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit, urlunsplit

# scheme://userinfo@ in free text: up to the last "@" before the path, the query or a space.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s?#\"'<>]+@")


def public_url(url: str) -> str:
    """The URL without user info, query or fragment, so credentials embedded in it are never shown."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def same_url(a: str, b: str) -> bool:
    """Whether two URLs name the same server and path, whatever credentials either carries."""
    return public_url(a).rstrip("/") == public_url(b).rstrip("/")


def url_secrets(url: str) -> tuple[str, ...]:
    """What of a URL must never be printed: its password and whole user info, as written and decoded."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
    if not userinfo:
        return ()
    _, colon, password = userinfo.partition(":")
    found = {userinfo, unquote(userinfo)}
    if colon and password:
        found |= {password, unquote(password)}
    return tuple(sorted(found))


def mask_userinfo(text: str) -> str:
    """Any `scheme://user:password@` in free text becomes `scheme://***@`."""
    if "@" not in text or "://" not in text:
        return text
    return _USERINFO.sub(r"\1***@", text)
