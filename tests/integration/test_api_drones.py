"""Drones over real HTTP: a cooperative sees its own drones' last positions, never another's."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from storage.keys import Role, generate_key
from storage.metadata import MetadataDB
from storage.sqlite import SqliteStore
from tests.integration.api_server import serving
from tests.integration.mqtt_helpers import sample_series

pytestmark = pytest.mark.integration


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[str, MetadataDB]]:
    store = SqliteStore(tmp_path / "telemetry.db")
    store.write_samples(sample_series("htx-a", "dt-01", 5) + sample_series("htx-b", "dt-09", 3))
    metadata = MetadataDB(tmp_path / "agridrone.db")
    with serving(create_app(store, metadata)) as url:
        yield url, metadata
    store.close()
    metadata.close()


def key(metadata: MetadataDB, role: Role, subject: str) -> dict[str, str]:
    new = generate_key(role, subject, "test", int(time.time() * 1000))
    metadata.add_api_key(new.record)
    return {"Authorization": f"Bearer {new.key}"}


@pytest.mark.parametrize(
    ("role", "subject", "expected"),
    [
        ("coop", "htx-a", ["dt-01"]),
        ("coop", "htx-b", ["dt-09"]),
        ("operator", "ops", ["dt-01", "dt-09"]),
        ("farmer", "nd-hung", []),
    ],
)
def test_each_role_sees_only_its_drones(
    api: tuple[str, MetadataDB], role: Role, subject: str, expected: list[str]
) -> None:
    url, metadata = api
    response = httpx.get(f"{url}/api/v1/drones", headers=key(metadata, role, subject))
    assert response.status_code == 200
    assert sorted(d["drone"] for d in response.json()) == expected


def test_the_last_position_is_the_newest_sample(api: tuple[str, MetadataDB]) -> None:
    url, metadata = api
    newest = sample_series("htx-a", "dt-01", 5)[-1]
    [drone] = httpx.get(f"{url}/api/v1/drones", headers=key(metadata, "coop", "htx-a")).json()
    assert (drone["lat"], drone["lon"]) == (newest.lat, newest.lon)
    assert drone["last_seen"].startswith("2025-11-28T")


def test_drones_without_a_key_is_401(api: tuple[str, MetadataDB]) -> None:
    url, _ = api
    response = httpx.get(f"{url}/api/v1/drones")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
