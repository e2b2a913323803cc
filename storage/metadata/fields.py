"""Registered fields and no-spray zones, versioned: every outline, name and owner a field ever
had, with the time each became valid, kept as the GeoJSON Feature that passed validation.

A field's first version is valid from the beginning of time; a change starts a new version
and ends the one before at that instant; a deletion ends the current version. Past flights
are judged against the version valid when they flew (docs/api.md, "Field versions").
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import ClassVar, Literal, TypeGuard

from storage.metadata._db import Database, MetadataConflictError, Step, Tx

_VERSION_COLUMNS = (
    "id, kind, coop, owner, feature, seq, valid_from_ms, valid_to_ms, recorded_ms,"
    " recorded_by, ended_by"
)
_CURRENT = "valid_to_ms IS NULL"
_END_VERSION = (
    "UPDATE field_versions SET valid_to_ms = ?, ended_by = ?, changed_ms = ?"
    " WHERE id = ? AND seq = ?"
)
_INSERT_VERSION = (
    "INSERT INTO field_versions (id, seq, kind, coop, owner, feature, valid_from_ms,"
    " valid_to_ms, recorded_ms, recorded_by, changed_ms)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)"
)


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


@dataclass(frozen=True, slots=True)
class FieldVersion:
    """One version of a field: valid in [valid_from_ms, valid_to_ms); ``None`` bounds mean
    the beginning of time and "still valid". ``recorded_*`` say when and by whom it was
    written, ``ended_by`` who ended it (a later version or a deletion)."""

    field: StoredField
    seq: int
    valid_from_ms: int | None
    valid_to_ms: int | None
    recorded_ms: int
    recorded_by: str
    ended_by: str

    @property
    def id(self) -> str:
        """The field's id."""
        return self.field.id

    def valid_at(self, ms: int) -> bool:
        """Whether this version was the field at instant ``ms``."""
        return (self.valid_from_ms is None or self.valid_from_ms <= ms) and (
            self.valid_to_ms is None or ms < self.valid_to_ms
        )

    def overlaps(self, start_ms: int, end_ms: int) -> bool:
        """Whether this version was valid at some instant of [start, end)."""
        return (self.valid_from_ms is None or self.valid_from_ms < end_ms) and (
            self.valid_to_ms is None or start_ms < self.valid_to_ms
        )


class FieldOwnershipError(MetadataConflictError):
    """Ids held by another cooperative: nothing was stored. The message names only the ids."""

    def __init__(self, ids: Sequence[str]) -> None:
        self.ids = tuple(ids)
        names = ", ".join(repr(i) for i in self.ids)
        super().__init__(
            f"field id {names} is already registered by another cooperative; choose another id"
            " (nothing was stored)"
        )


class FieldsChangedError(MetadataConflictError):
    """Ids whose latest version changed after an import was checked: nothing was stored.
    The message names only the ids."""

    def __init__(self, ids: Sequence[str]) -> None:
        self.ids = tuple(ids)
        names = ", ".join(repr(i) for i in self.ids)
        super().__init__(
            f"field id {names} changed while this import was being checked; nothing was"
            " stored: send it again"
        )


class UnknownFieldError(LookupError):
    """No current version of the field (or none the acting cooperative owns)."""


class FieldVersionError(ValueError):
    """A version's start the history cannot take: ``problem`` says why, ``instant_ms`` is
    the bound it broke (callers format it for their users)."""

    def __init__(self, problem: str, instant_ms: int) -> None:
        self.problem = problem
        self.instant_ms = instant_ms
        super().__init__(f"valid_from {problem} ({instant_ms} ms)")


class FieldOwnership:
    """Who owned which field when: (owner, coop) of every version, looked up by instant, so
    a flight's audience is decided by the ownership valid when it flew."""

    def __init__(self, rows: Sequence[tuple[str, int | None, int | None, str, str]]) -> None:
        self._rows = rows

    def at(self, ms: int) -> dict[str, tuple[str, str]]:
        """(owner, coop) by field id of the versions valid at ``ms``."""
        return {
            fid: (owner, coop)
            for fid, start, end, owner, coop in self._rows
            if (start is None or start <= ms) and (end is None or ms < end)
        }


