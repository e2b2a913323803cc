"""The diary's schema steps on a database made before them, on SQLite and PostgreSQL: the
drone registry gains a registration column (its drones kept), products, jobs and diary
entries get their tables."""

from __future__ import annotations

import pytest

from storage.drones import DroneRecord
from storage.metadata import MetadataDB, ProductRecord

pytestmark = pytest.mark.integration

NEW_STEPS = (("DroneTable", 3), ("ProductTable", 1), ("JobTable", 1), ("DiaryTable", 1))


def test_a_database_from_before_the_diary_is_migrated_in_place(metadata_url: str) -> None:
    db = MetadataDB(metadata_url)
    try:
        db.add_drone(DroneRecord("htx-a", "d1", 6.0, 1000, "$7$101$x$y"))
        with db._write() as tx:  # back to the layout of the release before the diary
            tx.execute("ALTER TABLE drones DROP COLUMN registration")
            for table in ("products", "jobs", "diary_entries"):
                tx.execute(f"DROP TABLE {table}")
            for aggregate, version in NEW_STEPS:
                tx.execute(
                    "DELETE FROM schema_migrations WHERE aggregate = ? AND version = ?",
                    (aggregate, version),
                )
        assert not set(NEW_STEPS) & db.applied_migrations()
    finally:
        db.close()
    again = MetadataDB(metadata_url)
    try:
        assert set(NEW_STEPS) <= again.applied_migrations()
        [drone] = again.drones()
        assert (drone.drone, drone.swath_m, drone.registration) == ("d1", 6.0, None)
        again.update_drone("htx-a", "d1", {"registration": "VN-UAV-0001"})
        assert again.drones()[0].registration == "VN-UAV-0001"
        again.add_product(ProductRecord("htx-a", "p1", "T", "A", "5%", "VN-1", "sâu", 15.0, 7))
        assert again.products("htx-a")[0].target == "sâu"
        assert again.migrate() == []
    finally:
        again.close()
