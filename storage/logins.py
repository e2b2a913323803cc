"""One-time login links and browser sessions (pure; the rows live in ``storage.metadata``).

A login link carries a random token (32 bytes, URL-safe base64) that stands for an API key
for 7 days and works once; a browser session is another random token kept in a cookie.
Only the SHA-256 of either token is stored, as for keys (``storage.keys``): 256 random bits
need neither salt nor a slow hash.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

LOGIN_LINK_TTL_MS: Final = 7 * 86_400_000
SESSION_TTL_MS: Final = 30 * 86_400_000
TOKEN_BYTES: Final = 32
LOGIN_PATH: Final = "/login/"
_TOKEN_RE: Final = re.compile(r"[A-Za-z0-9_-]{43}")


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A browser session as stored: the key it stands for, its CSRF token, its times."""

    session_sha256: bytes
    key_id: str
    csrf: str
    created_ms: int
    expires_ms: int
    ended_ms: int | None = None

    def live(self, now_ms: int) -> bool:
        """Whether the session may still be used (not signed out, not expired)."""
        return self.ended_ms is None and now_ms < self.expires_ms


def new_token() -> str:
    """A fresh random token (login link or session)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> bytes:
    """SHA-256 of a token (what the metadata database keeps)."""
    return hashlib.sha256(token.encode("utf-8")).digest()


def is_token(text: str) -> bool:
    """Whether ``text`` has the shape of a token (no database lookup for junk)."""
    return _TOKEN_RE.fullmatch(text) is not None


def check_base_url(base: str) -> str | None:
    """Why ``base`` cannot start a login link (``http(s)://host[:port][/path]``), or ``None``."""
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return f"the login URL base must look like https://host or http://host:port; got {base!r}"
    if parts.query or parts.fragment or "@" in parts.netloc:
        return f"the login URL base {base!r} must hold no query, fragment or user name"
    return None


def login_url(base: str, token: str) -> str:
    """The link a user opens: ``<base>/login/<token>``."""
    return f"{base.rstrip('/')}{LOGIN_PATH}{token}"