def _migrate_unversioned_fields(tx: Tx) -> None:
    """Databases made before versions kept one row per id in ``fields``: each becomes its
    field's first version (valid from the beginning of time)."""
    if not tx.has_table("fields"):
        return
    tx.execute(
        "INSERT OR IGNORE INTO field_versions (id, seq, kind, coop, owner, feature,"
        " valid_from_ms, valid_to_ms, recorded_ms, recorded_by, changed_ms)"
        " SELECT id, 1, kind, coop, owner, feature, NULL, NULL, updated_ms,"
        " 'migrated', updated_ms FROM fields"
    )
    tx.execute("DROP TABLE fields")


_CHANGED_INDEX = (
    "CREATE INDEX IF NOT EXISTS field_versions_changed ON field_versions (changed_ms);\n"
)


class FieldTable(Database):
    """Registered fields, every version kept."""

    schema = """
CREATE TABLE IF NOT EXISTS field_versions (
    id            TEXT    NOT NULL,
    seq           INTEGER NOT NULL,
    kind          TEXT    NOT NULL CHECK (kind IN ('field', 'no_spray')),
    coop          TEXT    NOT NULL,
    owner         TEXT    NOT NULL,
    feature       TEXT    NOT NULL,
    valid_from_ms INTEGER,
    valid_to_ms   INTEGER,
    recorded_ms   INTEGER NOT NULL,
    recorded_by   TEXT    NOT NULL,
    ended_by      TEXT    NOT NULL DEFAULT '',
    changed_ms    INTEGER NOT NULL,
    PRIMARY KEY (id, seq)
);
CREATE INDEX IF NOT EXISTS field_versions_current ON field_versions (valid_to_ms, id);
"""
    migrations: ClassVar[tuple[Step, ...]] = (
        Step(1, "field_versions", schema),
        Step(2, "unversioned fields become first versions", run=_migrate_unversioned_fields),
        Step(3, "index of change times (fields_version)", _CHANGED_INDEX),
    )

    # --- writing -------------------------------------------------------------------------

    def save_fields(
        self,
        fields: Sequence[StoredField],
        *,
        at_ms: int | None = None,
        by: str = "direct",
        coop: str | None = None,
    ) -> list[str]:
        """Register fields or start new versions of them (one transaction); returns the ids
        that changed (an identical current version is left as it is).

        A new id's first version is valid from the beginning of time; a changed one's new
        version from the save (``at_ms``, default now). With ``coop`` (a cooperative
        saving), an id whose latest version belongs to another cooperative refuses the
        whole save with ``FieldOwnershipError``.
        """
        with self._write() as conn:
            now = self._stamp(conn, at_ms)
            at = now if at_ms is None else at_ms
            latest = self._latest_of(conn, sorted({f.id for f in fields}))
            if coop is not None:
                taken = sorted(
                    fid for fid, v in latest.items() if v is not None and v.field.coop != coop
                )
                if taken:
                    raise FieldOwnershipError(taken)
            changed: list[str] = []
            ends: list[tuple[object, ...]] = []
            rows: list[tuple[object, ...]] = []
            for f in fields:
                last = latest[f.id]
                if last is not None and last.valid_to_ms is None and last.field == f:
                    continue
                start = None if last is None else _next_start(last, at)
                if last is not None and last.valid_to_ms is None:
                    ends.append((start, by, now, f.id, last.seq))
                seq = 1 if last is None else last.seq + 1
                rows.append((f.id, seq, f.kind, f.coop, f.owner, f.feature, start, now, by, now))
                changed.append(f.id)
            # Two statements for the whole save (psycopg pipelines executemany: a 1,000-field
            # save is not 2,000 round trips to PostgreSQL).
            conn.executemany(_END_VERSION, ends)
            conn.executemany(_INSERT_VERSION, rows)
            return changed

    def redraw_field(
        self,
        field: StoredField,
        *,
        at_ms: int | None = None,
        valid_from_ms: int | None = None,
        by: str = "direct",
        coop: str | None = None,
    ) -> FieldVersion:
        """Start a new version of a current field, valid from ``valid_from_ms`` (default:
        now), which must be after the current version's start and not in the future.

        ``UnknownFieldError`` when there is no current version, or (with ``coop``) it is
        another cooperative's. Returns the new version.
        """
        with self._write() as conn:
            now = self._stamp(conn, at_ms)
            at = now if at_ms is None else at_ms
            last = self._latest(conn, field.id)
            if not _current_of(last, coop):
                raise UnknownFieldError(field.id)
            if last.field == field:
                return last
            start = _next_start(last, at) if valid_from_ms is None else valid_from_ms
            if valid_from_ms is not None and start > at:
                raise FieldVersionError("is in the future; a version starts at most now", at)
            if last.valid_from_ms is not None and start <= last.valid_from_ms:
                raise FieldVersionError(
                    "must be after the current version's start", last.valid_from_ms
                )
            self._append(conn, field, last, start, now, by)
        version = self.field_version_at(field.id, start)
        if version is None:  # pragma: no cover - just written in the transaction above
            raise UnknownFieldError(field.id)
        return version

    def end_field(
        self,
        field_id: str,
        *,
        at_ms: int | None = None,
        by: str = "direct",
        coop: str | None = None,
    ) -> FieldVersion:
        """End the field's current version now (a deletion; the history stays).

        ``UnknownFieldError`` when there is no current version, or (with ``coop``) it is
        another cooperative's. Returns the ended version.
        """
        with self._write() as conn:
            now = self._stamp(conn, at_ms)
            at = now if at_ms is None else at_ms
            last = self._latest(conn, field_id)
            if not _current_of(last, coop):
                raise UnknownFieldError(field_id)
            end = _next_start(last, at)
            conn.execute(
                "UPDATE field_versions SET valid_to_ms = ?, ended_by = ?, changed_ms = ?"
                " WHERE id = ? AND seq = ?",
                (end, by, now, field_id, last.seq),
            )
        return replace(last, valid_to_ms=end, ended_by=by)

    @staticmethod
    def _stamp(conn: Tx, at_ms: int | None) -> int:
        """The change's record time: later than every earlier one, so ``fields_version``
        always moves (validity times are the request's own, ``at_ms``)."""
        (latest,) = conn.execute(
            "SELECT coalesce(max(changed_ms), 0) FROM field_versions"
        ).fetchone()
        now = int(time.time() * 1000) if at_ms is None else at_ms
        return max(now, int(latest) + 1)

    @staticmethod
    def _latest_of(conn: Tx, ids: Sequence[str]) -> dict[str, FieldVersion | None]:
        """The latest version of each id (``None``: never registered), a few queries for
        any number of ids."""
        latest: dict[str, FieldVersion | None] = dict.fromkeys(ids)
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            rows = conn.execute(
                f"SELECT {_VERSION_COLUMNS} FROM field_versions"  # noqa: S608
                f" WHERE id IN ({', '.join('?' * len(chunk))}) ORDER BY id, seq",
                chunk,
            ).fetchall()
            for row in rows:  # ordered by seq: the last one of an id stays
                version = _version(row)
                latest[version.id] = version
        return latest

    @staticmethod
    def _latest(conn: Tx, field_id: str) -> FieldVersion | None:
        row: tuple[object, ...] | None = conn.execute(
            f"SELECT {_VERSION_COLUMNS} FROM field_versions WHERE id = ?"  # noqa: S608
            " ORDER BY seq DESC LIMIT 1",
            (field_id,),
        ).fetchone()
        return None if row is None else _version(row)

    @staticmethod
    def _append(  # noqa: PLR0917 -- one transaction's pieces
        conn: Tx,
        f: StoredField,
        last: FieldVersion | None,
        start: int | None,
        now: int,
        by: str,
    ) -> None:
        seq = 1
        if last is not None:
            seq = last.seq + 1
            if last.valid_to_ms is None:
                conn.execute(_END_VERSION, (start, by, now, f.id, last.seq))
        conn.execute(
            _INSERT_VERSION, (f.id, seq, f.kind, f.coop, f.owner, f.feature, start, now, by, now)
        )

    # --- reading -------------------------------------------------------------------------

    def fields_version(self) -> tuple[int, int]:
        """(the rows the latest change stamped, the latest change time): moves whenever the
        registry or its history does (every change stamps a strictly later ``changed_ms``,
        see ``_stamp``), so caches of parsed fields know when to reload. Index look-ups
        only, whatever the registry's size, on both stores: every API request reads it."""
        count, latest = self._read(
            "SELECT count(*), coalesce(max(changed_ms), 0) FROM field_versions"
            " WHERE changed_ms = (SELECT max(changed_ms) FROM field_versions)",
            (),
        )[0]
        return int(count), int(latest)

    def field_owners(self) -> dict[str, tuple[str, str]]:
        """(owner, coop) of every current field by id, without reading geometry."""
        rows = self._read(f"SELECT id, owner, coop FROM field_versions WHERE {_CURRENT}", ())  # noqa: S608
        return {r[0]: (r[1], r[2]) for r in rows}

    def field_ownership(self) -> FieldOwnership:
        """(owner, coop) of every version with its validity, without reading geometry."""
        rows = self._read(
            "SELECT id, valid_from_ms, valid_to_ms, owner, coop FROM field_versions", ()
        )
        return FieldOwnership([(r[0], r[1], r[2], r[3], r[4]) for r in rows])

    def stored_fields(self) -> list[StoredField]:
        """Every current field and no-spray zone, by id."""
        rows = self._read(
            f"SELECT id, kind, coop, owner, feature FROM field_versions WHERE {_CURRENT}"  # noqa: S608
            " ORDER BY id",
            (),
        )
        return [StoredField(*r) for r in rows]

    def stored_field(self, field_id: str) -> StoredField | None:
        """One current field by id, or None."""
        rows = self._read(
            "SELECT id, kind, coop, owner, feature FROM field_versions"
            " WHERE id = ? AND valid_to_ms IS NULL",
            (field_id,),
        )
        return StoredField(*rows[0]) if rows else None

    def field_versions(self, field_id: str | None = None) -> list[FieldVersion]:
        """Every version (of one field, or of all), by id then oldest first."""
        where, params = ("WHERE id = ?", (field_id,)) if field_id is not None else ("", ())
        rows = self._read(
            f"SELECT {_VERSION_COLUMNS} FROM field_versions {where} ORDER BY id, seq",  # noqa: S608
            params,
        )
        return [_version(r) for r in rows]

    def field_version_at(self, field_id: str, ms: int) -> FieldVersion | None:
        """The version of the field valid at ``ms``, or None."""
        return next((v for v in self.field_versions(field_id) if v.valid_at(ms)), None)

    # --- bulk ----------------------------------------------------------------------------

    def save_fields_bulk(
        self,
        fields: Sequence[StoredField],
        *,
        expected: Mapping[str, int | None] | None,
        at_ms: int | None = None,
        by: str = "direct",
        coop: str | None = None,
        take_over: bool = False,
        atomic: bool = False,
    ) -> BulkSave:
        """``save_fields`` for imports of many thousand fields: the same rules, read and
        written set-wise (one query per 500 ids, one ``executemany`` for the ended versions,
        the new ones by ``Tx.insert_rows``: COPY on PostgreSQL) in one transaction. The ids
        must be distinct.

        ``expected`` (required, so no caller forgets it) is, for an import that planned
        against a snapshot of the history, the latest ``seq`` the plan saw per id (``None``:
        a new id); ``expected=None`` saves as ``save_fields`` does. Checked inside the write
        transaction, a row is refused rather than stored, and the others still are, when
        its id's latest version has changed since, or (unless ``take_over``) belongs to
        another cooperative than the row: a field registered meanwhile by another
        cooperative is never ended by the import.
        """
        ids = [f.id for f in fields]
        if len(set(ids)) != len(ids):
            raise ValueError("save_fields_bulk: the same field id appears twice")
        if expected is not None and (missing := [i for i in ids if i not in expected]):
            raise ValueError(f"save_fields_bulk: no expected version for {missing[:5]}")
        with self._write() as conn:
            now = self._stamp(conn, at_ms)
            at = now if at_ms is None else at_ms
            latest: dict[str, FieldVersion] = {}
            for k in range(0, len(ids), 500):
                chunk = ids[k : k + 500]
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    f"SELECT {_VERSION_COLUMNS} FROM field_versions"  # noqa: S608
                    f" WHERE id IN ({marks}) ORDER BY id, seq",
                    chunk,
                )
                latest.update((v.id, v) for v in map(_version, rows.fetchall()))
            if coop is not None:
                taken = sorted(fid for fid, v in latest.items() if v.field.coop != coop)
                if taken:
                    raise FieldOwnershipError(taken)
            refused: list[BulkRefusal] = []
            ended: list[tuple[object, ...]] = []
            added: list[tuple[object, ...]] = []
            for f in fields:
                last = latest.get(f.id)
                if expected is not None:
                    why = _bulk_refusal(f, last, expected[f.id], take_over=take_over)
                    if why is not None:
                        refused.append(BulkRefusal(f.id, why))
                        continue
                if last is None:
                    added.append((f.id, 1, f.kind, f.coop, f.owner, f.feature, None, now, by, now))
                    continue
                if last.valid_to_ms is None and last.field == f:
                    continue
                start = _next_start(last, at)
                if last.valid_to_ms is None:
                    ended.append((start, by, now, f.id, last.seq))
                row = (f.id, last.seq + 1, f.kind, f.coop, f.owner, f.feature, start, now, by, now)
                added.append(row)
            if atomic and refused:
                raise FieldsChangedError([r.id for r in refused])
            conn.executemany(
                "UPDATE field_versions SET valid_to_ms = ?, ended_by = ?, changed_ms = ?"
                " WHERE id = ? AND seq = ?",
                ended,
            )
            conn.insert_rows(
                "field_versions",
                ("id", "seq", "kind", "coop", "owner", "feature", "valid_from_ms",
                 "recorded_ms", "recorded_by", "changed_ms"),
                added,
            )  # fmt: skip
            return BulkSave([str(row[0]) for row in added], refused)


