"""Fixtures shared by the integration tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.contract import TelemetryStore
from storage.influx import InfluxStore
from storage.sqlite import SqliteStore
from tests.integration.api_world import World, running_world
from tests.servers import Influxd, Postgres


@pytest.fixture(params=["sqlite", "influx"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TelemetryStore]:
    """Each test runs once per store: a fresh SQLite file, or a fresh InfluxDB database."""
    if request.param == "sqlite":
        with SqliteStore(tmp_path / "telemetry.db") as sqlite:
            yield sqlite
        return
    influxd: Influxd = request.getfixturevalue("influxd")
    influx = InfluxStore.open(influxd.url, f"test_{uuid.uuid4().hex[:12]}")
    yield influx
    influx.drop_database()
    influx.close()


def scaled_metadata(request: pytest.FixtureRequest, store: TelemetryStore, folder: Path) -> str:
    """Where a test's metadata goes beside ``store``: a SQLite file beside the SQLite store
    (everything embedded), a fresh PostgreSQL database beside InfluxDB (the scaled layout)."""
    if isinstance(store, InfluxStore):
        url: str = request.getfixturevalue("postgres_metadata_url")
        return url
    return str(folder / "agridrone.db")


@pytest.fixture(scope="module", params=["sqlite", "influx"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """The API over simulated, summarized flights (tests/integration/api_world.py), once per
    layout and test module; tests only read it. Two layouts: everything embedded (SQLite
    telemetry and metadata), and the scaled one (InfluxDB telemetry, PostgreSQL metadata)."""
    folder = tmp_path_factory.mktemp(f"world-{request.param}")
    if request.param == "sqlite":
        with SqliteStore(folder / "telemetry.db") as sqlite, running_world(sqlite, folder) as w:
            yield w
        return
    influxd: Influxd = request.getfixturevalue("influxd")
    postgres: Postgres = request.getfixturevalue("postgres")
    name = f"world_{uuid.uuid4().hex[:12]}"
    influx = InfluxStore.open(influxd.url, name)
    try:
        with running_world(influx, folder, postgres.create_database(name)) as w:
            yield w
    finally:
        influx.drop_database()
        influx.close()
        postgres.drop_database(name)
