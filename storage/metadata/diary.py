"""The spray diary's stored entries: one append-only hash chain per field
(``storage.diary_chain`` has the rules).

Entries are never updated or deleted. What changes (a later flight of the same job, late
samples, a corrected job, a redrawn field) is written as a new version of the entry with
the same ``entry_key``, whose content names the version it supersedes; an entry whose job
no longer has flights on the field gets a version that says it is withdrawn. The diary shows
the latest version of each entry.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson

from storage.diary_chain import GENESIS, ChainRow, canonical, content_hash, entry_hash
from storage.metadata._db import Database, Step

_COLUMNS = (
    "field_id, n, entry_key, coop, drone, first_ms, last_ms, written_ms, content,"
    " content_hash, prev_hash, entry_hash"
)


@dataclass(frozen=True, slots=True)
class WantedEntry:
    """What an entry should say now (its content before version bookkeeping)."""

    entry_key: str
    coop: str
    drone: str
    first_ms: int
    last_ms: int
    body: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class DiaryRow:
    """One stored version of an entry."""

    field_id: str
    n: int
    entry_key: str
    coop: str
    drone: str
    first_ms: int
    last_ms: int
    written_ms: int
    content: str
    content_hash: str
    prev_hash: str
    entry_hash: str

    def doc(self) -> dict[str, Any]:
        """The content document."""
        value: dict[str, Any] = orjson.loads(self.content)
        return value

    def chain_row(self) -> ChainRow:
        """The row as ``storage.diary_chain.verify_chain`` takes it."""
        return ChainRow(
            self.field_id,
            self.n,
            self.entry_key,
            self.written_ms,
            self.content,
            self.content_hash,
            self.prev_hash,
            self.entry_hash,
        )


class DiaryTable(Database):
    """Diary entries, chained per field."""

    migrations: ClassVar[tuple[Step, ...]] = (
        Step(
            1,
            "diary entries",
            """
CREATE TABLE IF NOT EXISTS diary_entries (
    field_id     TEXT    NOT NULL,
    n            INTEGER NOT NULL,
    entry_key    TEXT    NOT NULL,
    coop         TEXT    NOT NULL,
    drone        TEXT    NOT NULL,
    first_ms     INTEGER NOT NULL,
    last_ms      INTEGER NOT NULL,
    written_ms   INTEGER NOT NULL,
    content      TEXT    NOT NULL,
    content_hash TEXT    NOT NULL,
    prev_hash    TEXT    NOT NULL,
    entry_hash   TEXT    NOT NULL,
    PRIMARY KEY (field_id, n)
);
CREATE INDEX IF NOT EXISTS diary_by_drone ON diary_entries (coop, drone, last_ms);
""",
        ),
        Step(
            2,
            "compliance rules per cooperative",
            """
