"""``GET /api/v1/session``: who the caller is, and (by session cookie) the CSRF token."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel

from api.auth import PrincipalDep
from api.deps import MetadataDep
from api.sessions import SESSION_COOKIE, live_session, now_ms
from api.times import rfc3339

router = APIRouter(tags=["session"])


class SessionAnswer(BaseModel):
    """The caller: role, subject and key (``coop``: the cooperative a farmer key is for);
    ``csrf`` and ``expires`` only for a session."""

    role: str
    subject: str
    key_id: str
    name: str
    coop: str | None = None
    via: str
    csrf: str | None = None
    expires: str | None = None


@router.get("/session")
def who_am_i(principal: PrincipalDep, metadata: MetadataDep, request: Request) -> SessionAnswer:
    """The caller's role and subject; by session cookie also the CSRF token every write by
    cookie must send as ``X-CSRF-Token``, and when the session expires."""
    key = metadata.api_key(principal.key_id)
    name = key.name if key is not None else ""
    answer = SessionAnswer(
        role=principal.role,
        subject=principal.subject,
        key_id=principal.key_id,
        name=name,
        coop=principal.coop or None,
        via="bearer",
    )
    header = request.headers.get("authorization")
    cookie = request.cookies.get(SESSION_COOKIE)
    if (header is None or not header.strip()) and cookie:
        found = live_session(metadata, cookie, now_ms())
        if found is not None:
            session, _ = found
            answer.via = "cookie"
            answer.csrf = session.csrf
            answer.expires = rfc3339(session.expires_ms)
    return answer
