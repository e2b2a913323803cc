"""Cooperatives: display names, tariffs and member names, for usage reports."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from storage.metadata._db import Database


@dataclass(frozen=True, slots=True)
class CoopRecord:
    """A cooperative: its display name and what it bills per sprayed hectare (VND, whole
    đồng); ``None`` until an operator sets it."""

    id: str
    name: str
    tariff_vnd_per_ha: int | None
    updated_ms: int


class CoopTable(Database):
    """Cooperatives and their members."""

    schema = """
CREATE TABLE IF NOT EXISTS coops (
    id                TEXT    PRIMARY KEY,
    name              TEXT    NOT NULL,
    tariff_vnd_per_ha INTEGER CHECK (tariff_vnd_per_ha >= 0),
    updated_ms        INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS members (
    coop       TEXT NOT NULL,
    member     TEXT NOT NULL,
    name       TEXT NOT NULL,
    PRIMARY KEY (coop, member)
);
"""

    def set_coop(
        self, coop: str, *, name: str | None = None, tariff_vnd_per_ha: int | None = None
    ) -> CoopRecord:
        """Create or update a cooperative; arguments left ``None`` keep their stored value."""
        with self._write() as conn:
            row = conn.execute(
                "SELECT name, tariff_vnd_per_ha FROM coops WHERE id = ?", (coop,)
            ).fetchone()
            old_name, old_tariff = row if row is not None else (coop, None)
            record = CoopRecord(
                id=coop,
                name=old_name if name is None else name,
                tariff_vnd_per_ha=old_tariff if tariff_vnd_per_ha is None else tariff_vnd_per_ha,
                updated_ms=int(time.time() * 1000),
            )
            conn.execute(
                "INSERT OR REPLACE INTO coops (id, name, tariff_vnd_per_ha, updated_ms)"
                " VALUES (?, ?, ?, ?)",
                (record.id, record.name, record.tariff_vnd_per_ha, record.updated_ms),
            )
        return record

    def coop(self, coop: str) -> CoopRecord | None:
        """One cooperative, or ``None`` when none was set up under that id."""
        rows = self._read(
            "SELECT id, name, tariff_vnd_per_ha, updated_ms FROM coops WHERE id = ?", (coop,)
        )
        return _coop_record(rows[0]) if rows else None

    def coops(self) -> list[CoopRecord]:
        """Every cooperative set up, by id."""
        rows = self._read(
            "SELECT id, name, tariff_vnd_per_ha, updated_ms FROM coops ORDER BY id", ()
        )
        return [_coop_record(r) for r in rows]

    def set_members(self, coop: str, names: Mapping[str, str]) -> None:
        """Name a cooperative's members (member id → display name), replacing those ids."""
        with self._write() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO members (coop, member, name) VALUES (?, ?, ?)",
                [(coop, member, name) for member, name in names.items()],
            )

    def member_names(self, coop: str) -> dict[str, str]:
        """The cooperative's member names by member id (members never named are absent)."""
        rows = self._read("SELECT member, name FROM members WHERE coop = ?", (coop,))
        return {r[0]: r[1] for r in rows}


def _coop_record(row: tuple[Any, ...]) -> CoopRecord:
    return CoopRecord(
        id=row[0],
        name=row[1],
        tariff_vnd_per_ha=None if row[2] is None else int(row[2]),
        updated_ms=int(row[3]),
    )
