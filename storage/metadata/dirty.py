"""Late-data ranges: which drone's samples or events reached the store well after their time.

The flight watcher schedules by sample time, so data written now with an old ``ts`` would
never be looked at again. The ingest worker records here, per batch and drone, the span of
such late data before it acknowledges the batch; the watcher re-summarizes the flights
those spans touch and deletes the rows it consumed (docs/flights.md, "Late data").
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from storage.metadata._db import Database


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
"""

    def record_late_ranges(self, ranges: Sequence[LateRange]) -> None:
        """Append late ranges durably (one transaction; nothing to do for none)."""
        if not ranges:
            return
        with self._write() as conn:
            conn.executemany(
                "INSERT INTO late_ranges (coop, drone, start_ms, end_ms, written_ms)"
                " VALUES (?, ?, ?, ?, ?)",
                [(r.coop, r.drone, r.start_ms, r.end_ms, r.written_ms) for r in ranges],
            )

    def late_ranges(self, limit: int = 10_000) -> list[LateRange]:
        """The oldest recorded late ranges, at most ``limit``, in the order written."""
        rows = self._read(
            "SELECT id, coop, drone, start_ms, end_ms, written_ms FROM late_ranges"
            " ORDER BY id LIMIT ?",
            (limit,),
        )
        return [LateRange(r[1], r[2], int(r[3]), int(r[4]), int(r[5]), int(r[0])) for r in rows]

    def delete_late_ranges(self, ids: Collection[int]) -> None:
        """Forget consumed late ranges by id."""
        if not ids:
            return
        with self._write() as conn:
            conn.executemany("DELETE FROM late_ranges WHERE id = ?", [(i,) for i in ids])
