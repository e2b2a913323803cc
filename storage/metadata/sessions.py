"""One-time login links and browser sessions as stored (only hashes of their tokens)."""

from __future__ import annotations

from typing import Any, ClassVar

from storage.logins import SessionRecord
from storage.metadata._db import Database, Step

_SESSION_COLUMNS = "session_sha256, key_id, csrf, created_ms, expires_ms, ended_ms"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS login_links (
    token_sha256 BLOB    PRIMARY KEY,
    key_id       TEXT    NOT NULL,
    created_ms   INTEGER NOT NULL,
    expires_ms   INTEGER NOT NULL,
    used_ms      INTEGER
);
CREATE TABLE IF NOT EXISTS web_sessions (
    session_sha256 BLOB    PRIMARY KEY,
    key_id         TEXT    NOT NULL,
    csrf           TEXT    NOT NULL,
    created_ms     INTEGER NOT NULL,
    expires_ms     INTEGER NOT NULL,
    ended_ms       INTEGER
);
CREATE INDEX IF NOT EXISTS web_sessions_key ON web_sessions (key_id);
"""


class SessionTable(Database):
    """Login links (usable once, until they expire) and browser sessions."""

    migrations: ClassVar[tuple[Step, ...]] = (Step(1, "login_links and web_sessions", _SCHEMA),)

    def add_login_link(
        self, token_sha256: bytes, key_id: str, created_ms: int, expires_ms: int
    ) -> None:
        """Store a new login link's hash; links expired a day ago or more are dropped."""
        with self._write() as tx:
            tx.execute("DELETE FROM login_links WHERE expires_ms < ?", (created_ms - 86_400_000,))
            tx.execute(
                "INSERT INTO login_links (token_sha256, key_id, created_ms, expires_ms)"
                " VALUES (?, ?, ?, ?)",
                (token_sha256, key_id, created_ms, expires_ms),
            )

    def use_login_link(self, token_sha256: bytes, now_ms: int) -> str | None:
        """Mark the link used and return its key id; ``None`` when it is unknown, expired
        or already used (exactly one caller ever gets the key id of a link)."""
        with self._write() as tx:
            changed = tx.execute(
                "UPDATE login_links SET used_ms = ?"
                " WHERE token_sha256 = ? AND used_ms IS NULL AND expires_ms > ?",
                (now_ms, token_sha256, now_ms),
            ).rowcount
            if changed != 1:
                return None
            row = tx.execute(
                "SELECT key_id FROM login_links WHERE token_sha256 = ?", (token_sha256,)
            ).fetchone()
        return None if row is None else str(row[0])

    def add_session(self, record: SessionRecord) -> None:
        """Store a new session; sessions ended or expired a day ago or more are dropped."""
        with self._write() as tx:
            tx.execute(
                "DELETE FROM web_sessions WHERE expires_ms < ? OR ended_ms < ?",
                (record.created_ms - 86_400_000, record.created_ms - 86_400_000),
            )
            tx.execute(
                f"INSERT INTO web_sessions ({_SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",  # noqa: S608
                (
                    record.session_sha256,
                    record.key_id,
                    record.csrf,
                    record.created_ms,
                    record.expires_ms,
                    record.ended_ms,
                ),
            )

    def session(self, session_sha256: bytes) -> SessionRecord | None:
        """The session with this hash (ended, expired or not), or ``None``."""
        rows = self._read(
            f"SELECT {_SESSION_COLUMNS} FROM web_sessions WHERE session_sha256 = ?",  # noqa: S608
            (session_sha256,),
        )
        return _session(rows[0]) if rows else None

    def end_session(self, session_sha256: bytes, now_ms: int) -> bool:
        """End a session (sign-out); whether a live one was ended."""
        with self._write() as tx:
            changed = tx.execute(
                "UPDATE web_sessions SET ended_ms = ?"
                " WHERE session_sha256 = ? AND ended_ms IS NULL",
                (now_ms, session_sha256),
            ).rowcount
        return changed == 1

    def end_sessions_of_key(self, key_id: str, now_ms: int) -> int:
        """End every live session of a key (its revocation); how many were ended."""
        with self._write() as tx:
            changed = tx.execute(
                "UPDATE web_sessions SET ended_ms = ? WHERE key_id = ? AND ended_ms IS NULL",
                (now_ms, key_id),
            ).rowcount
        return int(changed)


def _session(row: tuple[Any, ...]) -> SessionRecord:
    return SessionRecord(
        session_sha256=bytes(row[0]),
        key_id=str(row[1]),
        csrf=str(row[2]),
        created_ms=int(row[3]),
        expires_ms=int(row[4]),
        ended_ms=None if row[5] is None else int(row[5]),
    )
