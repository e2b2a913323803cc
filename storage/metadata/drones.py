"""The drone registry: each drone with its default swath and Mosquitto password hash."""

from __future__ import annotations

from typing import Any, ClassVar

from storage.drones import DroneRecord
from storage.metadata._db import ConstraintError, Database, MetadataConflictError, Step

_DRONE_COLUMNS = "coop, drone, swath_m, registered_ms, mqtt_password_hash, registration"


class DroneTable(Database):
    """Registered drones."""

    migrations: ClassVar[tuple[Step, ...]] = (
        Step(
            1,
            "create tables",
            """
CREATE TABLE IF NOT EXISTS drones (
    coop               TEXT    NOT NULL,
    drone              TEXT    NOT NULL,
    swath_m            REAL,
    registered_ms      INTEGER NOT NULL,
    mqtt_password_hash TEXT    NOT NULL,
    PRIMARY KEY (coop, drone)
);
""",
        ),
        # Step 2 is main's MAVLink and DJI settings (the mavproxy branch): the registration
        # number is step 3, so the two merge without renumbering.
        Step(3, "drone registration number", "ALTER TABLE drones ADD COLUMN registration TEXT"),
    )

    def add_drone(self, record: DroneRecord) -> None:
        """Register a drone; ``MetadataConflictError`` if ``coop``/``drone`` is taken."""
        try:
            with self._write() as conn:
                conn.execute(
                    f"INSERT INTO drones ({_DRONE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",  # noqa: S608
                    (
                        record.coop,
                        record.drone,
                        record.swath_m,
                        record.registered_ms,
                        record.mqtt_password_hash,
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

    def set_drone_password(self, coop: str, drone: str, mqtt_password_hash: str) -> None:
        """Replace a drone's MQTT password hash; ``MetadataConflictError`` if not registered."""
        with self._write() as conn:
            changed = conn.execute(
                "UPDATE drones SET mqtt_password_hash = ? WHERE coop = ? AND drone = ?",
                (mqtt_password_hash, coop, drone),
            ).rowcount
        if changed == 0:
            raise MetadataConflictError(_no_drone(coop, drone))

    def set_drone_registration(self, coop: str, drone: str, registration: str | None) -> None:
        """Set (or clear) a drone's registration number; ``MetadataConflictError`` if the
        drone is not registered."""
        with self._write() as conn:
            changed = conn.execute(
                "UPDATE drones SET registration = ? WHERE coop = ? AND drone = ?",
                (registration, coop, drone),
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
        registration=row[5],
    )


def _no_drone(coop: str, drone: str) -> str:
    return (
        f"no drone {drone} in cooperative {coop} is registered"
        " (see `agridrone drones list`; register it with `agridrone drones add`)"
    )
