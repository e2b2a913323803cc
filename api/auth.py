"""Who is asking, and what they may see: bearer API keys to a ``Principal``, plus the rules.

Routes declare ``PrincipalDep`` (any valid key) or a ``require_role(...)`` dependency, then
filter with the pure ``can_see_*`` helpers. A resource the caller may not see is answered
with 404, exactly as if it did not exist, so a farmer cannot probe for other farmers' fields;
403 is only for whole routes a role never uses (the rejected-message log for non-operators).

Browsers sign in once (a one-time login link or a pasted key, ``web``) and then send a
session cookie (``api.sessions``) instead of the header: it stands for the key it was opened
with, so it never gives more than that key, and dies with the key's revocation. A request
with an ``Authorization`` header is judged by the header alone, exactly as before. Writes by
cookie must carry the session's CSRF token in ``X-CSRF-Token`` (``api.sessions``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Final

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.deps import MetadataDep
from api.sessions import SESSION_COOKIE, session_principal
from storage.keys import KEY_PREFIX, ROLES, Role, key_matches, parse_key_id

_CHALLENGE: Final = {"WWW-Authenticate": "Bearer"}
_INVALID: Final = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
#: Schemes a client may send by mistake, named in the 401 from this list (never from the
#: header itself, which may be a bare key or a password).
_OTHER_SCHEMES: Final = {
    s.lower(): s for s in ("Basic", "Digest", "Token", "Negotiate", "NTLM", "ApiKey", "JWT")
}


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller behind a valid key: a farmer, a cooperative or an operator. ``coop``: the
    cooperative a farmer key was made for (it then sees only that cooperative's fields)."""

    role: Role
    subject: str
    key_id: str
    coop: str = ""


def _unauthorized(detail: str, headers: dict[str, str]) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers=headers)


#: Declares the scheme in OpenAPI (so /docs has an Authorize button); the checks and
#: their messages below stay ours, hence ``auto_error=False``.
bearer_scheme: Final = HTTPBearer(
    auto_error=False,
    scheme_name="APIKey",
    description="An agridrone API key (`agridrone keys create`): agd_<key id>_<secret>",
)


def bearer_key(request: Request) -> str:
    """The key from ``Authorization: Bearer <key>``; 401 when it is missing or malformed.

    No message repeats any part of the header: a key sent without ``Bearer`` is still a key.
    """
    header = request.headers.get("authorization")
    if not header or not header.strip():
        raise _unauthorized(
            "no API key: send `Authorization: Bearer <key>`"
            " (an operator creates keys with `agridrone keys create`)",
            _CHALLENGE,
        )
    scheme, _, key = header.strip().partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer":
        if scheme.startswith(KEY_PREFIX):
            hint = "it looks like a key sent without the word Bearer"
        elif scheme.lower() in _OTHER_SCHEMES:
            hint = f"it uses the {_OTHER_SCHEMES[scheme.lower()]!r} scheme"
        else:
            hint = "it does not start with the word Bearer"
        raise _unauthorized(
            f"the Authorization header is not a bearer key ({hint});"
            " send `Authorization: Bearer <key>`",
            _CHALLENGE,
        )
    if not key:
        raise _unauthorized(
            "the Authorization header says Bearer but holds no key;"
            " send `Authorization: Bearer <key>`",
            _CHALLENGE,
        )
    return key


def authenticate(
    request: Request,
    metadata: MetadataDep,
    _declared: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
) -> Principal:
    """The ``Principal`` of the request's bearer key (or, without an ``Authorization``
    header, of its session cookie); 401 if absent, unknown, revoked or ended."""
    header = request.headers.get("authorization")
    cookie = request.cookies.get(SESSION_COOKIE)
    if (header is None or not header.strip()) and cookie:
        held = session_principal(request, metadata, cookie)
        return Principal(held.role, held.subject, held.key_id, held.coop)
    key = bearer_key(request)
    key_id = parse_key_id(key)
    if key_id is None:
        raise _unauthorized(
            "the API key is malformed: keys look like agd_<10 letters or digits>_<43 characters>;"
            " check it was copied whole",
            _INVALID,
        )
    record = metadata.api_key(key_id)
    if record is None or not key_matches(key, record):
        raise _unauthorized(
            f"API key {key_id} is not valid; ask an operator for a new key",
            _INVALID,
        )
    if record.revoked:
        raise _unauthorized(
            f"API key {key_id} has been revoked; ask an operator for a new key",
            _INVALID,
        )
    return Principal(record.role, record.subject, record.key_id, record.coop)


