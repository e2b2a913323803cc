"""The rejected-message log: every message the ingest worker refused, with its reason.

Rejected messages are kept, never silently dropped: the worker records them here durably
before it acknowledges the MQTT message that carried them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from storage.contract import StoreUnavailableError
from storage.metadata._db import Database


@dataclass(frozen=True, slots=True)
class RejectedMessage:
    """One rejected message (or one rejected sample of a batch) with its reason."""

    received_ms: int
    topic: str
    reason: str
    detail: str
    payload_excerpt: bytes


class RejectedLog(Database):
    """The rejected-message log."""

    schema = """
CREATE TABLE IF NOT EXISTS rejected_messages (
    id          INTEGER PRIMARY KEY,
    received_ms INTEGER NOT NULL,
    topic       TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    detail      TEXT    NOT NULL,
    payload     BLOB    NOT NULL
);
CREATE INDEX IF NOT EXISTS rejected_messages_by_time ON rejected_messages (received_ms);
"""

    def record_rejections(self, rejected: Sequence[RejectedMessage]) -> None:
        """Append rejected messages durably (one transaction)."""
        if not rejected:
            return
        conn = self._conn()
        try:
            with conn:
                conn.execute("BEGIN")
                conn.executemany(
                    "INSERT INTO rejected_messages"
                    " (received_ms, topic, reason, detail, payload) VALUES (?, ?, ?, ?, ?)",
                    [
                        (r.received_ms, r.topic, r.reason, r.detail, r.payload_excerpt)
                        for r in rejected
                    ],
                )
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"metadata database {self.path}: {exc}") from exc

    def rejected_messages(
        self, start_ms: int, end_ms: int, limit: int = 1000
    ) -> list[RejectedMessage]:
        """Rejected messages received in [start, end), oldest first, at most ``limit``."""
        rows = self._conn().execute(
            "SELECT received_ms, topic, reason, detail, payload FROM rejected_messages"
            " WHERE received_ms >= ? AND received_ms < ? ORDER BY received_ms, id LIMIT ?",
            (start_ms, end_ms, limit),
        )
        return [RejectedMessage(r[0], r[1], r[2], r[3], bytes(r[4])) for r in rows]

    def rejected_counts(self) -> dict[str, int]:
        """How many rejections are logged, by reason."""
        rows = self._conn().execute(
            "SELECT reason, count(*) FROM rejected_messages GROUP BY reason ORDER BY reason"
        )
        return {reason: int(n) for reason, n in rows}
