"""Keep passwords out of messages: URLs may carry ``user:password@`` or ``?password=``, and
libpq conninfo ``password=...``; none of them may be shown."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

#: What stands in for a password that was in a URL.
HIDDEN: Final = "***"

# scheme://user:password@ -> scheme://user:***@ (also a bare "scheme://password@" is hidden)
_USERINFO: Final = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/\s@]*)@")

# password=... as a URL query parameter or a conninfo keyword (quoted or bare)
_PASSWORD_PARAM: Final = re.compile(
    r"(?P<key>\bpassword\s*=\s*)(?:'(?:[^'\\]|\\.)*'?|[^&\s'\"]*)", re.IGNORECASE
)


def _hide(match: re.Match[str]) -> str:
    user, colon, _ = match["userinfo"].partition(":")
    shown = f"{user}:{HIDDEN}" if colon else HIDDEN
    return f"{match['scheme']}{shown}@"


def redact_urls(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@`` in it replaced,
    and of every ``password=...`` parameter (URL query or libpq conninfo)."""
    return _PASSWORD_PARAM.sub(lambda m: f"{m['key']}{HIDDEN}", _USERINFO.sub(_hide, text))


def url_passwords(url: str) -> set[str]:
    """Every form of the passwords ``url`` carries (``user:password@`` and ``password=``
    query parameters; as written and percent-decoded), so they can be masked anywhere a
    library echoes them (libpq quotes a badly encoded one on its own)."""
    found: set[str] = set()
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is not None:
        userinfo, at, _ = parts.netloc.rpartition("@")
        if at:
            _, colon, password = userinfo.partition(":")
            if colon:
                found.add(password)
        found.update(
            value
            for key, value in parse_qsl(parts.query, keep_blank_values=True)
            if key.lower() == "password"
        )
        for raw in parts.query.split("&"):
            key, eq, value = raw.partition("=")
            if eq and unquote(key).strip().lower() == "password":
                found.add(value)
    found |= {unquote(p) for p in found}
    return {p for p in found if p}


def masker(url: str) -> Callable[[str], str]:
    """A function hiding ``url``'s passwords (any form) and any URL's, in a text."""
    secrets = sorted(url_passwords(url), key=len, reverse=True)

    def mask(text: str) -> str:
        for secret in secrets:
            text = text.replace(secret, HIDDEN)
        return redact_urls(text)

    return mask


def without_userinfo(url: str) -> tuple[str, str | None, str | None]:
    """``url`` without ``user:password@``, plus that user and password (``None`` if absent),
    so a client can send them as credentials and show the URL safely."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None, None
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=host)), parts.username, parts.password


def shown_url(url: str) -> str:
    """``url`` safe to print: its own passwords hidden in every form (a password with a
    space, which ``redact_urls`` cannot tell from the text around it, included)."""
    return masker(url)(url)
