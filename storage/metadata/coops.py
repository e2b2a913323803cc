"""Cooperatives: display names, tariff histories, member names and the bank account members
pay invoices into, for usage reports.

Every tariff ever set is kept with the local date it takes effect (``coop_tariffs``); a
report prices each flight at the tariff in force on its day (reports/usage.py). Databases
made before tariffs had dates hold one ``coops.tariff_vnd_per_ha``: opening one moves that
price into the history as in force from the beginning and drops the column.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, ClassVar, Literal

from storage.contract import StoreUnavailableError
from storage.metadata._db import ConstraintError, Database, Step, Tx

TariffUnit = Literal["ha", "sao"]


@dataclass(frozen=True, slots=True)
class TariffRecord:
    """A price (whole đồng per sprayed hectare or sào) in force from 00:00 local time of
    ``effective_from`` (``None``: from the beginning), and when an operator set it."""

    vnd: int
    unit: TariffUnit
    effective_from: date | None
    set_ms: int


@dataclass(frozen=True, slots=True)
class BankAccount:
    """Where members pay: the bank's 6-digit NAPAS BIN, the account number and the holder's
    name as the bank shows it (upper case, no diacritics). Checked by the caller
    (``reports.vietqr``)."""

    bank_bin: str
    account: str
    account_name: str


@dataclass(frozen=True, slots=True)
class CoopRecord:
    """A cooperative: its display name, every tariff set for it, in the order they were
    set (of two from the same day, the later one is in force; empty until an operator
    sets one), and its bank account (``None`` until set)."""

    id: str
    name: str
    updated_ms: int
    tariffs: tuple[TariffRecord, ...] = ()
    bank: BankAccount | None = None


def _migrate_single_tariff(tx: Tx) -> None:
    """Move a pre-history ``coops.tariff_vnd_per_ha`` into ``coop_tariffs`` (in force from
    the beginning, set when the coop was last updated), then drop the column."""
    if "tariff_vnd_per_ha" not in tx.columns("coops"):
        return
    try:
        tx.execute(
            "INSERT INTO coop_tariffs (coop, effective_from, unit, vnd, set_ms)"
            " SELECT id, NULL, 'ha', tariff_vnd_per_ha, updated_ms FROM coops"
            " WHERE tariff_vnd_per_ha IS NOT NULL ORDER BY id"
        )
    except ConstraintError as exc:
        raise StoreUnavailableError(
            f"{exc}: cannot move the old tariffs into the tariff history; fix the coops"
            " table by hand"
        ) from exc
    tx.execute("ALTER TABLE coops DROP COLUMN tariff_vnd_per_ha")


_BANK_COLUMNS = """
ALTER TABLE coops ADD COLUMN bank_bin TEXT;
ALTER TABLE coops ADD COLUMN bank_account TEXT;
ALTER TABLE coops ADD COLUMN bank_account_name TEXT
"""
_COOP_COLUMNS = "id, name, updated_ms, bank_bin, bank_account, bank_account_name"


class CoopTable(Database):
    """Cooperatives, their tariff histories and their members."""

    schema = """
