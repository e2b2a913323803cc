"""Session-wide real servers (one Mosquitto and one influxd per test session) and a fresh
metadata database per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.metadata import MetadataDB
from tests.servers import Influxd, Mosquitto, running_influxd, running_mosquitto


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """A real Mosquitto on a free loopback port (shared: use a unique topic per test)."""
    with running_mosquitto(tmp_path_factory.mktemp("mosquitto")) as server:
        yield server


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Influxd]:
    """A real influxd on a free loopback port (shared: use a unique database per test)."""
    with running_influxd(tmp_path_factory.mktemp("influxd")) as server:
        yield server


@pytest.fixture
def fresh_mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A Mosquitto of this test's own, for tests that stop or restart the broker."""
    with running_mosquitto(tmp_path / "mosquitto") as server:
        yield server


@pytest.fixture
def fresh_influxd(tmp_path: Path) -> Iterator[Influxd]:
    """An influxd of this test's own, for tests that stop or restart it."""
    with running_influxd(tmp_path / "influxd") as server:
        yield server


@pytest.fixture
def metadata(tmp_path: Path) -> Iterator[MetadataDB]:
    """An empty metadata database (SQLite) of this test's own."""
    db = MetadataDB(tmp_path / "agridrone.db")
    yield db
    db.close()
