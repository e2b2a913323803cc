"""Flight summaries, kept as the summary's JSON plus, per field touched, the flight's
compressed coverage state, so a field's coverage is rebuilt without re-reading samples."""

from __future__ import annotations

import zlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from storage.metadata._db import Database, Tx

_FLIGHT_COLUMNS = "id, coop, drone, start_ms, end_ms, open, summary, computed_ms"
_FIELD_FLIGHTS_SQL = (
    "SELECT ff.flight_id, f.coop, f.drone, f.start_ms, f.end_ms, ff.field_id,"
    " ff.covered_ha, ff.applied_l, {state}, f.computed_ms"
    " FROM flight_fields ff JOIN flights f ON f.id = ff.flight_id"
    " WHERE ff.field_id = ? AND ff.start_ms >= ? AND ff.start_ms < ?"
    " ORDER BY ff.start_ms, ff.flight_id"
)


@dataclass(frozen=True, slots=True)
class StoredFlight:
    """One flight as kept: its place in time and its summary (``FlightSummary.to_dict()``)
    as JSON text. ``computed_ms`` is when the summary was made."""

    id: str
    coop: str
    drone: str
    start_ms: int
    end_ms: int
    open: bool
    summary: str
    computed_ms: int

    def summary_dict(self) -> dict[str, Any]:
        """The summary document."""
        doc: dict[str, Any] = orjson.loads(self.summary)
        return doc


@dataclass(frozen=True, slots=True)
class FlightAudience:
    """Whose flights a listing may hold: flights by ``drone_coop``'s drones, or over a field
    of cooperative ``field_coop`` or of owner ``field_owner`` (by the field's version valid
    when the flight started).
    Criteria left ``None`` admit nothing; the API maps roles onto this."""

    drone_coop: str | None = None
    field_coop: str | None = None
    field_owner: str | None = None


@dataclass(frozen=True, slots=True)
class FlightFieldState:
    """What one flight did to one field: headline figures and the flight's own coverage
    state (``pack_state`` of the ``flights.summary.encode_state`` document)."""

    field_id: str
    covered_ha: float
    applied_l: float
    state: bytes


@dataclass(frozen=True, slots=True)
class FieldFlight:
    """One flight over one field, as a field's coverage needs it (``state`` may be empty
    when it was not asked for)."""

    flight_id: str
    coop: str
    drone: str
    start_ms: int
    end_ms: int
    field_id: str
    covered_ha: float
    applied_l: float
    state: bytes
    computed_ms: int = 0  # when the flight's summary (and this state) was made

    def state_doc(self) -> dict[str, Any]:
        """The coverage state document, for ``flights.summary.decode_state``."""
        return unpack_state(self.state)


def pack_state(doc: Mapping[str, Any]) -> bytes:
    """A coverage state document as stored: zlib-compressed JSON."""
    return zlib.compress(orjson.dumps(doc), 6)


def unpack_state(blob: bytes) -> dict[str, Any]:
    """The document ``pack_state`` stored."""
    try:
        doc: dict[str, Any] = orjson.loads(zlib.decompress(blob))
    except (zlib.error, orjson.JSONDecodeError) as exc:
        raise ValueError(
            f"stored coverage state is unreadable ({exc}); recompute with `agridrone flights"
            " rebuild`"
        ) from exc
    return doc


