"""Keep passwords out of messages: URLs may carry ``user:password@`` and must not be shown so."""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import urlsplit, urlunsplit

#: What stands in for a password that was in a URL.
HIDDEN: Final = "***"

# scheme://user:password@ -> scheme://user:***@ (also a bare "scheme://password@" is hidden)
_USERINFO: Final = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/\s@]*)@")


def _hide(match: re.Match[str]) -> str:
    user, colon, _ = match["userinfo"].partition(":")
    shown = f"{user}:{HIDDEN}" if colon else HIDDEN
    return f"{match['scheme']}{shown}@"


def redact_urls(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@`` in it replaced."""
    return _USERINFO.sub(_hide, text)


def without_userinfo(url: str) -> tuple[str, str | None, str | None]:
    """``url`` without ``user:password@``, plus that user and password (``None`` if absent),
    so a client can send them as credentials and show the URL safely."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None, None
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=host)), parts.username, parts.password
