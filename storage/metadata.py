"""The metadata database (SQLite): rejected-message log, API keys, the drone registry,
fields, cooperatives (names, tariffs, members) and flight summaries.

Rejected messages are kept, never silently dropped: the ingest worker records them here
durably before it acknowledges the MQTT message that carried them. API keys are stored
only as hashes (see ``storage.keys``); drones with their Mosquitto password hash. Flights
are kept as the summary's JSON plus, per field touched, the flight's compressed coverage
state, so a field's coverage is rebuilt from summaries without re-reading samples.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import zlib
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import orjson

from storage.contract import StoreUnavailableError
from storage.drones import DroneRecord
from storage.keys import ApiKeyRecord, Role

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rejected_messages (
    id          INTEGER PRIMARY KEY,
    received_ms INTEGER NOT NULL,
    topic       TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    detail      TEXT    NOT NULL,
    payload     BLOB    NOT NULL
);
CREATE INDEX IF NOT EXISTS rejected_messages_by_time ON rejected_messages (received_ms);
CREATE TABLE IF NOT EXISTS api_keys (
    key_id      TEXT    PRIMARY KEY,
    key_sha256  BLOB    NOT NULL UNIQUE,
    role        TEXT    NOT NULL CHECK (role IN ('farmer', 'coop', 'operator')),
    subject     TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    created_ms  INTEGER NOT NULL,
    revoked_ms  INTEGER
);
CREATE TABLE IF NOT EXISTS fields (
    id         TEXT    PRIMARY KEY,
    kind       TEXT    NOT NULL CHECK (kind IN ('field', 'no_spray')),
    coop       TEXT    NOT NULL,
    owner      TEXT    NOT NULL,
    feature    TEXT    NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS drones (
    coop               TEXT    NOT NULL,
    drone              TEXT    NOT NULL,
    swath_m            REAL,
    registered_ms      INTEGER NOT NULL,
    mqtt_password_hash TEXT    NOT NULL,
    PRIMARY KEY (coop, drone)
);
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

_KEY_COLUMNS = "key_id, key_sha256, role, subject, name, created_ms, revoked_ms"
_DRONE_COLUMNS = "coop, drone, swath_m, registered_ms, mqtt_password_hash"
_FLIGHT_COLUMNS = "id, coop, drone, start_ms, end_ms, open, summary, computed_ms"
_FIELD_FLIGHTS_SQL = (
    "SELECT ff.flight_id, f.coop, f.drone, f.start_ms, f.end_ms, ff.field_id,"
    " ff.covered_ha, ff.applied_l, {state}"
    " FROM flight_fields ff JOIN flights f ON f.id = ff.flight_id"
    " WHERE ff.field_id = ? AND ff.start_ms >= ? AND ff.start_ms < ?"
    " ORDER BY ff.start_ms, ff.flight_id"
)


class MetadataConflictError(ValueError):
    """The record already exists (or, for an update, does not); the message says which."""


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
class CoopRecord:
    """A cooperative: its display name and what it bills per sprayed hectare (VND, whole
    đồng); ``None`` until an operator sets it."""

    id: str
    name: str
    tariff_vnd_per_ha: int | None
    updated_ms: int


@dataclass(frozen=True, slots=True)
class RejectedMessage:
    """One rejected message (or one rejected sample of a batch) with its reason."""

    received_ms: int
    topic: str
    reason: str
    detail: str
    payload_excerpt: bytes


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
    of cooperative ``field_coop`` or of owner ``field_owner`` (by the registry as it is now).
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


class MetadataDB:
    """SQLite metadata database; one connection per thread, WAL, synchronous=FULL."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._conn().executescript(_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
            except sqlite3.Error as exc:
                raise StoreUnavailableError(f"metadata database {self.path}: {exc}") from exc
            self._local.conn = conn
        return conn

    def record_rejections(self, rejected: Sequence[RejectedMessage]) -> None:
        """Append rejected messages durably (one transaction)."""
        if not rejected:
            return
        conn = self._conn()
        try:
            with conn:
                conn.execute("BEGIN")
                conn.executemany(
                    "INSERT INTO rejected_messages"
                    " (received_ms, topic, reason, detail, payload) VALUES (?, ?, ?, ?, ?)",
                    [
                        (r.received_ms, r.topic, r.reason, r.detail, r.payload_excerpt)
                        for r in rejected
                    ],
                )
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"metadata database {self.path}: {exc}") from exc

    def rejected_messages(
        self, start_ms: int, end_ms: int, limit: int = 1000
    ) -> list[RejectedMessage]:
        """Rejected messages received in [start, end), oldest first, at most ``limit``."""
        rows = self._conn().execute(
            "SELECT received_ms, topic, reason, detail, payload FROM rejected_messages"
            " WHERE received_ms >= ? AND received_ms < ? ORDER BY received_ms, id LIMIT ?",
            (start_ms, end_ms, limit),
        )
        return [RejectedMessage(r[0], r[1], r[2], r[3], bytes(r[4])) for r in rows]

    def rejected_counts(self) -> dict[str, int]:
        """How many rejections are logged, by reason."""
        rows = self._conn().execute(
            "SELECT reason, count(*) FROM rejected_messages GROUP BY reason ORDER BY reason"
        )
        return {reason: int(n) for reason, n in rows}

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        try:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                yield conn
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"metadata database {self.path}: {exc}") from exc

    # --- API keys -----------------------------------------------------------------------

    def add_api_key(self, record: ApiKeyRecord) -> None:
        """Store a new key's record (its hash, never the key)."""
        try:
            with self._write() as conn:
                conn.execute(
                    f"INSERT INTO api_keys ({_KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
                    (
                        record.key_id,
                        record.key_sha256,
                        record.role,
                        record.subject,
                        record.name,
                        record.created_ms,
                        record.revoked_ms,
                    ),
                )
        except sqlite3.IntegrityError as exc:
            raise MetadataConflictError(
                f"API key {record.key_id}: already stored ({exc}); generate a new key"
            ) from exc

    def api_key(self, key_id: str) -> ApiKeyRecord | None:
        """The key with this id (revoked or not), or ``None``."""
        row = self._read(
            f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE key_id = ?",  # noqa: S608
            (key_id,),
        )
        return _key_record(row[0]) if row else None

    def api_keys(self, *, include_revoked: bool = True) -> list[ApiKeyRecord]:
        """Every key, oldest first."""
        where = "" if include_revoked else " WHERE revoked_ms IS NULL"
        rows = self._read(
            f"SELECT {_KEY_COLUMNS} FROM api_keys{where} ORDER BY created_ms, key_id",  # noqa: S608
            (),
        )
        return [_key_record(r) for r in rows]

    def revoke_api_key(self, key_id: str, now_ms: int) -> ApiKeyRecord:
        """Revoke a key (idempotent: an already revoked key keeps its first revocation time).

        Raises ``MetadataConflictError`` when no key has this id.
        """
        with self._write() as conn:
            conn.execute(
                "UPDATE api_keys SET revoked_ms = ? WHERE key_id = ? AND revoked_ms IS NULL",
                (now_ms, key_id),
            )
            row = conn.execute(
                f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE key_id = ?",  # noqa: S608
                (key_id,),
            ).fetchone()
        if row is None:
            raise MetadataConflictError(
                f"no API key with id {key_id!r} (see `agridrone keys list`)"
            )
        return _key_record(row)

    # --- drone registry -----------------------------------------------------------------

    def add_drone(self, record: DroneRecord) -> None:
        """Register a drone; ``MetadataConflictError`` if ``coop``/``drone`` is taken."""
        try:
            with self._write() as conn:
                conn.execute(
                    f"INSERT INTO drones ({_DRONE_COLUMNS}) VALUES (?, ?, ?, ?, ?)",  # noqa: S608
                    (
                        record.coop,
                        record.drone,
                        record.swath_m,
                        record.registered_ms,
                        record.mqtt_password_hash,
                    ),
                )
        except sqlite3.IntegrityError as exc:
            raise MetadataConflictError(
                f"drone {record.drone} of cooperative {record.coop} is already registered;"
                " to issue it a new MQTT password use `agridrone drones passwd`"
            ) from exc

    def drone(self, coop: str, drone: str) -> DroneRecord | None:
        """One registered drone, or ``None``."""
        rows = self._read(
            f"SELECT {_DRONE_COLUMNS} FROM drones WHERE coop = ? AND drone = ?",  # noqa: S608
            (coop, drone),
        )
        return _drone_record(rows[0]) if rows else None

    def drones(self, coop: str | None = None) -> list[DroneRecord]:
        """Registered drones (of one cooperative, or all), by cooperative then drone id."""
        if coop is None:
            rows = self._read(
                f"SELECT {_DRONE_COLUMNS} FROM drones ORDER BY coop, drone",  # noqa: S608
                (),
            )
        else:
            rows = self._read(
                f"SELECT {_DRONE_COLUMNS} FROM drones WHERE coop = ? ORDER BY drone",  # noqa: S608
                (coop,),
            )
        return [_drone_record(r) for r in rows]

    def set_drone_password(self, coop: str, drone: str, mqtt_password_hash: str) -> None:
        """Replace a drone's MQTT password hash; ``MetadataConflictError`` if not registered."""
        with self._write() as conn:
            changed = conn.execute(
                "UPDATE drones SET mqtt_password_hash = ? WHERE coop = ? AND drone = ?",
                (mqtt_password_hash, coop, drone),
            ).rowcount
        if changed == 0:
            raise MetadataConflictError(_no_drone(coop, drone))

    def remove_drone(self, coop: str, drone: str) -> None:
        """Unregister a drone; ``MetadataConflictError`` if it is not registered."""
        with self._write() as conn:
            changed = conn.execute(
                "DELETE FROM drones WHERE coop = ? AND drone = ?", (coop, drone)
            ).rowcount
        if changed == 0:
            raise MetadataConflictError(_no_drone(coop, drone))

    def _read(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        try:
            return self._conn().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"metadata database {self.path}: {exc}") from exc

    # --- fields --------------------------------------------------------------------------

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
        row = self._conn().execute("SELECT count(*), coalesce(max(updated_ms), 0) FROM fields")
        count, latest = row.fetchone()
        return int(count), int(latest)

    def field_owners(self) -> dict[str, tuple[str, str]]:
        """(owner, coop) of every registered field by id, without reading geometry."""
        rows = self._conn().execute("SELECT id, owner, coop FROM fields")
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

    # --- cooperatives ---------------------------------------------------------------------

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

    # --- flights -------------------------------------------------------------------------

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
                    f"INSERT OR REPLACE INTO flights ({_FLIGHT_COLUMNS})"  # noqa: S608
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
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
    def _delete_flights(
        conn: sqlite3.Connection, window: tuple[str, str, int, int], keep: Collection[str]
    ) -> int:
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
        sql = _FIELD_FLIGHTS_SQL.format(state="ff.state" if with_states else "x''")
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
                state=bytes(r[8]),
            )
            for r in rows
        ]

    def ping(self) -> None:
        """Raise ``StoreUnavailableError`` unless the database answers."""
        try:
            self._conn().execute("SELECT 1").fetchone()
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"metadata database {self.path}: {exc}") from exc

    def close(self) -> None:
        """Close this thread's connection."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def _key_record(row: tuple[Any, ...]) -> ApiKeyRecord:
    return ApiKeyRecord(
        key_id=row[0],
        key_sha256=bytes(row[1]),
        role=cast(Role, row[2]),
        subject=row[3],
        name=row[4],
        created_ms=int(row[5]),
        revoked_ms=None if row[6] is None else int(row[6]),
    )


def _drone_record(row: tuple[Any, ...]) -> DroneRecord:
    return DroneRecord(
        coop=row[0],
        drone=row[1],
        swath_m=None if row[2] is None else float(row[2]),
        registered_ms=int(row[3]),
        mqtt_password_hash=row[4],
    )


def _audience_clause(audience: FlightAudience) -> tuple[str, list[Any]]:
    ors, params = ["0"], []
    if audience.drone_coop is not None:
        ors.append("f.coop = ?")
        params.append(audience.drone_coop)
    over = (
        "EXISTS (SELECT 1 FROM flight_fields v JOIN fields fl ON fl.id = v.field_id"
        " WHERE v.flight_id = f.id AND fl.{} = ?)"
    )
    for column, value in (("coop", audience.field_coop), ("owner", audience.field_owner)):
        if value is not None:
            ors.append(over.format(column))
            params.append(value)
    return "(" + " OR ".join(ors) + ")", params


def _coop_record(row: tuple[Any, ...]) -> CoopRecord:
    return CoopRecord(
        id=row[0],
        name=row[1],
        tariff_vnd_per_ha=None if row[2] is None else int(row[2]),
        updated_ms=int(row[3]),
    )


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


def _no_drone(coop: str, drone: str) -> str:
    return (
        f"no drone {drone} in cooperative {coop} is registered"
        " (see `agridrone drones list`; register it with `agridrone drones add`)"
    )
