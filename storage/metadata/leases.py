"""Leases: one named job (the flight summarizer) run by one process of many at a time.

Several ingest workers may each be started with ``--summarize-flights``; only the holder
of the ``flight-summarizer`` lease runs summarizer rounds. The holder renews the lease every
round; when it dies the lease expires and another worker takes it over. Taking, renewing
and taking over are one atomic upsert, so two processes never both hold an unexpired lease
(given clocks that agree to well within the lease's time to live: NTP). Portable SQL:
SQLite >= 3.24 and PostgreSQL >= 9.5 both have ``INSERT ... ON CONFLICT DO UPDATE``.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.metadata._db import Database


@dataclass(frozen=True, slots=True)
class Lease:
    """The lease ``name`` as stored after an attempt: ``holder`` has it until ``expires_ms``.
    ``previous`` is who held it before the attempt (``None`` when nobody did), and
    ``previous_expires_ms`` when that hold ran out."""

    name: str
    holder: str
    expires_ms: int
    previous: str | None = None
    previous_expires_ms: int | None = None

    def held_by(self, holder: str) -> bool:
        """Whether ``holder`` holds the lease."""
        return self.holder == holder

    def taken_over(self) -> bool:
        """Whether this attempt took the lease from another (expired) holder."""
        return self.previous is not None and self.previous != self.holder


class LeaseTable(Database):
    """Named leases: who holds each, until when."""

    schema = """
CREATE TABLE IF NOT EXISTS leases (
    name       TEXT    PRIMARY KEY,
    holder     TEXT    NOT NULL,
    expires_ms INTEGER NOT NULL
);
"""

    def acquire_lease(self, name: str, holder: str, ttl_ms: int, now_ms: int) -> Lease:
        """Take the lease ``name`` for ``holder`` until ``now_ms + ttl_ms`` when it is free,
        expired or already ``holder``'s (a renewal); else leave it. Returns the lease as it
        stands afterwards: ``held_by(holder)`` says whether the attempt won."""
        if ttl_ms <= 0:
            raise ValueError(f"lease {name}: time to live must be > 0 ms, got {ttl_ms}")
        with self._write() as conn:
            before = conn.execute(
                "SELECT holder, expires_ms FROM leases WHERE name = ?", (name,)
            ).fetchone()
            conn.execute(
                "INSERT INTO leases (name, holder, expires_ms) VALUES (?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE"
                " SET holder = excluded.holder, expires_ms = excluded.expires_ms"
                " WHERE leases.holder = excluded.holder OR leases.expires_ms <= ?",
                (name, holder, now_ms + ttl_ms, now_ms),
            )
            after = conn.execute(
                "SELECT holder, expires_ms FROM leases WHERE name = ?", (name,)
            ).fetchone()
        return Lease(
            name,
            str(after[0]),
            int(after[1]),
            previous=None if before is None else str(before[0]),
            previous_expires_ms=None if before is None else int(before[1]),
        )

    def release_lease(self, name: str, holder: str) -> bool:
        """Give up the lease ``name`` if ``holder`` holds it (a clean shutdown: another
        process takes over at once instead of after expiry); returns whether it did."""
        with self._write() as conn:
            cur = conn.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))
            return bool(cur.rowcount)

    def lease(self, name: str) -> Lease | None:
        """The lease ``name`` as stored (expired or not), or ``None`` when nobody holds it."""
        rows = self._read("SELECT holder, expires_ms FROM leases WHERE name = ?", (name,))
        return None if not rows else Lease(name, str(rows[0][0]), int(rows[0][1]))
