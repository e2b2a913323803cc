"""API keys over HTTP: list (never a secret), create (the key shown once, optionally with a
one-time login link and its QR code), revoke (its browser sessions end), new login links.

Who may (docs/access.md, "Managing keys"): an operator every key; a cooperative the farmer
keys made for it (``coop``), which see only that cooperative's fields of their farmer, so a
cooperative can hand its members keys and login links without reaching any other
cooperative's fields. A key a caller may not manage answers exactly like one that does not
exist (404). Farmers manage no keys (403). No answer but the creation's carries the key,
and no log line ever does (nor a login link's token).
"""

from __future__ import annotations

import logging
from typing import Annotated, Final

import segno
from fastapi import APIRouter, Body, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api.auth import CoopOrOperatorDep, Principal
from api.deps import MetadataDep
from api.sessions import now_ms
from api.times import rfc3339
from storage.keys import (
    KEY_ID_LENGTH,
    MAX_NAME_LENGTH,
    MAX_SUBJECT_LENGTH,
    ApiKeyRecord,
    Role,
    generate_key,
)
from storage.logins import LOGIN_LINK_TTL_MS, check_base_url, hash_token, login_url, new_token
from storage.metadata import MetadataConflictError, MetadataDB

router = APIRouter(tags=["keys"])
log = logging.getLogger("agridrone.api")

KeyId = Annotated[
    str, Path(pattern=f"^[a-z0-9]{{{KEY_ID_LENGTH}}}$", description="the key's id (not secret)")
]
#: The QR code's module size in the PNG, and its quiet zone (as ``keys create --qr``).
QR_SCALE: Final = 8
QR_BORDER: Final = 4
_NO_STORE: Final = {"Cache-Control": "no-store"}


class KeyAnswer(BaseModel):
    """A key as listed: who it is for, never its secret."""

    key_id: str
    role: str
    subject: str
    name: str
    coop: str | None
    created: str
    revoked: str | None


class LoginLink(BaseModel):
    """A one-time login link (works once, until ``expires``) and its QR code, as ``data:``
    URIs (SVG to show, PNG to print)."""

    url: str
    expires: str
    qr_svg: str
    qr_png: str


class NewKeyAnswer(KeyAnswer):
    """A key just made: ``key`` is shown this once (only its hash is kept)."""

    key: str
    login: LoginLink | None = None


class RevokedAnswer(KeyAnswer):
    """A revoked key, and how many of its browser sessions were ended."""

    sessions_ended: int


class NewKeyBody(BaseModel):
    """What a new key is for."""

    model_config = ConfigDict(extra="forbid")

    role: Role
    subject: str = Field(
        min_length=1,
        max_length=MAX_SUBJECT_LENGTH,
        description="farmer: the owner id of their fields; coop: the cooperative id",
    )
    name: str = Field("", max_length=MAX_NAME_LENGTH, description="who holds the key")
    coop: str | None = Field(
        None,
        max_length=64,
        description="farmer keys: the cooperative it is for (a cooperative's own key: its own)",
    )
    login_link: bool = Field(default=False, description="also make a one-time login link")
    base_url: str | None = Field(
        None, max_length=300, description="the web app's address in the link (default: this one)"
    )


class LinkBody(BaseModel):
    """Where the link points."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = Field(
        None, max_length=300, description="the web app's address in the link (default: this one)"
    )


def may_manage(principal: Principal, record: ApiKeyRecord) -> bool:
    """Operators manage every key; a cooperative the farmer keys made for it."""
    if principal.role == "operator":
        return True
    return principal.role == "coop" and record.role == "farmer" and record.coop == principal.subject


def key_answer(record: ApiKeyRecord) -> KeyAnswer:
    """The listing form of a key (no hash, no secret)."""
    return KeyAnswer(
        key_id=record.key_id,
        role=record.role,
        subject=record.subject,
        name=record.name,
        coop=record.coop or None,
        created=rfc3339(record.created_ms),
        revoked=None if record.revoked_ms is None else rfc3339(record.revoked_ms),
    )


def _no_key(key_id: str) -> HTTPException:
    """The 404 of a key that does not exist or that the caller may not manage."""
    return HTTPException(404, detail=f"no API key {key_id!r}; GET /api/v1/keys lists yours")


def _managed(principal: Principal, metadata: MetadataDB, key_id: str) -> ApiKeyRecord:
    """The key if the caller may manage it, else the 404 of an unknown id."""
    record = metadata.api_key(key_id)
    if record is None or not may_manage(principal, record):
        raise _no_key(key_id)
    return record


def _base(request: Request, given: str | None) -> str:
    """The link's base: the one given, else the address this request came to."""
    base = given if given is not None else str(request.base_url).rstrip("/")
    problem = check_base_url(base)
    if problem is not None:
        raise HTTPException(422, detail=f"base_url: {problem}")
    return base


