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
from api.times import rfc3339
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
def api(tmp_path: Path, metadata_url: str) -> Iterator[Api]:
    store = SqliteStore(tmp_path / "telemetry.db")
    metadata = MetadataDB(metadata_url)
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


# --- ownership and editing: POST never takes another coop's id; PUT, DELETE, versions -----


def get_json(api: Api, path: str, role: Role = "operator", subject: str = "ops") -> Any:
    response = httpx.get(f"{api.url}/api/v1{path}", headers=api.key(role, subject))
    assert response.status_code == 200, response.text
    return response.json()


def moved(fid: str, owner: str, coop: str, lon0: float, **props: str) -> dict[str, Any]:
    """``feature`` with changed properties."""
    doc = feature(fid, owner, coop, lon0)
    doc["properties"].update(props)
    return doc


def test_a_coop_posting_another_coops_id_gets_409_naming_only_the_id(loaded: Api) -> None:
    before = get_json(loaded, "/fields/f-other")
    body = {
        "type": "FeatureCollection",
        "features": [
            feature("f-brand-new", "nd-hung", "htx-a", 106.5230),
            feature("f-other", "nd-hung", "htx-a", 106.5240),
        ],
    }
    response = httpx.post(
        f"{loaded.url}/api/v1/fields", json=body, headers=loaded.key("coop", "htx-a")
    )
    assert response.status_code == 409
    assert "'f-other'" in response.json()["detail"]
    assert "htx-b" not in response.text
    assert "nd-other" not in response.text
    assert get_json(loaded, "/fields/f-other") == before
    assert len(get_json(loaded, "/fields/f-other/versions")) == 1
    ops = loaded.key("operator", "ops")
    assert httpx.get(f"{loaded.url}/api/v1/fields/f-brand-new", headers=ops).status_code == 404


def test_the_owner_coop_posting_its_id_again_starts_a_new_version(loaded: Api) -> None:
    body = moved("f-hung", "nd-hung", "htx-a", 106.5200, name="Ruộng mới")
    response = httpx.post(
        f"{loaded.url}/api/v1/fields", json=body, headers=loaded.key("coop", "htx-a")
    )
    assert response.status_code == 201, response.text
    versions = get_json(loaded, "/fields/f-hung/versions")
    assert [v["field"]["name"] for v in versions] == ["Ruộng f-hung", "Ruộng mới"]
    assert versions[0]["valid_from"] is None
    assert versions[0]["valid_to"] == versions[1]["valid_from"]
    assert versions[1]["recorded_by"].startswith("coop:htx-a (key ")


def test_posting_an_unchanged_field_adds_no_version(loaded: Api) -> None:
    response = httpx.post(
        f"{loaded.url}/api/v1/fields", json=COLLECTION, headers=loaded.key("operator", "ops")
    )
    assert response.status_code == 201
    assert len(get_json(loaded, "/fields/f-hung/versions")) == 1


def test_the_owner_coop_redraws_its_field(loaded: Api) -> None:
    wider = feature("f-hung", "nd-hung", "htx-a", 106.5200)
    ring = wider["geometry"]["coordinates"][0]
    for point in ring[1:3]:
        point[0] += 50 / 103_900  # 50 m wider: 100 m by 40 m
    response = httpx.put(
        f"{loaded.url}/api/v1/fields/f-hung",
        json={"geometry": wider["geometry"]},
        headers=loaded.key("coop", "htx-a"),
    )
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 2
    field = get_json(loaded, "/fields/f-hung", "farmer", "nd-hung")
    assert field["properties"]["area_ha"] == pytest.approx(0.4, rel=0.01)
    assert field["properties"]["name"] == "Ruộng f-hung"  # left out: kept


def test_an_operator_renames_any_field(loaded: Api) -> None:
    response = httpx.put(
        f"{loaded.url}/api/v1/fields/f-other",
        json={"properties": {"name": "Ruộng bà Thu"}},
        headers=loaded.key("operator", "ops"),
    )
    assert response.status_code == 200, response.text
    assert get_json(loaded, "/fields/f-other")["properties"]["name"] == "Ruộng bà Thu"


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_another_coops_field_answers_exactly_like_an_unknown_id(loaded: Api, method: str) -> None:
    headers = loaded.key("coop", "htx-b")
    before = get_json(loaded, "/fields/f-hung")

    def ask(fid: str) -> httpx.Response:
        kwargs: dict[str, Any] = {"headers": headers}
        if method == "PUT":
            kwargs["json"] = {"properties": {"name": "taken"}}
        return httpx.request(method, f"{loaded.url}/api/v1/fields/{fid}", **kwargs)

    hidden, unknown = ask("f-hung"), ask("f-nope")
    assert (hidden.status_code, unknown.status_code) == (404, 404)
    assert hidden.json() == {"detail": "no field 'f-hung'"}
    assert unknown.json() == {"detail": "no field 'f-nope'"}
    assert get_json(loaded, "/fields/f-hung") == before


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_farmers_cannot_write_fields_whatever_the_id(loaded: Api, method: str) -> None:
    headers = loaded.key("farmer", "nd-hung")
    body: dict[str, Any] | None = {"properties": {"name": "x"}} if method == "PUT" else None
    answers = [
        httpx.request(method, f"{loaded.url}/api/v1/fields/{fid}", headers=headers, json=body)
        for fid in ("f-hung", "f-other", "f-nope")
    ]
    assert {a.status_code for a in answers} == {403}
    assert len({a.text for a in answers}) == 1
    assert len(get_json(loaded, "/fields/f-hung/versions")) == 1


