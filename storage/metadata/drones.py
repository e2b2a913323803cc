"""The drone registry: each drone with its default swath, Mosquitto password hash and how
its foreign telemetry (MAVLink through MAVProxy, DJI Cloud API) is read."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Final

from storage.drones import DroneRecord
from storage.metadata._db import ConstraintError, Database, MetadataConflictError, Step, Tx

_DRONE_COLUMNS = (
    "coop, drone, swath_m, registered_ms, mqtt_password_hash,"
    " mavlink_spray, mavlink_flow_battery, tank_capacity_l, dji_sn, dji_spraying,"
    " registration"
)

#: The settings ``update_drone`` may change (``agridrone drones set``).
SETTABLE: Final = frozenset(
    (
        "swath_m",
        "mavlink_spray",
        "mavlink_flow_battery",
        "tank_capacity_l",
        "dji_sn",
        "dji_spraying",
        "registration",
    )
)

#: Step 2: per-drone adapter settings. A unique index lets any number of drones have no DJI
#: serial (NULLs are distinct on both stores) but no two drones the same one.
_ADAPTER_COLUMNS: Final = """
ALTER TABLE drones ADD COLUMN mavlink_spray TEXT;
ALTER TABLE drones ADD COLUMN mavlink_flow_battery INTEGER;
ALTER TABLE drones ADD COLUMN tank_capacity_l REAL;
ALTER TABLE drones ADD COLUMN dji_sn TEXT;
ALTER TABLE drones ADD COLUMN dji_spraying INTEGER NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX IF NOT EXISTS drones_dji_sn ON drones (dji_sn)
"""


class DroneTable(Database):
    """Registered drones."""

    schema = """
CREATE TABLE IF NOT EXISTS drones (
    coop               TEXT    NOT NULL,
    drone              TEXT    NOT NULL,
    swath_m            REAL,
    registered_ms      INTEGER NOT NULL,
    mqtt_password_hash TEXT    NOT NULL,
    PRIMARY KEY (coop, drone)
);
"""
    migrations: ClassVar[tuple[Step, ...]] = (
        Step(1, "create tables", schema),
        Step(2, "MAVLink and DJI settings of each drone", _ADAPTER_COLUMNS),
        Step(3, "drone registration number", "ALTER TABLE drones ADD COLUMN registration TEXT"),
    )

    def add_drone(self, record: DroneRecord) -> None:
        """Register a drone; ``MetadataConflictError`` if ``coop``/``drone`` is taken."""
        try:
            with self._write() as conn:
                if record.dji_sn is not None:
                    _check_sn_free(conn, record.dji_sn, record.coop, record.drone)
                conn.execute(
                    f"INSERT INTO drones ({_DRONE_COLUMNS})"  # noqa: S608
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        record.coop,
                        record.drone,
                        record.swath_m,
                        record.registered_ms,
                        record.mqtt_password_hash,
                        record.mavlink_spray,
                        record.mavlink_flow_battery,
                        record.tank_capacity_l,
                        record.dji_sn,
                        int(record.dji_spraying),
                        record.registration,
                    ),
                )
        except ConstraintError as exc:
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

    def drone_by_dji_sn(self, sn: str) -> DroneRecord | None:
        """The drone a DJI serial belongs to, or ``None``."""
        rows = self._read(
            f"SELECT {_DRONE_COLUMNS} FROM drones WHERE dji_sn = ?",  # noqa: S608
            (sn,),
        )
        return _drone_record(rows[0]) if rows else None

    def update_drone(self, coop: str, drone: str, changes: Mapping[str, Any]) -> DroneRecord:
        """Change some of a drone's settings (``SETTABLE``; a value of None clears one) and
        return the drone as stored; ``MetadataConflictError`` if it is not registered or
        its new DJI serial is another drone's."""
        unknown = sorted(set(changes) - SETTABLE)
        if unknown:
            raise ValueError(f"not drone settings: {', '.join(unknown)}")
        names = sorted(changes)
        values = [int(changes[n]) if n == "dji_spraying" else changes[n] for n in names]
        with self._write() as conn:
            sn = changes.get("dji_sn")
            if sn is not None:
                _check_sn_free(conn, sn, coop, drone)
            if names:
                assignments = ", ".join(f"{n} = ?" for n in names)  # names are SETTABLE's
                changed = conn.execute(
                    f"UPDATE drones SET {assignments} WHERE coop = ? AND drone = ?",  # noqa: S608
                    (*values, coop, drone),
                ).rowcount
            else:
                changed = len(
                    conn.execute(
                        "SELECT 1 FROM drones WHERE coop = ? AND drone = ?", (coop, drone)
                    ).fetchall()
                )
            if changed == 0:
                raise MetadataConflictError(_no_drone(coop, drone))
            row = conn.execute(
                f"SELECT {_DRONE_COLUMNS} FROM drones WHERE coop = ? AND drone = ?",  # noqa: S608
                (coop, drone),
            ).fetchone()
        return _drone_record(row)

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


def _drone_record(row: tuple[Any, ...]) -> DroneRecord:
    return DroneRecord(
        coop=row[0],
        drone=row[1],
        swath_m=None if row[2] is None else float(row[2]),
        registered_ms=int(row[3]),
        mqtt_password_hash=row[4],
        mavlink_spray=row[5],
        mavlink_flow_battery=None if row[6] is None else int(row[6]),
        tank_capacity_l=None if row[7] is None else float(row[7]),
        dji_sn=row[8],
        dji_spraying=bool(row[9]),
        registration=row[10],
    )


def _check_sn_free(conn: Tx, sn: str, coop: str, drone: str) -> None:
    """``MetadataConflictError`` if another drone already has DJI serial ``sn``."""
    holder = conn.execute(
        "SELECT coop, drone FROM drones WHERE dji_sn = ? AND NOT (coop = ? AND drone = ?)",
        (sn, coop, drone),
    ).fetchone()
    if holder is not None:
        raise MetadataConflictError(
            f"DJI serial {sn} is already drone {holder[1]} of cooperative {holder[0]}'s;"
            " one aircraft feeds one drone (clear it there first: `agridrone drones set"
            f" --coop {holder[0]} --drone {holder[1]} --dji-sn ''`)"
        )


def _no_drone(coop: str, drone: str) -> str:
    return (
        f"no drone {drone} in cooperative {coop} is registered"
        " (see `agridrone drones list`; register it with `agridrone drones add`)"
    )