CREATE TABLE IF NOT EXISTS diary_rules (
    coop       TEXT    PRIMARY KEY,
    rules      TEXT    NOT NULL,
    updated_ms INTEGER NOT NULL
)
""",
        ),
    )

    def set_diary_rules(self, coop: str, rules: Mapping[str, float]) -> dict[str, float]:
        """Merge ``rules`` (threshold name -> value) into the cooperative's; the result."""
        with self._write() as tx:
            row = tx.execute("SELECT rules FROM diary_rules WHERE coop = ?", (coop,)).fetchone()
            merged = {**(orjson.loads(row[0]) if row else {}), **rules}
            tx.execute(
                "INSERT INTO diary_rules (coop, rules, updated_ms) VALUES (?, ?, ?)"
                " ON CONFLICT (coop) DO UPDATE SET rules = excluded.rules,"
                " updated_ms = excluded.updated_ms",
                (coop, canonical(merged), int(time.time() * 1000)),
            )
        return {str(k): float(v) for k, v in merged.items()}

    def diary_rules(self, coop: str) -> dict[str, float]:
        """The thresholds a cooperative set for its fields' compliance flags (empty: the
        defaults)."""
        rows = self._read("SELECT rules FROM diary_rules WHERE coop = ?", (coop,))
        return {str(k): float(v) for k, v in orjson.loads(rows[0][0]).items()} if rows else {}

    def sync_diary(
        self,
        field_id: str,
        wanted: Sequence[WantedEntry],
        scope: set[str],
        *,
        now_ms: int | None = None,
    ) -> int:
        """Bring the field's entries of ``scope`` (entry keys) to ``wanted``: append a
        version for each entry whose body changed or is new, and a withdrawn version for
        each live entry of ``scope`` no longer wanted. One exclusive transaction, so two
        writers never append the same change twice. Returns how many versions were written.
        """
        written = int(time.time() * 1000) if now_ms is None else now_ms
        by_key = {w.entry_key: w for w in wanted}
        with self._write() as tx:
            rows = tx.execute(
                "SELECT n, entry_key, content, entry_hash FROM diary_entries"
                " WHERE field_id = ? ORDER BY n",
                (field_id,),
            ).fetchall()
            latest: dict[str, tuple[dict[str, Any], str]] = {}
            n, head = 0, GENESIS
            for row_n, key, content, e_hash in rows:
                latest[key] = (orjson.loads(content), e_hash)
                n, head = int(row_n), e_hash
            appended = 0
            for key in sorted(scope | by_key.keys()):
                before = latest.get(key)
                w = by_key.get(key)
                if w is None:
                    if before is None or before[0].get("withdrawn"):
                        continue
                    old = before[0]
                    body: dict[str, Any] = {"entry": key, "withdrawn": True}
                    coop, drone = str(old.get("coop", "")), str(old.get("drone", ""))
                    first, last = int(old.get("first_ms", 0)), int(old.get("last_ms", 0))
                else:
                    fresh = orjson.loads(canonical(w.body))  # as it will read back
                    if before is not None and _body(before[0]) == _body(fresh):
                        continue
                    body = {**fresh, "entry": key}
                    coop, drone, first, last = w.coop, w.drone, w.first_ms, w.last_ms
                version = 1 if before is None else int(before[0].get("version", 0)) + 1
                doc = {
                    **body,
                    "version": version,
                    "supersedes": None if before is None else before[1],
                    "first_ms": first,
                    "last_ms": last,
                    "coop": coop,
                    "drone": drone,
                }
                text = canonical(doc)
                c_hash = content_hash(text)
                n += 1
                e_hash = entry_hash(field_id, n, written, head, c_hash)
                tx.execute(
                    f"INSERT INTO diary_entries ({_COLUMNS})"  # noqa: S608
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        field_id,
                        n,
                        key,
                        coop,
                        drone,
                        first,
                        last,
                        written,
                        text,
                        c_hash,
                        head,
                        e_hash,
                    ),
                )
                latest[key] = (doc, e_hash)
                head = e_hash
                appended += 1
        return appended

    def diary_rows(
        self, field_id: str, start_ms: int | None = None, end_ms: int | None = None
    ) -> list[DiaryRow]:
        """Every stored version of the field's entries (of jobs whose spraying started in
        [start, end) when given), in chain order."""
        where = "field_id = ?"
        params: list[Any] = [field_id]
        if start_ms is not None and end_ms is not None:
            where += " AND first_ms >= ? AND first_ms < ?"
            params += [start_ms, end_ms]
        rows = self._read(
            f"SELECT {_COLUMNS} FROM diary_entries WHERE {where} ORDER BY n",  # noqa: S608
            tuple(params),
        )
        return [_row(r) for r in rows]

    def diary_keys_of_drone(
        self, coop: str, drone: str, start_ms: int, end_ms: int
    ) -> list[tuple[str, str]]:
        """(field, entry key) of entries by the drone whose flights reach into [start, end)."""
        rows = self._read(
            "SELECT DISTINCT field_id, entry_key FROM diary_entries"
            " WHERE coop = ? AND drone = ? AND last_ms >= ? AND first_ms < ?"
            " ORDER BY field_id, entry_key",
            (coop, drone, start_ms, end_ms),
        )
        return [(str(r[0]), str(r[1])) for r in rows]

    def diary_latest_of_drone(
        self, coop: str, drone: str, start_ms: int, end_ms: int
    ) -> list[DiaryRow]:
        """The latest version of each entry by the drone whose flights span some instant of
        [start, end] (withdrawn ones included: the caller skips them), by field then number;
        what a flight's compliance flags are read from."""
        rows = self._read(
            f"SELECT {_COLUMNS} FROM diary_entries d"  # noqa: S608
            " WHERE coop = ? AND drone = ? AND last_ms >= ? AND first_ms <= ?"
            " AND NOT EXISTS (SELECT 1 FROM diary_entries l WHERE l.field_id = d.field_id"
            " AND l.entry_key = d.entry_key AND l.n > d.n)"
            " ORDER BY field_id, n",
            (coop, drone, start_ms, end_ms),
        )
        return [_row(r) for r in rows]

    def diary_fields(self) -> list[str]:
        """Every field with diary entries."""
        rows = self._read("SELECT DISTINCT field_id FROM diary_entries ORDER BY field_id", ())
        return [str(r[0]) for r in rows]

    def diary_chain(self, field_id: str | None = None) -> list[ChainRow]:
        """Every stored entry (of one field, or all) by field then number, for verifying."""
        where, params = ("WHERE field_id = ?", (field_id,)) if field_id else ("", ())
        rows = self._read(
            f"SELECT {_COLUMNS} FROM diary_entries {where} ORDER BY field_id, n",  # noqa: S608
            params,
        )
        return [_row(r).chain_row() for r in rows]


def _body(doc: Mapping[str, Any]) -> dict[str, Any]:
    """What an entry says, without its version bookkeeping."""
    skip = {"version", "supersedes", "entry", "first_ms", "last_ms", "coop", "drone"}
    return {k: v for k, v in doc.items() if k not in skip}


def _row(r: tuple[Any, ...]) -> DiaryRow:
    return DiaryRow(
        field_id=r[0],
        n=int(r[1]),
        entry_key=r[2],
        coop=r[3],
        drone=r[4],
        first_ms=int(r[5]),
        last_ms=int(r[6]),
        written_ms=int(r[7]),
        content=r[8],
        content_hash=r[9],
        prev_hash=r[10],
        entry_hash=r[11],
    )
