"""Session-wide real servers (one Mosquitto, one influxd and one PostgreSQL per test session)
and a fresh metadata database per test, on each metadata store."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.metadata import MetadataDB
from tests.servers import (
    Influxd,
    Mosquitto,
    Postgres,
    running_influxd,
    running_mosquitto,
    running_postgres,
)

#: Every command's default data folder, for the session: never the real home folder (also
#: for the subprocesses of tests that clear every AGRIDRONE_* variable).
_DATA_HOME = Path(tempfile.mkdtemp(prefix="agridrone-tests-"))
os.environ["XDG_DATA_HOME"] = str(_DATA_HOME)
os.environ["AGRIDRONE_DATA_DIR"] = str(_DATA_HOME / "agridrone")


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the session's data folder."""
    shutil.rmtree(_DATA_HOME, ignore_errors=True)


#: The metadata database template every PostgreSQL test database is copied from.
_TEMPLATE = "agridrone_template"
_DATABASES = itertools.count()


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


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    """A real PostgreSQL on a free loopback port with its own data folder (shared: use a
    database of the test's own, e.g. ``postgres_metadata_url``)."""
    with running_postgres(tmp_path_factory.mktemp("postgres")) as server:
        yield server


@pytest.fixture(scope="session")
def metadata_template(postgres: Postgres) -> str:
    """A PostgreSQL database with every metadata migration applied, to copy per test."""
    MetadataDB(postgres.create_database(_TEMPLATE)).close()
    return _TEMPLATE


@pytest.fixture
def postgres_metadata_url(postgres: Postgres, metadata_template: str) -> Iterator[str]:
    """The URL of an empty, migrated PostgreSQL metadata database of this test's own."""
    name = f"t_{os.getpid()}_{next(_DATABASES)}"
    url = postgres.create_database(name, template=metadata_template)
    yield url
    postgres.drop_database(name)


@pytest.fixture(params=["sqlite", "postgres"])
def metadata_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where this test's empty metadata database is: a SQLite file, or a PostgreSQL
    database (the test runs once on each store)."""
    if request.param == "sqlite":
        return str(tmp_path / "agridrone.db")
    url: str = request.getfixturevalue("postgres_metadata_url")
    return url


@pytest.fixture
def metadata(metadata_url: str) -> Iterator[MetadataDB]:
    """An empty metadata database of this test's own, on each store in turn."""
    db = MetadataDB(metadata_url)
    yield db
    db.close()


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