PrincipalDep = Annotated[Principal, Depends(authenticate)]


def require_role(*roles: Role) -> Callable[[Principal], Principal]:
    """A dependency admitting only keys of ``roles`` (403 naming the roles otherwise)."""
    unknown = [r for r in roles if r not in ROLES]
    if not roles or unknown:
        raise ValueError(f"require_role needs roles among {ROLES}, got {roles}")
    allowed = " or ".join(roles)

    def check(principal: PrincipalDep) -> Principal:
        if principal.role not in roles:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"this needs a {allowed} key; key {principal.key_id} is a "
                f"{principal.role} key",
            )
        return principal

    return check


OperatorDep = Annotated[Principal, Depends(require_role("operator"))]
CoopOrOperatorDep = Annotated[Principal, Depends(require_role("coop", "operator"))]


def can_see_field(principal: Principal, field_owner: str, field_coop: str) -> bool:
    """Operators see every field, a cooperative its members' fields, a farmer their own (of
    their key's cooperative only, when the key was made for one)."""
    if principal.role == "operator":
        return True
    if principal.role == "coop":
        return bool(field_coop) and field_coop == principal.subject
    if principal.coop and field_coop != principal.coop:
        return False
    return bool(field_owner) and field_owner == principal.subject


def is_commune_zone(kind: str, coop: str) -> bool:
    """A commune-wide no-spray zone: no cooperative, binds every field."""
    return kind == "no_spray" and not coop


def can_read_field(principal: Principal, kind: str, field_owner: str, field_coop: str) -> bool:
    """Whether the caller may read a field's or zone's outline (``GET /fields``,
    ``/fields/{id}``, its versions): what ``can_see_field`` allows, plus every commune-wide
    zone for every key, since it binds everyone's fields (writing them stays an operator's).
    Flights and coverage still follow ``can_see_field``."""
    return can_see_field(principal, field_owner, field_coop) or is_commune_zone(kind, field_coop)


def can_see_drone(principal: Principal, coop: str) -> bool:
    """Operators see every drone, a cooperative its own; farmers see drones only via flights."""
    if principal.role == "operator":
        return True
    return principal.role == "coop" and bool(coop) and coop == principal.subject


def can_see_coop(principal: Principal, coop: str) -> bool:
    """Whether the caller may read a cooperative's reports: the cooperative and operators."""
    return can_see_drone(principal, coop)


def can_see_flight(
    principal: Principal, drone_coop: str, fields: Iterable[tuple[str, str]]
) -> bool:
    """Whether the caller may see a flight by a drone of ``drone_coop`` over ``fields``.

    ``fields`` are the (owner, coop) of the fields it touched. A cooperative sees its own
    drones' flights and any flight over its members' fields (hired drones); a farmer sees
    the flights over their fields, and the route shows them only those fields' part.
    """
    if can_see_drone(principal, drone_coop):
        return True
    return any(can_see_field(principal, owner, coop) for owner, coop in fields)


def can_see_flight_on_field(
    principal: Principal,
    drone_coop: str,
    field: tuple[str, str],
    *,
    overlapped_coops: frozenset[str] = frozenset(),
    named_by_job: bool = False,
) -> bool:
    """Whether the caller may see a flight by a drone of ``drone_coop`` through one field
    (``field`` is its (owner, coop)).

    Besides ``can_see_field``: a field that overlaps a field of the drone's own cooperative
    (``overlapped_coops``: the cooperatives whose fields it overlaps significantly, see
    ``fields.overlaps``) shows that cooperative's flights only when the flight's job named
    it, so nobody learns another cooperative's flights by drawing a field over its fields.
    """
    if can_see_drone(principal, drone_coop):
        return True
    if not can_see_field(principal, *field):
        return False
    return named_by_job or field[1] == drone_coop or drone_coop not in overlapped_coops


def can_see_rejected(principal: Principal) -> bool:
    """Only operators read the rejected-message log (payloads of every cooperative)."""
    return principal.role == "operator"
