"""Per-drone MAVLink and DJI settings in the drone registry, on SQLite and PostgreSQL: stored
and read back, a DJI serial belongs to one drone only, changed later, and a registry made
before the settings existed is migrated in place (its drones keep everything they had)."""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import pytest

from storage.drones import DroneRecord
from storage.metadata import Database, MetadataConflictError, MetadataDB
from storage.metadata.drones import DroneTable
from tests.servers import Postgres

pytestmark = pytest.mark.integration

HASH = "$7$101$c2FsdA==$aGFzaA=="
_NAMES = itertools.count()


def drone(name: str, **settings: Any) -> DroneRecord:
    return DroneRecord("htx-a", name, 5.5, 1_000, HASH, **settings)


def test_settings_are_stored_and_read_back(metadata: MetadataDB) -> None:
    metadata.add_drone(
        drone(
            "d1",
            mavlink_spray="rc7>1500",
            mavlink_flow_battery=1,
            tank_capacity_l=10.0,
            dji_sn="1ZNBK7LC00AB",
            dji_spraying=True,
        )
    )
    metadata.add_drone(drone("d2"))
    d1 = metadata.drone("htx-a", "d1")
    assert d1 is not None
    assert (d1.mavlink_spray, d1.mavlink_flow_battery, d1.tank_capacity_l) == ("rc7>1500", 1, 10.0)
    assert (d1.dji_sn, d1.dji_spraying) == ("1ZNBK7LC00AB", True)
    d2 = metadata.drone("htx-a", "d2")
    assert d2 == drone("d2")
    assert metadata.drone_by_dji_sn("1ZNBK7LC00AB") == d1
    assert metadata.drone_by_dji_sn("NOPE") is None


def test_a_second_drone_claiming_a_dji_serial_is_refused(metadata: MetadataDB) -> None:
    metadata.add_drone(drone("d1", dji_sn="SN1"))
    with pytest.raises(MetadataConflictError, match="DJI serial SN1 is already drone d1"):
        metadata.add_drone(DroneRecord("htx-b", "d9", None, 0, HASH, dji_sn="SN1"))
    assert metadata.drone("htx-b", "d9") is None
    metadata.add_drone(drone("d2"))
    with pytest.raises(MetadataConflictError, match="SN1 is already drone d1"):
        metadata.update_drone("htx-a", "d2", {"dji_sn": "SN1"})
    d2 = metadata.drone("htx-a", "d2")
    assert d2 is not None
    assert d2.dji_sn is None
    # Drones without a serial are any number: NULLs are distinct under the unique index.
    metadata.add_drone(drone("d3"))
    assert [d.drone for d in metadata.drones("htx-a")] == ["d1", "d2", "d3"]


def test_settings_are_changed_and_cleared_later(metadata: MetadataDB) -> None:
    metadata.add_drone(drone("d1", mavlink_spray="rc7>1500", dji_sn="SN1"))
    changed = metadata.update_drone(
        "htx-a", "d1", {"mavlink_spray": "servo9>1600", "dji_sn": None, "swath_m": 6.0}
    )
    assert (changed.mavlink_spray, changed.dji_sn, changed.swath_m) == ("servo9>1600", None, 6.0)
    assert metadata.drone("htx-a", "d1") == changed
    # The freed serial can go to another drone; keeping one's own serial is no conflict.
    metadata.add_drone(drone("d2", dji_sn="SN1"))
    metadata.update_drone("htx-a", "d2", {"dji_sn": "SN1", "dji_spraying": True})
    assert metadata.drone_by_dji_sn("SN1") == drone("d2", dji_sn="SN1", dji_spraying=True)
    with pytest.raises(MetadataConflictError, match="no drone nope"):
        metadata.update_drone("htx-a", "nope", {"mavlink_spray": "auto"})
    with pytest.raises(ValueError, match="not drone settings: mqtt_password_hash"):
        metadata.update_drone("htx-a", "d1", {"mqtt_password_hash": "x"})


def _registry_before_settings(url: str) -> None:
    """A registry as the release before the settings made it: drones at step 1 only."""
    old = type("DroneTable", (Database,), {"migrations": DroneTable.migrations[:1]})
    db = old(url)
    try:
        with db._write() as tx:
            tx.execute(
                "INSERT INTO drones (coop, drone, swath_m, registered_ms, mqtt_password_hash)"
                " VALUES (?, ?, ?, ?, ?)",
                ("htx-a", "old", 4.0, 7, HASH),
            )
    finally:
        db.close()


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_a_registry_made_before_the_settings_is_migrated(
    store: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if store == "sqlite":
        url = str(tmp_path / "old.db")
    else:
        server: Postgres = request.getfixturevalue("postgres")
        url = server.create_database(f"old_drones_{os.getpid()}_{next(_NAMES)}")
    _registry_before_settings(url)
    db = MetadataDB(url)
    try:
        assert ("DroneTable", 2) in db.applied_migrations()
        assert db.drone("htx-a", "old") == DroneRecord("htx-a", "old", 4.0, 7, HASH)
        db.update_drone("htx-a", "old", {"dji_sn": "SN7", "mavlink_spray": "auto"})
        with pytest.raises(MetadataConflictError, match="SN7"):
            db.add_drone(drone("new", dji_sn="SN7"))
    finally:
        db.close()
    again = MetadataDB(url)
    try:
        assert again.migrate() == []  # a second open applies nothing
    finally:
        again.close()
