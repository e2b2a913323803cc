"""Browser sessions: a cookie standing for an API key, opened by a login link or a pasted key.

The cookie (``agd_session``) holds a random token; the metadata database keeps its SHA-256,
the key id it stands for, a CSRF token and its expiry (30 days). It is ``HttpOnly`` (page
scripts never read it), ``SameSite=Strict`` (no other site's page can make the browser send
it) and ``Secure`` when the request came over https (``X-Forwarded-Proto`` is believed from
the proxies of ``--forwarded-allow-ips``); over plain http on a farm LAN it cannot be Secure,
or the browser would drop it: there the network is the boundary (docs/web.md).

CSRF: a write (POST, PUT, PATCH, DELETE) authenticated by the cookie must carry the
session's CSRF token in ``X-CSRF-Token`` (HTML forms: a ``csrf`` field), compared in constant
time; and when the browser sends ``Origin`` it must be this server's own. The token comes
with the page (a ``<meta>``) and from ``GET /api/v1/session``, which another site's page
cannot read (no CORS). Bearer requests are not concerned: a browser never adds that header
by itself.
"""

from __future__ import annotations

import hmac
import time
from typing import Final

from fastapi import HTTPException, Request, Response, status

from storage.keys import ApiKeyRecord
from storage.logins import SESSION_TTL_MS, SessionRecord, hash_token, is_token, new_token
from storage.metadata import MetadataDB

SESSION_COOKIE: Final = "agd_session"
CSRF_HEADER: Final = "x-csrf-token"
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
_SIGN_IN_AGAIN: Final = "open a new login link or sign in again at /login"


def now_ms() -> int:
    """The current time in epoch milliseconds."""
    return time.time_ns() // 1_000_000


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


def live_session(
    metadata: MetadataDB, cookie: str, now: int
) -> tuple[SessionRecord, ApiKeyRecord] | None:
    """The live session of a cookie value and its key (not revoked), else ``None``."""
    if not is_token(cookie):
        return None
    record = metadata.session(hash_token(cookie))
    if record is None or not record.live(now):
        return None
    key = metadata.api_key(record.key_id)
    if key is None or key.revoked:
        return None
    return record, key


def same_origin(request: Request) -> bool:
    """Whether the request's ``Origin`` (when the browser sent one) is this server's."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return origin == f"{request.url.scheme}://{request.url.netloc}"


def csrf_ok(request: Request, session: SessionRecord, given: str | None) -> bool:
    """Whether an unsafe request by cookie carries the session's CSRF token (and, when the
    browser named its origin, comes from this server's own pages)."""
    if not same_origin(request) or not given:
        return False
    return hmac.compare_digest(given.encode(), session.csrf.encode())


def session_principal(request: Request, metadata: MetadataDB, cookie: str) -> ApiKeyRecord:
    """The key a request's session cookie stands for; 401 if the session is unknown,
    ended, expired or its key revoked; 403 for a write without the CSRF token."""
    found = live_session(metadata, cookie, now_ms())
    if found is None:
        raise _unauthorized(f"the session has ended or is not valid; {_SIGN_IN_AGAIN}")
    session, key = found
    if request.method not in SAFE_METHODS and not csrf_ok(
        request, session, request.headers.get(CSRF_HEADER)
    ):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail="a write by session cookie needs the X-CSRF-Token header of the session"
            " (GET /api/v1/session) and must come from this site's own pages",
        )
    return key


def start_session(metadata: MetadataDB, key: ApiKeyRecord, now: int) -> tuple[str, SessionRecord]:
    """A new session for ``key``: (the cookie value, the stored record)."""
    token = new_token()
    record = SessionRecord(hash_token(token), key.key_id, new_token(), now, now + SESSION_TTL_MS)
    metadata.add_session(record)
    return token, record


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    """Put the session cookie on ``response`` (Secure when the request came over https)."""
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=SESSION_TTL_MS // 1000,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    """Tell the browser to forget the session cookie."""
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