class FlightTable(Database):
    """Flights and their per-field coverage states."""

    schema = """
CREATE TABLE IF NOT EXISTS flights (
    id          TEXT    PRIMARY KEY,
    coop        TEXT    NOT NULL,
    drone       TEXT    NOT NULL,
    start_ms    INTEGER NOT NULL,
    end_ms      INTEGER NOT NULL,
    open        INTEGER NOT NULL CHECK (open IN (0, 1)),
    summary     TEXT    NOT NULL,
    computed_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS flights_by_coop ON flights (coop, start_ms);
CREATE INDEX IF NOT EXISTS flights_by_drone ON flights (drone, start_ms);
CREATE INDEX IF NOT EXISTS flights_by_start ON flights (start_ms);
CREATE TABLE IF NOT EXISTS flight_fields (
    flight_id  TEXT    NOT NULL REFERENCES flights (id) ON DELETE CASCADE,
    field_id   TEXT    NOT NULL,
    start_ms   INTEGER NOT NULL,
    covered_ha REAL    NOT NULL,
    applied_l  REAL    NOT NULL,
    state      BLOB    NOT NULL,
    PRIMARY KEY (flight_id, field_id)
);
CREATE INDEX IF NOT EXISTS flight_fields_by_field ON flight_fields (field_id, start_ms);
"""

    def save_flight(self, flight: StoredFlight, fields: Sequence[FlightFieldState]) -> None:
        """Store one flight and its per-field states, replacing any stored under its id."""
        self.save_flights([(flight, fields)])

    def save_flights(
        self,
        flights: Sequence[tuple[StoredFlight, Sequence[FlightFieldState]]],
        *,
        replace_window: tuple[str, str, int, int] | None = None,
    ) -> int:
        """Store flights (each replacing any with its id) in one transaction.

        With ``replace_window=(coop, drone, start_ms, end_ms)`` the drone's other stored
        flights that started in [start, end) are deleted too: a rebuild leaves exactly what
        it computed. Returns how many such stale flights were deleted.
        """
        with self._write() as conn:
            removed = 0
            if replace_window is not None:
                removed = self._delete_flights(
                    conn, replace_window, keep={f.id for f, _ in flights}
                )
            for flight, fields in flights:
                conn.execute("DELETE FROM flight_fields WHERE flight_id = ?", (flight.id,))
                conn.execute(
                    f"INSERT INTO flights ({_FLIGHT_COLUMNS})"  # noqa: S608
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                    " coop = excluded.coop, drone = excluded.drone,"
                    " start_ms = excluded.start_ms, end_ms = excluded.end_ms,"
                    " open = excluded.open, summary = excluded.summary,"
                    " computed_ms = excluded.computed_ms",
                    (
                        flight.id,
                        flight.coop,
                        flight.drone,
                        flight.start_ms,
                        flight.end_ms,
                        int(flight.open),
                        flight.summary,
                        flight.computed_ms,
                    ),
                )
                conn.executemany(
                    "INSERT INTO flight_fields"
                    " (flight_id, field_id, start_ms, covered_ha, applied_l, state)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        (flight.id, f.field_id, flight.start_ms, f.covered_ha, f.applied_l, f.state)
                        for f in fields
                    ],
                )
        return removed

    def delete_flights(self, coop: str, drone: str, start_ms: int, end_ms: int) -> int:
        """Delete the drone's flights that started in [start, end); returns how many."""
        with self._write() as conn:
            return self._delete_flights(conn, (coop, drone, start_ms, end_ms), keep=set())

    @staticmethod
    def _delete_flights(conn: Tx, window: tuple[str, str, int, int], keep: Collection[str]) -> int:
        coop, drone, start_ms, end_ms = window
        rows = conn.execute(
            "SELECT id FROM flights"
            " WHERE drone = ? AND coop = ? AND start_ms >= ? AND start_ms < ?",
            (drone, coop, start_ms, end_ms),
        ).fetchall()
        stale = [(r[0],) for r in rows if r[0] not in keep]
        conn.executemany("DELETE FROM flight_fields WHERE flight_id = ?", stale)
        conn.executemany("DELETE FROM flights WHERE id = ?", stale)
        return len(stale)

    def flights(
        self,
        start_ms: int,
        end_ms: int,
        *,
        coop: str | None = None,
        drone: str | None = None,
        field: str | None = None,
        limit: int | None = None,
        audience: FlightAudience | None = None,
    ) -> list[StoredFlight]:
        """Flights that started in [start, end), oldest first, optionally of one
        cooperative, one drone, over one field and/or that ``audience`` may see. A flight
        belongs to the window it started in, so consecutive windows never count it twice."""
        where = ["f.start_ms >= ?", "f.start_ms < ?"]
        params: list[Any] = [start_ms, end_ms]
        if audience is not None:
            clause, extra = _audience_clause(audience)
            where.append(clause)
            params += extra
        if coop is not None:
            where.append("f.coop = ?")
            params.append(coop)
        if drone is not None:
            where.append("f.drone = ?")
            params.append(drone)
        source = "flights f"
        if field is not None:
            source = "flight_fields ff JOIN flights f ON f.id = ff.flight_id"
            where += ["ff.field_id = ?", "ff.start_ms >= ?", "ff.start_ms < ?"]
            params += [field, start_ms, end_ms]
        cols = ", ".join(f"f.{c.strip()}" for c in _FLIGHT_COLUMNS.split(","))
        sql = f"SELECT {cols} FROM {source} WHERE {' AND '.join(where)} ORDER BY f.start_ms, f.id"  # noqa: S608
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [_flight_record(r) for r in self._read(sql, tuple(params))]

    def drone_flight_spans(self, start_ms: int, end_ms: int) -> list[tuple[str, str, int, int]]:
        """(coop, drone, first start, last start) of every drone with stored flights that
        started in [start, end), by drone (one grouped query, no summaries read)."""
        rows = self._read(
            "SELECT coop, drone, min(start_ms), max(start_ms) FROM flights"
            " WHERE start_ms >= ? AND start_ms < ? GROUP BY coop, drone ORDER BY coop, drone",
            (start_ms, end_ms),
        )
        return [(str(r[0]), str(r[1]), int(r[2]), int(r[3])) for r in rows]

    def flight(self, flight_id: str) -> StoredFlight | None:
        """One flight by id, or ``None``."""
        rows = self._read(
            f"SELECT {_FLIGHT_COLUMNS} FROM flights WHERE id = ?",  # noqa: S608
            (flight_id,),
        )
        return _flight_record(rows[0]) if rows else None

    def latest_flight(self, coop: str, drone: str) -> StoredFlight | None:
        """The drone's stored flight that started last, or ``None``."""
        rows = self._read(
            f"SELECT {_FLIGHT_COLUMNS} FROM flights WHERE drone = ? AND coop = ?"  # noqa: S608
            " ORDER BY start_ms DESC LIMIT 1",
            (drone, coop),
        )
        return _flight_record(rows[0]) if rows else None

    def flight_fields(self, flight_id: str) -> list[FlightFieldState]:
        """The per-field states of one flight, by field id."""
        rows = self._read(
            "SELECT field_id, covered_ha, applied_l, state FROM flight_fields"
            " WHERE flight_id = ? ORDER BY field_id",
            (flight_id,),
        )
        return [FlightFieldState(r[0], float(r[1]), float(r[2]), bytes(r[3])) for r in rows]

    def field_flights(
        self, field_id: str, start_ms: int, end_ms: int, *, with_states: bool = True
    ) -> list[FieldFlight]:
        """The flights over one field that started in [start, end), oldest first, each with
        its coverage state of that field (one indexed query)."""
        sql = _FIELD_FLIGHTS_SQL.format(state="ff.state" if with_states else "NULL")
        rows = self._read(sql, (field_id, start_ms, end_ms))
        return [
            FieldFlight(
                flight_id=r[0],
                coop=r[1],
                drone=r[2],
                start_ms=int(r[3]),
                end_ms=int(r[4]),
                field_id=r[5],
                covered_ha=float(r[6]),
                applied_l=float(r[7]),
                state=b"" if r[8] is None else bytes(r[8]),
                computed_ms=int(r[9]),
            )
            for r in rows
        ]


