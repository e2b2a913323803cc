"""The rejected-message log: one row per message the ingest worker refused, with how many
samples it lost and why.

Rejected messages are kept, never silently dropped: the worker records them here durably
before it acknowledges the MQTT message that carried them. A batch of 500 bad samples is
one row with a count of 500, and the log is bounded: by row count in the very transaction
that adds rows, and by age whenever the worker prunes (``prune_rejected``). Databases made
when each bad sample was a row of its own are migrated in place; those rows read as
messages with a count of 1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Final

import orjson

from storage.metadata._db import Database, Step, Tx

#: Stored bounds of a row's text and bytes: a flood of odd messages costs at most this much
#: per row (about 2.4 KB), times the row cap.
MAX_TOPIC_CHARS: Final = 256
MAX_DETAIL_CHARS: Final = 1000
MAX_EXCERPT_BYTES: Final = 1024


@dataclass(frozen=True, slots=True)
class RejectedMessage:
    """One rejected message: its first reason and detail, the start of its payload, and how
    many samples or events it lost (``count``; 1 for a message refused whole). With more
    than one reason, ``by_reason`` counts each (its values add up to ``count``)."""

    received_ms: int
    topic: str
    reason: str
    detail: str
    payload_excerpt: bytes
    count: int = 1
    by_reason: Mapping[str, int] | None = None

    def __post_init__(self) -> None:
        if not self.by_reason:
            return
        if sum(self.by_reason.values()) != self.count:
            raise ValueError(f"by_reason {dict(self.by_reason)} does not add up to {self.count}")
        if self.reason not in self.by_reason:
            raise ValueError(f"by_reason {dict(self.by_reason)} lacks the reason {self.reason}")

    @property
    def reasons(self) -> dict[str, int]:
        """How many samples or events were refused for each reason."""
        return dict(self.by_reason) if self.by_reason else {self.reason: self.count}


#: ``json_each`` for PostgreSQL: the by-reason counts as (key, bigint value) rows.
_PG_EACH: Final = (
    "LATERAL (SELECT key, value::bigint AS value FROM jsonb_each_text(r.by_reason::jsonb))"
)


def _add_counts(tx: Tx) -> None:
    """A log of one row per rejected sample gains a count (1) and the by-reason column."""
    if "count" in tx.columns("rejected_messages"):
        return
    tx.execute("ALTER TABLE rejected_messages ADD COLUMN count INTEGER NOT NULL DEFAULT 1")
    tx.execute("ALTER TABLE rejected_messages ADD COLUMN by_reason TEXT")


class RejectedLog(Database):
    """The rejected-message log."""

    schema = """
CREATE TABLE IF NOT EXISTS rejected_messages (
    id          INTEGER PRIMARY KEY,
    received_ms INTEGER NOT NULL,
    topic       TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    detail      TEXT    NOT NULL,
    payload     BLOB    NOT NULL,
    count       INTEGER NOT NULL DEFAULT 1,
    by_reason   TEXT
);
CREATE INDEX IF NOT EXISTS rejected_messages_by_time ON rejected_messages (received_ms);
"""
    migrations: ClassVar[tuple[Step, ...]] = (
        Step(1, "rejected_messages", schema),
        Step(2, "one row per message: count and by_reason", run=_add_counts),
        # Counts by reason read these indexes alone (0.2 s for a million rows), not the
        # table (1 s).
        Step(
            3,
            "indexes for counts by reason",
            "CREATE INDEX IF NOT EXISTS rejected_messages_by_reason"
            " ON rejected_messages (reason, count) WHERE by_reason IS NULL;"
            "CREATE INDEX IF NOT EXISTS rejected_messages_mixed ON rejected_messages (id)"
            " WHERE by_reason IS NOT NULL",
        ),
    )

    def record_rejections(
        self, rejected: Sequence[RejectedMessage], *, max_rows: int | None = None
    ) -> int:
        """Append rejected messages durably (one transaction). With ``max_rows``, the same
        transaction then deletes the oldest rows beyond it; returns how many it deleted."""
        if not rejected:
            return 0
        with self._write() as conn:
            conn.executemany(
                "INSERT INTO rejected_messages (received_ms, topic, reason, detail, payload,"
                " count, by_reason) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [_row(r) for r in rejected],
            )
            return 0 if max_rows is None else _trim(conn, max_rows)

    def prune_rejected(self, *, older_than_ms: int, max_rows: int) -> int:
        """Delete rows received before ``older_than_ms`` and the oldest beyond ``max_rows``;
        how many were deleted. Both are range deletes on an index: cheap at any size."""
        with self._write() as conn:
            aged = conn.execute(
                "DELETE FROM rejected_messages WHERE received_ms < ?", (older_than_ms,)
            ).rowcount
            return aged + _trim(conn, max_rows)

    def rejected_messages(
        self, start_ms: int, end_ms: int, limit: int = 1000
    ) -> list[RejectedMessage]:
        """Rejected messages received in [start, end), oldest first, at most ``limit``."""
        rows = self._read(
            "SELECT received_ms, topic, reason, detail, payload, count, by_reason"
            " FROM rejected_messages WHERE received_ms >= ? AND received_ms < ?"
            " ORDER BY received_ms, id LIMIT ?",
            (start_ms, end_ms, limit),
        )
        return [
            RejectedMessage(
                r[0],
                r[1],
                r[2],
                r[3],
                bytes(r[4]),
                int(r[5]),
                None if r[6] is None else dict(orjson.loads(r[6])),
            )
            for r in rows
        ]

    def rejected_counts(self) -> dict[str, int]:
        """Samples and events refused, by reason, over the whole log (as retention keeps it)."""
        single = self._read(
            "SELECT reason, sum(count) FROM rejected_messages WHERE by_reason IS NULL"
            " GROUP BY reason",
            (),
        )
        each = "json_each(r.by_reason)" if self.dialect == "sqlite" else _PG_EACH
        mixed = self._read(
            f"SELECT j.key, sum(j.value) FROM rejected_messages AS r, {each} AS j"  # noqa: S608
            " WHERE r.by_reason IS NOT NULL GROUP BY j.key",
            (),
        )
        out: dict[str, int] = {}
        for reason, n in (*single, *mixed):
            out[reason] = out.get(reason, 0) + int(n)
        return dict(sorted(out.items()))

    def rejected_rows(self) -> int:
        """How many rows (messages) the log holds."""
        return int(self._read("SELECT count(*) FROM rejected_messages", ())[0][0])


def _row(r: RejectedMessage) -> tuple[object, ...]:
    reasons = r.reasons
    return (
        r.received_ms,
        _cut(r.topic, MAX_TOPIC_CHARS).replace("\x00", "\ufffd"),
        r.reason,
        _cut(r.detail, MAX_DETAIL_CHARS).replace("\x00", "\ufffd"),
        r.payload_excerpt[:MAX_EXCERPT_BYTES],
        r.count,
        orjson.dumps(reasons).decode() if len(reasons) > 1 else None,
    )


def _cut(text: str, most: int) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"


def _trim(conn: Tx, max_rows: int) -> int:
    """Delete the oldest rows beyond ``max_rows``: those with an id up to ``max(id) -
    max_rows``. Ids are unique and grow with each insert, so at most ``max_rows`` rows
    remain (as many, as deletions only take the oldest): one index lookup and a range
    delete, never a count of the table."""
    return conn.execute(
        "DELETE FROM rejected_messages"
        " WHERE id <= (SELECT coalesce(max(id), 0) FROM rejected_messages) - ?",
        (max_rows,),
    ).rowcount
