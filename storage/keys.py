"""API keys: generation, parsing and hashing (pure; the rows live in ``storage.metadata``).

A key reads ``agd_<key id>_<secret>``: the key id (10 lower-case letters and digits) is not
secret and names the key in lists, logs and ``keys revoke``; the secret is 32 random bytes,
URL-safe base64. Only SHA-256 of the whole key is stored. A fast unsalted hash is enough
because the key is 256 bits of randomness, not a password a person chose: there is no
dictionary to try and a salt or a slow hash would add nothing but per-request cost.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from dataclasses import dataclass
from typing import Final, Literal, get_args

Role = Literal["farmer", "coop", "operator"]
ROLES: Final[tuple[Role, ...]] = get_args(Role)

KEY_PREFIX: Final = "agd_"
KEY_ID_LENGTH: Final = 10
SECRET_BYTES: Final = 32
_KEY_ID_ALPHABET: Final = string.ascii_lowercase + string.digits
_KEY_RE: Final = re.compile(
    rf"{KEY_PREFIX}(?P<key_id>[a-z0-9]{{{KEY_ID_LENGTH}}})_(?P<secret>[A-Za-z0-9_-]{{43}})"
)
_KEY_ID_RE: Final = re.compile(rf"[a-z0-9]{{{KEY_ID_LENGTH}}}")
_WIRE_ID_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_SUBJECT_LENGTH: Final = 128
MAX_NAME_LENGTH: Final = 200


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """What is stored about one key: never the key itself, only its SHA-256."""

    key_id: str
    key_sha256: bytes
    role: Role
    subject: str
    name: str
    created_ms: int
    revoked_ms: int | None = None
    #: A farmer key made for one cooperative (by it, or by an operator): it sees only that
    #: cooperative's fields of its farmer, and that cooperative may list, revoke and give
    #: it login links. ``""``: every field of its farmer (operator-made, unscoped).
    coop: str = ""

    @property
    def revoked(self) -> bool:
        """Whether the key has been revoked (it no longer authenticates)."""
        return self.revoked_ms is not None


@dataclass(frozen=True, slots=True)
class NewKey:
    """A freshly generated key: ``key`` is shown to the user once, ``record`` is stored."""

    key: str
    record: ApiKeyRecord


def hash_key(key: str) -> bytes:
    """SHA-256 of the whole key string (what the metadata database keeps)."""
    return hashlib.sha256(key.encode("utf-8")).digest()


def key_matches(key: str, record: ApiKeyRecord) -> bool:
    """Whether ``key`` is the key ``record`` was made from (constant-time comparison)."""
    return hmac.compare_digest(hash_key(key), record.key_sha256)


def parse_key_id(key: str) -> str | None:
    """The key id of a well-formed key, else ``None`` (no database lookup for junk)."""
    m = _KEY_RE.fullmatch(key)
    return m.group("key_id") if m else None


def is_key_id(value: str) -> bool:
    """Whether ``value`` has the shape of a key id (as printed by ``keys list``)."""
    return _KEY_ID_RE.fullmatch(value) is not None


def validate_subject(role: str, subject: str) -> str | None:
    """Why ``subject`` cannot be the subject of a ``role`` key, or ``None`` if it can.

    A cooperative's id appears in MQTT topics, so it follows the wire's id rule; a farmer's
    id is the ``owner`` property of their fields, which may be any short text.
    """
    if role not in ROLES:
        return f"role {role!r} is not one of {', '.join(ROLES)}"
    if not subject or subject != subject.strip():
        return "the subject must be non-empty, without leading or trailing spaces"
    if len(subject) > MAX_SUBJECT_LENGTH:
        return f"the subject is {len(subject)} characters; at most {MAX_SUBJECT_LENGTH}"
    if any(not ch.isprintable() for ch in subject):
        return f"the subject {subject!r} holds control characters"
    if role == "coop" and _WIRE_ID_RE.fullmatch(subject) is None:
        return (
            f"a cooperative id must match [A-Za-z0-9_-]{{1,64}} like its MQTT topics; "
            f"got {subject!r}"
        )
    return None


def validate_key_coop(role: str, coop: str) -> str | None:
    """Why ``coop`` cannot be the cooperative of a ``role`` key, or ``None`` if it can: only
    farmer keys have one (a cooperative key's subject is its cooperative), a wire id."""
    if not coop:
        return None
    if role != "farmer":
        return f"only farmer keys belong to a cooperative; a {role} key has no 'coop'"
    if _WIRE_ID_RE.fullmatch(coop) is None:
        return f"a cooperative id must match [A-Za-z0-9_-]{{1,64}}; got {coop[:80]!r}"
    return None


def validate_name(name: str) -> str | None:
    """Why ``name`` cannot name a key, or ``None``."""
    if len(name) > MAX_NAME_LENGTH:
        return f"the name is {len(name)} characters; at most {MAX_NAME_LENGTH}"
    if any(not ch.isprintable() for ch in name):
        return "the name holds control characters"
    return None


def generate_key(role: Role, subject: str, name: str, now_ms: int, *, coop: str = "") -> NewKey:
    """A new random key for ``role``/``subject`` (a farmer key may belong to ``coop``);
    ``ValueError`` says what is wrong."""
    problem = validate_subject(role, subject) or validate_key_coop(role, coop)
    problem = problem or validate_name(name)
    if problem is not None:
        raise ValueError(problem)
    key_id = "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(KEY_ID_LENGTH))
    key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(SECRET_BYTES)}"
    record = ApiKeyRecord(key_id, hash_key(key), role, subject, name, now_ms, coop=coop)
    return NewKey(key, record)