def _login_link(metadata: MetadataDB, key_id: str, base: str) -> LoginLink:
    """Store a new login link for the key; the link and its QR code."""
    now = now_ms()
    token = new_token()
    metadata.add_login_link(hash_token(token), key_id, now, now + LOGIN_LINK_TTL_MS)
    url = login_url(base, token)
    qr = segno.make(url, error="m")
    return LoginLink(
        url=url,
        expires=rfc3339(now + LOGIN_LINK_TTL_MS),
        qr_svg=qr.svg_data_uri(scale=QR_SCALE // 2, border=QR_BORDER),
        qr_png=qr.png_data_uri(scale=QR_SCALE, border=QR_BORDER),
    )


def _key_coop(principal: Principal, body: NewKeyBody) -> str:
    """The new key's cooperative: a cooperative's own (farmer keys only); what an operator
    gives (farmer keys only)."""
    if principal.role == "coop":
        if body.role != "farmer":
            raise HTTPException(
                403,
                detail=f"a cooperative key creates farmer keys for its members only; ask an "
                f"operator for a {body.role} key (key {principal.key_id} is a coop key)",
            )
        if body.coop not in (None, "", principal.subject):
            raise HTTPException(
                422,
                detail=f"coop: your key is for cooperative {principal.subject!r}; the farmer "
                "keys you create are for it (leave 'coop' out)",
            )
        return principal.subject
    return body.coop or ""


@router.get("/keys")
def list_keys(
    principal: CoopOrOperatorDep,
    metadata: MetadataDep,
    response: Response,
    active: Annotated[bool, Query(description="leave out revoked keys")] = False,
) -> list[KeyAnswer]:
    """The keys the caller manages, oldest first, without secrets: an operator every key, a
    cooperative the farmer keys made for it."""
    farmers_of = principal.subject if principal.role == "coop" else None
    records = metadata.api_keys(include_revoked=not active, farmers_of=farmers_of)
    response.headers.update(_NO_STORE)
    return [key_answer(r) for r in records]


@router.post("/keys", status_code=201)
def create_key(
    principal: CoopOrOperatorDep,
    metadata: MetadataDep,
    request: Request,
    response: Response,
    body: Annotated[NewKeyBody, Body()],
) -> NewKeyAnswer:
    """Make a key and show it this once (only its hash is kept); with ``login_link`` also a
    one-time login link (7 days) and its QR code. A cooperative makes farmer keys for its
    own members only (they see only its fields)."""
    coop = _key_coop(principal, body)
    base = _base(request, body.base_url) if body.login_link else None
    try:
        new = generate_key(body.role, body.subject, body.name, now_ms(), coop=coop)
    except ValueError as exc:
        raise HTTPException(422, detail=str(exc)) from exc
    metadata.add_api_key(new.record)
    log.info(
        "api_key_created key_id=%s role=%s coop=%s by=%s",
        new.record.key_id,
        new.record.role,
        coop or "-",
        principal.key_id,
    )
    link = _login_link(metadata, new.record.key_id, base) if base is not None else None
    response.headers.update(_NO_STORE)
    return NewKeyAnswer(**key_answer(new.record).model_dump(), key=new.key, login=link)


@router.delete("/keys/{key_id}")
def revoke_key(key_id: KeyId, principal: CoopOrOperatorDep, metadata: MetadataDep) -> RevokedAnswer:
    """Revoke a key at once, for good, and end its browser sessions (a key already revoked
    keeps its first revocation time)."""
    _managed(principal, metadata, key_id)
    now = now_ms()
    try:
        record = metadata.revoke_api_key(key_id, now)
    except MetadataConflictError as exc:  # keys are never deleted; answered all the same
        raise _no_key(key_id) from exc
    ended = metadata.end_sessions_of_key(key_id, now)
    log.info("api_key_revoked key_id=%s by=%s sessions_ended=%d", key_id, principal.key_id, ended)
    return RevokedAnswer(**key_answer(record).model_dump(), sessions_ended=ended)


@router.post("/keys/{key_id}/login-link", status_code=201)
def new_login_link(  # noqa: PLR0917 -- path, principal, metadata, request/response, body
    key_id: KeyId,
    principal: CoopOrOperatorDep,
    metadata: MetadataDep,
    request: Request,
    response: Response,
    body: Annotated[LinkBody | None, Body()] = None,
) -> LoginLink:
    """A new one-time login link for a key in use (7 days, works once) and its QR code;
    the key's earlier links stay valid until used or expired."""
    record = _managed(principal, metadata, key_id)
    if record.revoked:
        raise HTTPException(
            409, detail=f"API key {key_id} has been revoked; create a new key instead"
        )
    link = _login_link(metadata, key_id, _base(request, body.base_url if body else None))
    log.info("login_link_created key_id=%s by=%s", key_id, principal.key_id)
    response.headers.update(_NO_STORE)
    return link
