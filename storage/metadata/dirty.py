"""Late-data ranges: which drone's samples or events reached the store well after their time.

The flight watcher schedules by sample time, so data written now with an old ``ts`` would
never be looked at again. The ingest worker records here, per batch and drone, the span of
such late data before it acknowledges the batch; the watcher re-summarizes the flights
those spans touch and deletes the rows it consumed (docs/flights.md, "Late data"). A span
within ``JOIN_MS`` of a waiting row of the same drone extends that row, so a backlog
uploaded in many batches is one row, and the table stays small even with no watcher.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from storage.metadata._db import Database

#: A late span this close to a waiting row of its drone extends the row.
JOIN_MS: Final = 3_600_000


@dataclass(frozen=True, slots=True)
class LateRange:
    """Data of one drone with ``start_ms <= ts <= end_ms`` written at ``written_ms``;
    ``id`` is the row's, 0 before it is stored."""

    coop: str
    drone: str
    start_ms: int
    end_ms: int
    written_ms: int
    id: int = 0


class LateRangeLog(Database):
    """Late-data ranges waiting for the flight watcher."""

    schema = """
CREATE TABLE IF NOT EXISTS late_ranges (
    id         INTEGER PRIMARY KEY,
    coop       TEXT    NOT NULL,
    drone      TEXT    NOT NULL,
    start_ms   INTEGER NOT NULL,
    end_ms     INTEGER NOT NULL,
    written_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS late_ranges_by_drone ON late_ranges (drone, coop, start_ms);
"""

    def record_late_ranges(self, ranges: Sequence[LateRange]) -> None:
        """Record late ranges durably in one transaction (nothing to do for none): each
        extends its drone's waiting row within ``JOIN_MS`` of it, or is a new row."""
        if not ranges:
            return
        with self._write() as conn:
            for r in ranges:
                row = conn.execute(
                    "SELECT id, start_ms, end_ms, written_ms FROM late_ranges"
                    " WHERE drone = ? AND coop = ?"
                    " AND start_ms <= ? AND end_ms >= ? ORDER BY id LIMIT 1",
                    (r.drone, r.coop, r.end_ms + JOIN_MS, r.start_ms - JOIN_MS),
                ).fetchone()
                if row is None:
                    conn.execute(
                        "INSERT INTO late_ranges (coop, drone, start_ms, end_ms, written_ms)"
                        " VALUES (?, ?, ?, ?, ?)",
                        (r.coop, r.drone, r.start_ms, r.end_ms, r.written_ms),
                    )
                else:
                    conn.execute(
                        "UPDATE late_ranges SET start_ms = ?, end_ms = ?, written_ms = ?"
                        " WHERE id = ?",
                        (
                            min(int(row[1]), r.start_ms),
                            max(int(row[2]), r.end_ms),
                            max(int(row[3]) + 1, r.written_ms),
                            row[0],
                        ),
                    )

    def late_ranges(self, limit: int = 10_000) -> list[LateRange]:
        """The oldest recorded late ranges, at most ``limit``, in the order recorded."""
        rows = self._read(
            "SELECT id, coop, drone, start_ms, end_ms, written_ms FROM late_ranges"
            " ORDER BY id LIMIT ?",
            (limit,),
        )
        return [LateRange(r[1], r[2], int(r[3]), int(r[4]), int(r[5]), int(r[0])) for r in rows]

    def delete_late_ranges(self, consumed: Sequence[LateRange]) -> int:
        """Forget consumed late ranges, each only if unchanged since it was read (a row a
        worker extended meanwhile stays for the next round); returns how many went."""
        if not consumed:
            return 0
        with self._write() as conn:
            return conn.executemany(
                "DELETE FROM late_ranges"
                " WHERE id = ? AND start_ms = ? AND end_ms = ? AND written_ms = ?",
                [(r.id, r.start_ms, r.end_ms, r.written_ms) for r in consumed],
            ).rowcount