@dataclass(frozen=True, slots=True)
class BulkRefusal:
    """A row ``save_fields_bulk`` refused: ``reason`` is ``"taken"`` (the id's latest
    version is now another cooperative's) or ``"changed"`` (changed since the plan)."""

    id: str
    reason: Literal["taken", "changed"]


@dataclass(frozen=True, slots=True)
class BulkSave:
    """What ``save_fields_bulk`` did: the ids that changed, and the rows it refused."""

    changed: list[str]
    refused: list[BulkRefusal]


def _bulk_refusal(
    row: StoredField, last: FieldVersion | None, expected_seq: int | None, *, take_over: bool
) -> Literal["taken", "changed"] | None:
    """Why a planned row may not be stored now (``None``: it may): its id's latest version
    is another cooperative's, or is not the one the plan saw."""
    if last is not None and last.field.coop != row.coop and not take_over:
        return "taken"
    if (None if last is None else last.seq) != expected_seq:
        return "changed"
    return None


def _next_start(last: FieldVersion, at_ms: int) -> int:
    """When a change at ``at_ms`` takes effect: then, but always after the last version's
    start and not before its end (two changes within a millisecond stay in order)."""
    start = at_ms
    if last.valid_from_ms is not None:
        start = max(start, last.valid_from_ms + 1)
    if last.valid_to_ms is not None:
        start = max(start, last.valid_to_ms)
    return start


def _current_of(version: FieldVersion | None, coop: str | None) -> TypeGuard[FieldVersion]:
    """Whether ``version`` is a current one that ``coop`` (None: an operator) may change."""
    return (
        version is not None
        and version.valid_to_ms is None
        and (coop is None or version.field.coop == coop)
    )


def _version(r: tuple[object, ...]) -> FieldVersion:
    return FieldVersion(
        field=StoredField(str(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4])),
        seq=int(str(r[5])),
        valid_from_ms=None if r[6] is None else int(str(r[6])),
        valid_to_ms=None if r[7] is None else int(str(r[7])),
        recorded_ms=int(str(r[8])),
        recorded_by=str(r[9]),
        ended_by=str(r[10]),
    )