def test_a_coop_cannot_move_its_field_to_another_coop(loaded: Api) -> None:
    response = httpx.put(
        f"{loaded.url}/api/v1/fields/f-hung",
        json={"properties": {"coop": "htx-b"}},
        headers=loaded.key("coop", "htx-a"),
    )
    assert response.status_code == 403
    assert "only an operator may move a field" in response.json()["detail"]
    assert get_json(loaded, "/fields/f-hung")["properties"]["coop"] == "htx-a"


def test_an_operator_moves_a_field_to_another_coop(loaded: Api) -> None:
    response = httpx.put(
        f"{loaded.url}/api/v1/fields/f-hung",
        json={"properties": {"coop": "htx-b", "owner": "nd-other"}},
        headers=loaded.key("operator", "ops"),
    )
    assert response.status_code == 200, response.text
    a_ids = [f["id"] for f in get_json(loaded, "/fields", "coop", "htx-a")]
    b_ids = [f["id"] for f in get_json(loaded, "/fields", "coop", "htx-b")]
    assert (a_ids, b_ids) == (["f-lan"], ["f-hung", "f-other"])
    # Each cooperative sees only the versions that were its own.
    assert [v["version"] for v in get_json(loaded, "/fields/f-hung/versions", "coop", "htx-a")] == [
        1
    ]
    assert [v["version"] for v in get_json(loaded, "/fields/f-hung/versions", "coop", "htx-b")] == [
        2
    ]


def test_a_deleted_field_leaves_listings_and_its_id_stays_with_its_coop(loaded: Api) -> None:
    coop_a = loaded.key("coop", "htx-a")
    response = httpx.delete(f"{loaded.url}/api/v1/fields/f-lan", headers=coop_a)
    assert response.status_code == 200, response.text
    assert response.json()["valid_to"] is not None
    assert [f["id"] for f in get_json(loaded, "/fields", "coop", "htx-a")] == ["f-hung"]
    assert httpx.get(f"{loaded.url}/api/v1/fields/f-lan", headers=coop_a).status_code == 404
    assert httpx.delete(f"{loaded.url}/api/v1/fields/f-lan", headers=coop_a).status_code == 404
    assert len(get_json(loaded, "/fields/f-lan/versions", "coop", "htx-a")) == 1
    back = feature("f-lan", "nd-lan", "htx-b", 106.5210)
    refused = httpx.post(
        f"{loaded.url}/api/v1/fields", json=back, headers=loaded.key("coop", "htx-b")
    )
    assert refused.status_code == 409
    again = httpx.post(
        f"{loaded.url}/api/v1/fields",
        json=feature("f-lan", "nd-lan", "htx-a", 106.5210),
        headers=coop_a,
    )
    assert again.status_code == 201
    assert [v["version"] for v in get_json(loaded, "/fields/f-lan/versions")] == [1, 2]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"valid_from": "2999-01-01", "properties": {"name": "x"}}, "in the future"),
        ({"valid_from": "yesterday", "properties": {"name": "x"}}, "valid_from"),
        ({"properties": {"id": "f-lan", "name": "x"}}, "ids never change"),
        ({"type": "FeatureCollection"}, "one GeoJSON Feature"),
        ({"geometry": {"type": "Point", "coordinates": [106.52, 21.08]}}, "problems"),
    ],
)
def test_a_bad_redraw_is_422_and_changes_nothing(
    loaded: Api, body: dict[str, Any], expected: str
) -> None:
    response = httpx.put(
        f"{loaded.url}/api/v1/fields/f-hung", json=body, headers=loaded.key("coop", "htx-a")
    )
    assert response.status_code == 422
    assert expected in response.text
    assert len(get_json(loaded, "/fields/f-hung/versions")) == 1


def test_a_redraw_cannot_start_before_the_current_version(loaded: Api) -> None:
    headers = loaded.key("operator", "ops")
    first = httpx.put(
        f"{loaded.url}/api/v1/fields/f-hung",
        json={"valid_from": "2026-01-01", "properties": {"name": "một"}},
        headers=headers,
    )
    assert first.status_code == 200, first.text
    assert first.json()["valid_from"] == "2026-01-01T00:00:00.000+07:00"
    assert first.json()["note"] is None  # a rename: no flight summary depends on it
    second = httpx.put(
        f"{loaded.url}/api/v1/fields/f-hung",
        json={"valid_from": "2025-12-01", "properties": {"name": "hai"}},
        headers=headers,
    )
    assert second.status_code == 422
    assert "after the current version's start" in second.json()["detail"]


def test_a_cooperative_may_date_a_change_a_few_days_back(loaded: Api) -> None:
    two_days_ago = rfc3339(int(time.time() * 1000) - 2 * 86_400_000)
    response = httpx.put(
        f"{loaded.url}/api/v1/fields/f-hung",
        json={"valid_from": two_days_ago, "properties": {"name": "một"}},
        headers=loaded.key("coop", "htx-a"),
    )
    assert response.status_code == 200, response.text
    assert response.json()["valid_from"] == two_days_ago


def test_a_cooperative_may_not_date_a_change_more_than_31_days_back(loaded: Api) -> None:
    too_old = rfc3339(int(time.time() * 1000) - 32 * 86_400_000)
    response = httpx.put(
        f"{loaded.url}/api/v1/fields/f-hung",
        json={"valid_from": too_old, "properties": {"name": "một"}},
        headers=loaded.key("coop", "htx-a"),
    )
    assert response.status_code == 422
    assert "at most 31 days back" in response.json()["detail"]
    assert "ask an operator" in response.json()["detail"].lower()
    assert len(get_json(loaded, "/fields/f-hung/versions")) == 1
