"""Registered fields and no-spray zones, kept as the GeoJSON Feature that passed validation."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from storage.metadata._db import Database


@dataclass(frozen=True, slots=True)
class StoredField:
    """A registered field or no-spray zone as kept: its GeoJSON Feature (WGS84) as JSON text.

    The geometry logic lives in ``fields``; this layer only keeps what passed validation.
    """

    id: str
    kind: str
    coop: str
    owner: str
    feature: str


class FieldTable(Database):
    """Registered fields."""

    schema = """
CREATE TABLE IF NOT EXISTS fields (
    id         TEXT    PRIMARY KEY,
    kind       TEXT    NOT NULL CHECK (kind IN ('field', 'no_spray')),
    coop       TEXT    NOT NULL,
    owner      TEXT    NOT NULL,
    feature    TEXT    NOT NULL,
    updated_ms INTEGER NOT NULL
);
"""

    def save_fields(self, fields: Sequence[StoredField]) -> None:
        """Register fields, replacing any with the same id (one transaction).

        Each save stamps a time later than every earlier one, so ``fields_version`` changes
        with every save even within one millisecond.
        """
        with self._write() as conn:
            (latest,) = conn.execute("SELECT coalesce(max(updated_ms), 0) FROM fields").fetchone()
            now = max(int(time.time() * 1000), int(latest) + 1)
            conn.executemany(
                "INSERT OR REPLACE INTO fields (id, kind, coop, owner, feature, updated_ms)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(f.id, f.kind, f.coop, f.owner, f.feature, now) for f in fields],
            )

    def fields_version(self) -> tuple[int, int]:
        """(how many fields, latest save time): changes whenever the registry does, so
        caches of parsed fields know when to reload."""
        ((count, latest),) = self._read(
            "SELECT count(*), coalesce(max(updated_ms), 0) FROM fields", ()
        )
        return int(count), int(latest)

    def field_owners(self) -> dict[str, tuple[str, str]]:
        """(owner, coop) of every registered field by id, without reading geometry."""
        rows = self._read("SELECT id, owner, coop FROM fields", ())
        return {r[0]: (r[1], r[2]) for r in rows}

    def stored_fields(self) -> list[StoredField]:
        """Every registered field and no-spray zone, by id."""
        rows = self._conn().execute("SELECT id, kind, coop, owner, feature FROM fields ORDER BY id")
        return [StoredField(*r) for r in rows]

    def stored_field(self, field_id: str) -> StoredField | None:
        """One field by id, or None."""
        row = (
            self._conn()
            .execute("SELECT id, kind, coop, owner, feature FROM fields WHERE id = ?", (field_id,))
            .fetchone()
        )
        return None if row is None else StoredField(*row)