def _audience_clause(audience: FlightAudience) -> tuple[str, list[Any]]:
    ors, params = ["1 = 0"], []
    if audience.drone_coop is not None:
        ors.append("f.coop = ?")
        params.append(audience.drone_coop)
    # Ownership as it was when the flight flew: a field's later owner never sees it.
    over = (
        "EXISTS (SELECT 1 FROM flight_fields v JOIN field_versions fl ON fl.id = v.field_id"
        " AND (fl.valid_from_ms IS NULL OR fl.valid_from_ms <= f.start_ms)"
        " AND (fl.valid_to_ms IS NULL OR f.start_ms < fl.valid_to_ms)"
        " WHERE v.flight_id = f.id AND fl.{} = ?)"
    )
    for column, value in (("coop", audience.field_coop), ("owner", audience.field_owner)):
        if value is not None:
            ors.append(over.format(column))
            params.append(value)
    return "(" + " OR ".join(ors) + ")", params


def _flight_record(row: tuple[Any, ...]) -> StoredFlight:
    return StoredFlight(
        id=row[0],
        coop=row[1],
        drone=row[2],
        start_ms=int(row[3]),
        end_ms=int(row[4]),
        open=bool(row[5]),
        summary=row[6],
        computed_ms=int(row[7]),
    )