CREATE TABLE IF NOT EXISTS coops (
    id                TEXT    PRIMARY KEY,
    name              TEXT    NOT NULL,
    updated_ms        INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS coop_tariffs (
    id             INTEGER PRIMARY KEY,
    coop           TEXT    NOT NULL,
    effective_from TEXT    CHECK (effective_from IS NULL OR date(effective_from) = effective_from),
    unit           TEXT    NOT NULL CHECK (unit IN ('ha', 'sao')),
    vnd            INTEGER NOT NULL CHECK (vnd >= 0),
    set_ms         INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS coop_tariffs_by_coop ON coop_tariffs (coop, id);
CREATE TABLE IF NOT EXISTS members (
    coop       TEXT NOT NULL,
    member     TEXT NOT NULL,
    name       TEXT NOT NULL,
    PRIMARY KEY (coop, member)
);
"""

    migrations: ClassVar[tuple[Step, ...]] = (
        Step(
            1,
            "coops, coop_tariffs, members",
            schema,
            # A date check PostgreSQL can say (SQLite's date() is its own).
            postgresql=schema.replace(
                "date(effective_from) = effective_from",
                "to_char(to_date(effective_from, 'YYYY-MM-DD'), 'YYYY-MM-DD') = effective_from",
            ),
        ),
        Step(2, "single tariff becomes a tariff history", run=_migrate_single_tariff),
        Step(3, "bank account for invoices (VietQR)", _BANK_COLUMNS),
    )

    def set_coop(
        self, coop: str, *, name: str | None = None, tariff_vnd_per_ha: int | None = None
    ) -> CoopRecord:
        """Create or rename a cooperative (``name`` ``None`` keeps it). A
        ``tariff_vnd_per_ha`` is added as a per-hectare tariff in force from the beginning;
        use ``add_tariff`` for one from a given day."""
        now = int(time.time() * 1000)
        with self._write() as conn:
            row = conn.execute("SELECT name FROM coops WHERE id = ?", (coop,)).fetchone()
            new_name = name if name is not None else (row[0] if row is not None else coop)
            conn.execute(
                "INSERT INTO coops (id, name, updated_ms) VALUES (?, ?, ?) ON CONFLICT (id)"
                " DO UPDATE SET name = excluded.name, updated_ms = excluded.updated_ms",
                (coop, new_name, now),
            )
            if tariff_vnd_per_ha is not None:
                _insert_tariff(conn, coop, TariffRecord(tariff_vnd_per_ha, "ha", None, now))
        return self._written(coop)

    def add_tariff(
        self, coop: str, vnd: int, *, unit: TariffUnit = "ha", effective_from: date | None = None
    ) -> CoopRecord:
        """Add a tariff to the cooperative's history (creating the cooperative if needed).
        Nothing is overwritten: a tariff from the same day as an earlier one supersedes it
        in reports, and both stay listed."""
        now = int(time.time() * 1000)
        with self._write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO coops (id, name, updated_ms) VALUES (?, ?, ?)",
                (coop, coop, now),
            )
            conn.execute("UPDATE coops SET updated_ms = ? WHERE id = ?", (now, coop))
            _insert_tariff(conn, coop, TariffRecord(vnd, unit, effective_from, now))
        return self._written(coop)

    def set_bank(self, coop: str, bank: BankAccount) -> CoopRecord:
        """Set the account members pay into (creating the cooperative if needed), replacing
        any before: invoices made from now on show it."""
        now = int(time.time() * 1000)
        with self._write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO coops (id, name, updated_ms) VALUES (?, ?, ?)",
                (coop, coop, now),
            )
            conn.execute(
                "UPDATE coops SET bank_bin = ?, bank_account = ?, bank_account_name = ?,"
                " updated_ms = ? WHERE id = ?",
                (bank.bank_bin, bank.account, bank.account_name, now, coop),
            )
        return self._written(coop)

    def _written(self, coop: str) -> CoopRecord:
        record = self.coop(coop)
        if record is None:  # only if someone deletes rows behind our back
            raise StoreUnavailableError(f"metadata database {self.where}: coop {coop} vanished")
        return record

    def coop(self, coop: str) -> CoopRecord | None:
        """One cooperative with its tariffs, or ``None`` when none was set up under that id."""
        rows = self._read(f"SELECT {_COOP_COLUMNS} FROM coops WHERE id = ?", (coop,))  # noqa: S608
        if not rows:
            return None
        return _coop_record(rows[0], self._tariffs(coop).get(coop, ()))

    def coops(self) -> list[CoopRecord]:
        """Every cooperative set up, by id, with its tariffs."""
        rows = self._read(f"SELECT {_COOP_COLUMNS} FROM coops ORDER BY id", ())  # noqa: S608
        tariffs = self._tariffs(None)
        return [_coop_record(r, tariffs.get(r[0], ())) for r in rows]

    def _tariffs(self, coop: str | None) -> dict[str, tuple[TariffRecord, ...]]:
        where, params = ("WHERE coop = ?", (coop,)) if coop is not None else ("", ())
        rows = self._read(
            "SELECT coop, vnd, unit, effective_from, set_ms FROM coop_tariffs"  # noqa: S608
            f" {where} ORDER BY coop, id",
            params,
        )
        out: dict[str, list[TariffRecord]] = {}
        for c, vnd, unit, day, set_ms in rows:
            out.setdefault(c, []).append(
                TariffRecord(
                    int(vnd), unit, None if day is None else date.fromisoformat(day), int(set_ms)
                )
            )
        return {c: tuple(ts) for c, ts in out.items()}

    def set_members(self, coop: str, names: Mapping[str, str]) -> None:
        """Name a cooperative's members (member id → display name), replacing those ids."""
        with self._write() as conn:
            conn.executemany(
                "INSERT INTO members (coop, member, name) VALUES (?, ?, ?)"
                " ON CONFLICT (coop, member) DO UPDATE SET name = excluded.name",
                [(coop, member, name) for member, name in names.items()],
            )

    def member_names(self, coop: str) -> dict[str, str]:
        """The cooperative's member names by member id (members never named are absent)."""
        rows = self._read("SELECT member, name FROM members WHERE coop = ?", (coop,))
        return {r[0]: r[1] for r in rows}


def _insert_tariff(conn: Tx, coop: str, t: TariffRecord) -> None:
    conn.execute(
        "INSERT INTO coop_tariffs (coop, effective_from, unit, vnd, set_ms) VALUES (?, ?, ?, ?, ?)",
        (
            coop,
            None if t.effective_from is None else t.effective_from.isoformat(),
            t.unit,
            t.vnd,
            t.set_ms,
        ),
    )


def _coop_record(row: tuple[Any, ...], tariffs: tuple[TariffRecord, ...]) -> CoopRecord:
    bank = None if row[3] is None else BankAccount(row[3], row[4], row[5])
    return CoopRecord(id=row[0], name=row[1], updated_ms=int(row[2]), tariffs=tariffs, bank=bank)
