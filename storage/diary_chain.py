"""The spray diary's hash chain (pure): canonical content, entry hashes, verification.

Each field's diary is an append-only chain. Entry ``n`` of field ``F`` stores its content as
canonical JSON (keys sorted, no spaces, UTF-8), ``content_hash`` = SHA-256 of those bytes,
``prev_hash`` = the ``entry_hash`` of entry ``n - 1`` (64 zeros for the first) and
``entry_hash`` = SHA-256 of ``"agridrone-diary-v1\\n{F}\\n{n}\\n{written_ms}\\n{prev_hash}\\n
{content_hash}"``. Changing, removing or reordering any row breaks the chain at that row
(or the next one), which ``verify_chain`` names. The last entry can only be rewritten
undetected by someone who also rewrites its hash: keep the head hashes that
``agridrone diary verify`` prints somewhere else to catch that too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson

GENESIS: Final = "0" * 64
DOMAIN: Final = "agridrone-diary-v1"


def canonical(doc: Mapping[str, Any]) -> str:
    """The one text of a content document that is hashed and stored."""
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS).decode()


def content_hash(text: str) -> str:
    """SHA-256 (hex) of a stored content text."""
    return hashlib.sha256(text.encode()).hexdigest()


def entry_hash(field_id: str, n: int, written_ms: int, prev_hash: str, c_hash: str) -> str:
    """The hash that links entry ``n`` of ``field_id`` to the one before."""
    text = f"{DOMAIN}\n{field_id}\n{n}\n{written_ms}\n{prev_hash}\n{c_hash}"
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainRow:
    """One stored diary entry as the chain sees it."""

    field_id: str
    n: int
    entry_key: str
    written_ms: int
    content: str
    content_hash: str
    prev_hash: str
    entry_hash: str


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first entry of a field's chain that does not check out, and why."""

    field_id: str
    n: int
    entry_key: str
    reason: str

    def __str__(self) -> str:
        return f"field {self.field_id}: entry {self.n} ({self.entry_key}): {self.reason}"


@dataclass(frozen=True, slots=True)
class ChainReport:
    """A verification: entries checked per field, each field's head hash, the breaks."""

    entries: Mapping[str, int]
    heads: Mapping[str, str]
    breaks: tuple[ChainBreak, ...]

    @property
    def ok(self) -> bool:
        """Whether every chain checked out."""
        return not self.breaks


def verify_chain(rows: Iterable[ChainRow]) -> ChainReport:
    """Check chains of rows given by field then ``n``; the first break of each field."""
    entries: dict[str, int] = {}
    heads: dict[str, str] = {}
    broken: dict[str, ChainBreak] = {}
    expected_n: dict[str, int] = {}
    for row in rows:
        f = row.field_id
        entries[f] = entries.get(f, 0) + 1
        if f in broken:
            continue
        want_n = expected_n.get(f, 1)
        prev = heads.get(f, GENESIS)
        reason = _problem(row, want_n, prev)
        if reason is not None:
            broken[f] = ChainBreak(f, row.n, row.entry_key, reason)
            continue
        heads[f] = row.entry_hash
        expected_n[f] = want_n + 1
    return ChainReport(entries, heads, tuple(broken[f] for f in sorted(broken)))


def _problem(row: ChainRow, want_n: int, prev: str) -> str | None:
    if row.n != want_n:
        return f"is number {row.n} where {want_n} was expected (an entry is missing)"
    if row.prev_hash != prev:
        return "its prev_hash is not the previous entry's hash (an entry was changed or removed)"
    if content_hash(row.content) != row.content_hash:
        return "its content does not match its content_hash (the content was changed)"
    try:
        orjson.loads(row.content)
    except orjson.JSONDecodeError:
        return "its content is not JSON"
    want = entry_hash(row.field_id, row.n, row.written_ms, row.prev_hash, row.content_hash)
    if want != row.entry_hash:
        return "its entry_hash does not match its number, time, prev_hash and content_hash"
    return None
