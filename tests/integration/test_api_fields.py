"""Fields over real HTTP: import, list and fetch, each role seeing only what it may."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from api.app import create_app
from storage.keys import Role, generate_key
from storage.metadata import MetadataDB
from storage.sqlite import SqliteStore
from tests.integration.api_server import serving

pytestmark = pytest.mark.integration

FIELDS = Path(__file__).resolve().parents[2] / "simulators" / "data" / "dong_trieu_fields.geojson"


def feature(fid: str, owner: str, coop: str, lon0: float) -> dict[str, Any]:
    """A 50 m by 40 m paddy near Đông Triều (about 0.2 ha)."""
    dlon, dlat = 50 / 103_900, 40 / 110_700
    ring = [[lon0, 21.08], [lon0 + dlon, 21.08], [lon0 + dlon, 21.08 + dlat], [lon0, 21.08 + dlat]]
    return {
        "type": "Feature",
        "properties": {"id": fid, "name": f"Ruộng {fid}", "owner": owner, "coop": coop},
        "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
    }


COLLECTION = {
    "type": "FeatureCollection",
    "features": [
        feature("f-hung", "nd-hung", "htx-a", 106.5200),
        feature("f-lan", "nd-lan", "htx-a", 106.5210),
        feature("f-other", "nd-other", "htx-b", 106.5220),
    ],
}


class Api:
    """The running API plus one key per role."""

    def __init__(self, url: str, metadata: MetadataDB) -> None:
        self.url = url
        self.metadata = metadata

    def key(self, role: Role, subject: str) -> dict[str, str]:
        new = generate_key(role, subject, "test", int(time.time() * 1000))
        self.metadata.add_api_key(new.record)
        return {"Authorization": f"Bearer {new.key}"}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    store = SqliteStore(tmp_path / "telemetry.db")
    metadata = MetadataDB(tmp_path / "agridrone.db")
    with serving(create_app(store, metadata)) as url:
        yield Api(url, metadata)
    store.close()
    metadata.close()


@pytest.fixture
def loaded(api: Api) -> Api:
    response = httpx.post(
        f"{api.url}/api/v1/fields", json=COLLECTION, headers=api.key("operator", "ops")
    )
    assert response.status_code == 201, response.text
    return api


def test_import_without_a_key_is_401(api: Api) -> None:
    assert httpx.post(f"{api.url}/api/v1/fields", json=COLLECTION).status_code == 401


def test_a_farmer_cannot_import_fields(api: Api) -> None:
    headers = api.key("farmer", "nd-hung")
    assert (
        httpx.post(f"{api.url}/api/v1/fields", json=COLLECTION, headers=headers).status_code == 403
    )


def test_a_coop_can_import_only_its_own_fields(api: Api) -> None:
    response = httpx.post(
        f"{api.url}/api/v1/fields", json=COLLECTION, headers=api.key("coop", "htx-a")
    )
    assert response.status_code == 422
    assert "f-other" in response.text


def test_invalid_geojson_is_422_with_a_reason_per_feature(api: Api) -> None:
    swapped = feature("f-swapped", "nd-x", "htx-a", 106.52)
    swapped["geometry"]["coordinates"] = [
        [[lat, lon] for lon, lat in swapped["geometry"]["coordinates"][0]]
    ]
    body = {"type": "FeatureCollection", "features": [swapped]}
    response = httpx.post(f"{api.url}/api/v1/fields", json=body, headers=api.key("coop", "htx-a"))
    assert response.status_code == 422
    problems = response.json()["detail"]["problems"]
    assert len(problems) == 1
    assert "f-swapped" in problems[0] or "feature 0" in problems[0]


def test_the_sample_dong_trieu_file_imports(api: Api) -> None:
    body = orjson.loads(FIELDS.read_bytes())
    response = httpx.post(f"{api.url}/api/v1/fields", json=body, headers=api.key("operator", "ops"))
    assert response.status_code == 201
    assert response.json()["imported"] == len(body["features"])


@pytest.mark.parametrize(
    ("role", "subject", "expected"),
    [
        ("farmer", "nd-hung", ["f-hung"]),
        ("coop", "htx-a", ["f-hung", "f-lan"]),
        ("coop", "htx-b", ["f-other"]),
        ("operator", "ops", ["f-hung", "f-lan", "f-other"]),
    ],
)
def test_each_role_lists_only_the_fields_it_may_see(
    loaded: Api, role: Role, subject: str, expected: list[str]
) -> None:
    response = httpx.get(f"{loaded.url}/api/v1/fields", headers=loaded.key(role, subject))
    assert sorted(f["id"] for f in response.json()) == expected


@pytest.mark.parametrize(
    ("role", "subject", "status"),
    [
        ("farmer", "nd-hung", 200),
        ("farmer", "nd-lan", 404),
        ("coop", "htx-a", 200),
        ("coop", "htx-b", 404),
        ("operator", "ops", 200),
    ],
)
def test_fetching_a_field_is_404_for_those_who_may_not_see_it(
    loaded: Api, role: Role, subject: str, status: int
) -> None:
    response = httpx.get(f"{loaded.url}/api/v1/fields/f-hung", headers=loaded.key(role, subject))
    assert response.status_code == status


def test_a_field_comes_back_as_geojson_with_hectares_and_sao(loaded: Api) -> None:
    response = httpx.get(
        f"{loaded.url}/api/v1/fields/f-hung", headers=loaded.key("farmer", "nd-hung")
    )
    props = response.json()["properties"]
    assert response.json()["type"] == "Feature"
    assert props["area_ha"] == pytest.approx(0.2, rel=0.01)
    assert props["area_sao"] == pytest.approx(2000 / 360, rel=0.01)


def test_a_missing_field_and_a_hidden_one_answer_alike(loaded: Api) -> None:
    headers = loaded.key("farmer", "nd-lan")
    hidden = httpx.get(f"{loaded.url}/api/v1/fields/f-hung", headers=headers)
    missing = httpx.get(f"{loaded.url}/api/v1/fields/no-such", headers=headers)
    assert (hidden.status_code, missing.status_code) == (404, 404)
    assert hidden.json()["detail"].replace("f-hung", "X") == missing.json()["detail"].replace(
        "no-such", "X"
    )
