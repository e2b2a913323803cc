"""The metadata database (SQLite): rejected-message log, API keys and the drone registry.

Rejected messages are kept, never silently dropped: the ingest worker records them here
durably before it acknowledges the MQTT message that carried them. API keys are stored
only as hashes (see ``storage.keys``); drones with their Mosquitto password hash.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

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
"""

_KEY_COLUMNS = "key_id, key_sha256, role, subject, name, created_ms, revoked_ms"
_DRONE_COLUMNS = "coop, drone, swath_m, registered_ms, mqtt_password_hash"


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
class RejectedMessage:
    """One rejected message (or one rejected sample of a batch) with its reason."""

    received_ms: int
    topic: str
    reason: str
    detail: str
    payload_excerpt: bytes


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
        """Register fields, replacing any with the same id (one transaction)."""
        now = int(time.time() * 1000)
        with self._write() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO fields (id, kind, coop, owner, feature, updated_ms)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(f.id, f.kind, f.coop, f.owner, f.feature, now) for f in fields],
            )

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


def _no_drone(coop: str, drone: str) -> str:
    return (
        f"no drone {drone} in cooperative {coop} is registered"
        " (see `agridrone drones list`; register it with `agridrone drones add`)"
    )
