"""Field input over real HTTP: outlines and values that would break later are refused (422),
a stored field that no longer validates takes nothing from the others, PUT merges by clear
rules, malformed path ids are 422, a taken id says so without an owner, and commune-wide
no-spray zones are readable by every key (both stores)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from typing import Any, Final

import httpx
import orjson
import pytest

from storage.influx import InfluxStore
from storage.metadata import StoredField
from storage.sqlite import SqliteStore
from tests.integration.api_world import HP, THE_DAY, YT, World, running_world
from tests.realdata import needs_realdata, realdata
from tests.servers import Influxd

pytestmark = pytest.mark.integration

ROLES: Final = ("farmer_hp00", "farmer_yt02", "coop_hp", "coop_yt", "operator")
STRIP_RING: Final = [
    [179.9999, 21.0714698],
    [-179.9999, 21.0714698],
    [-179.9999, 21.0726416],
    [179.9999, 21.0726416],
    [179.9999, 21.0714698],
]
ZONES: Final = {f"dt-ns-0{i}" for i in range(1, 9)}

#: Each new field gets its own 40 m square, 60 m apart, far from the world's fields.
_SQUARES = itertools.count()


def square(field_id: str, coop: str = HP, owner: str = "nd-hp-00", **props: Any) -> Any:
    n = next(_SQUARES)
    lon, lat = 106.61 + 0.0006 * (n % 40), 21.13 + 0.0006 * (n // 40)
    ring = [[lon, lat], [lon + 0.0004, lat], [lon + 0.0004, lat + 0.0004], [lon, lat + 0.0004]]
    return {
        "type": "Feature",
        "properties": {"id": field_id, "name": "Thửa thử", "owner": owner, "coop": coop, **props},
        "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
    }


def call(world: World, method: str, path: str, who: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(
        method, f"{world.url}/api/v1{path}", headers=world.headers[who], timeout=60, **kwargs
    )


def send(world: World, method: str, path: str, who: str, text: bytes) -> httpx.Response:
    """A body sent as written (JSON escapes such as a lone ``\\ud800`` kept)."""
    headers = {**world.headers[who], "Content-Type": "application/json"}
    return httpx.request(method, f"{world.url}/api/v1{path}", content=text, headers=headers)


def stored(world: World, field_id: str) -> StoredField | None:
    return world.metadata.stored_field(field_id)


def new_field(world: World, field_id: str, **props: Any) -> None:
    response = call(world, "POST", "/fields", "coop_hp", json=square(field_id, **props))
    assert response.status_code == 201, response.text


# --- outlines (finding 1) ------------------------------------------------------------------


def test_a_field_across_the_antimeridian_is_422_and_nothing_is_stored(world: World) -> None:
    strip = {
        "type": "Feature",
        "properties": {"id": "strip", "coop": YT},
        "geometry": {"type": "Polygon", "coordinates": [STRIP_RING]},
    }
    response = call(world, "POST", "/fields", "coop_yt", json=strip)
    assert response.status_code == 422
    (problem,) = response.json()["detail"]["problems"]
    assert problem.startswith("feature 0 (strip): crosses the antimeridian")
    assert stored(world, "strip") is None


def test_a_field_wider_than_the_extent_limit_is_422_naming_extent_and_limit(world: World) -> None:
    wide = square("too-wide")
    lon, lat = wide["geometry"]["coordinates"][0][0]
    ring = [[lon, lat], [lon + 0.105, lat], [lon + 0.105, lat + 0.003], [lon, lat + 0.003]]
    wide["geometry"]["coordinates"] = [[*ring, ring[0]]]
    response = call(world, "POST", "/fields", "coop_hp", json=wide)
    assert response.status_code == 422
    (problem,) = response.json()["detail"]["problems"]
    assert "spans 0.1050° of longitude" in problem
    assert "at most 0.1°" in problem


@pytest.fixture(scope="module", params=["sqlite", "influx"])
def spoiled(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """The world with two Yên Thọ fields stored directly, around validation: the reviewer's
    antimeridian strip and a self-intersecting outline over dt-hp-001."""
    folder = tmp_path_factory.mktemp(f"spoiled-{request.param}")
    if request.param == "sqlite":
        with SqliteStore(folder / "telemetry.db") as sqlite, running_world(sqlite, folder) as w:
            _spoil(w)
            yield w
        return
    influxd: Influxd = request.getfixturevalue("influxd")
    influx = InfluxStore.open(influxd.url, f"spoiled_{uuid.uuid4().hex[:12]}")
    try:
        with running_world(influx, folder) as w:
            _spoil(w)
            yield w
    finally:
        influx.drop_database()
        influx.close()


def _spoil(world: World) -> None:
    strip = {
        "type": "Feature",
        "properties": {"id": "strip", "name": "strip", "coop": YT},
        "geometry": {"type": "Polygon", "coordinates": [STRIP_RING]},
    }
    x0, y0, x1, y1 = 106.4861412, 21.0714698, 106.4872524, 21.0726416  # dt-hp-001's box
    bowtie = {
        "type": "Feature",
        "properties": {"id": "bowtie", "coop": YT},
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[x0, y0], [x1, y1], [x1, y0], [x0, y1], [x0, y0]]],
        },
    }
    world.metadata.save_fields(
        [
            StoredField("strip", "field", YT, "", orjson.dumps(strip).decode()),
            StoredField("bowtie", "field", YT, "", orjson.dumps(bowtie).decode()),
        ]
    )


@pytest.mark.parametrize("field_id", ["dt-hp-001", "dt-hp-004", "dt-hp-002"])
@pytest.mark.parametrize("fmt", ["json", "geojson"])
def test_other_fields_coverage_answers_beside_a_bad_stored_field(
    spoiled: World, field_id: str, fmt: str
) -> None:
    response = call(
        spoiled, "GET", f"/fields/{field_id}/coverage", "coop_hp", params={**THE_DAY, "format": fmt}
    )
    assert response.status_code == 200, response.text
    if fmt == "json" and field_id != "dt-hp-001":
        assert response.json()["flights"]


def test_a_bad_stored_field_is_left_out_of_listings(spoiled: World) -> None:
    listed = {f["id"] for f in call(spoiled, "GET", "/fields", "operator").json()}
    assert "dt-hp-001" in listed
    assert not {"strip", "bowtie"} & listed


@pytest.mark.parametrize("path", ["/fields/strip", "/fields/strip/coverage"])
def test_a_bad_stored_field_answers_its_cooperative_409_saying_why(
    spoiled: World, path: str
) -> None:
    response = call(spoiled, "GET", path, "coop_yt", params=THE_DAY)
    assert response.status_code == 409
    detail = response.json()["detail"]
    assert detail.startswith("field 'strip' (version 1) is stored with an outline that cannot")
    assert "crosses the antimeridian" in detail
    assert "redraws it (PUT) or deletes it (DELETE)" in detail


def test_a_bad_stored_field_stays_hidden_from_who_may_not_see_it(spoiled: World) -> None:
    for path in ("/fields/strip", "/fields/strip/coverage", "/fields/strip/versions"):
        response = call(spoiled, "GET", path, "coop_hp", params=THE_DAY)
        assert (response.status_code, response.json()) == (404, {"detail": "no field 'strip'"})


def test_a_bad_stored_fields_versions_are_listed_without_an_area(spoiled: World) -> None:
    response = call(spoiled, "GET", "/fields/bowtie/versions", "coop_yt")
    assert response.status_code == 200
    (version,) = response.json()
    assert version["field"]["id"] == "bowtie"
    assert version["field"]["area_ha"] == 0.0


# --- property values (finding 5) -----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (b"1180591620717411303424", "property 'extra' is an integer of 71 bits"),
        (b"18446744073709551616", "property 'extra' is an integer of 65 bits"),
        (b'"\\ud800"', "property 'extra' is not valid Unicode"),
    ],
)
def test_a_post_with_an_unstorable_value_is_422_naming_the_property(
    world: World, value: bytes, says: str
) -> None:
    fid = f"v-post-{uuid.uuid4().hex[:8]}"
    body = orjson.dumps(square(fid)).replace(b'"name"', b'"extra":' + value + b',"name"', 1)
    response = send(world, "POST", "/fields", "coop_hp", body)
    assert response.status_code == 422, response.text
    (problem,) = response.json()["detail"]["problems"]
    assert problem.startswith(f"feature 0 ({fid}): {says}")
    assert stored(world, fid) is None


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'{"properties":{"extra":18446744073709551616}}', "property 'extra' is an integer"),
        (b'{"properties":{"name":"\\ud800"}}', "property 'name' is not valid Unicode"),
    ],
)
def test_a_put_with_an_unstorable_value_is_422_and_changes_nothing(
    world: World, body: bytes, says: str
) -> None:
    fid = f"v-put-{uuid.uuid4().hex[:8]}"
    new_field(world, fid)
    before = stored(world, fid)
    response = send(world, "PUT", f"/fields/{fid}", "coop_hp", body)
    assert response.status_code == 422, response.text
    assert says in response.json()["detail"]["problems"][0]
    assert stored(world, fid) == before


def test_the_largest_unsigned_64_bit_integer_is_stored(world: World) -> None:
    fid = f"v-max-{uuid.uuid4().hex[:8]}"
    body = orjson.dumps(square(fid)).replace(b'"name"', b'"extra":18446744073709551615,"name"')
    assert send(world, "POST", "/fields", "coop_hp", body).status_code == 201
    got = call(world, "GET", f"/fields/{fid}", "coop_hp").json()
    assert got["properties"]["extra"] == 2**64 - 1


# --- PUT merge rules (finding 9) -------------------------------------------------------------


@pytest.mark.parametrize("props", [[], "name", 3, True])
def test_put_properties_that_are_not_an_object_are_422(world: World, props: Any) -> None:
    fid = f"m-props-{uuid.uuid4().hex[:8]}"
    new_field(world, fid)
    before = stored(world, fid)
    response = call(world, "PUT", f"/fields/{fid}", "coop_hp", json={"properties": props})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("the Feature's 'properties' must be an object")
    assert stored(world, fid) == before


def test_a_cooperative_turns_its_own_field_into_a_zone_of_its_own_and_back(world: World) -> None:
    fid = f"m-zone-{uuid.uuid4().hex[:8]}"
    new_field(world, fid)
    to_zone = {"properties": {"kind": "no_spray"}}
    assert call(world, "PUT", f"/fields/{fid}", "coop_hp", json=to_zone).status_code == 200
    zone = call(world, "GET", f"/fields/{fid}", "coop_hp").json()["properties"]
    assert (zone["kind"], zone["scope"], zone["coop"]) == ("no_spray", "coop", HP)
    back = {"properties": {"kind": "", "scope": ""}}
    response = call(world, "PUT", f"/fields/{fid}", "coop_hp", json=back)
    assert response.status_code == 200, response.text
    props = call(world, "GET", f"/fields/{fid}", "coop_hp").json()["properties"]
    assert "kind" not in props
    assert "scope" not in props
    assert response.json()["field"]["kind"] == "field"


def test_a_zone_turned_back_with_kind_field_drops_its_scope(world: World) -> None:
    fid = f"m-kind-{uuid.uuid4().hex[:8]}"
    new_field(world, fid, kind="no_spray")
    response = call(
        world, "PUT", f"/fields/{fid}", "coop_hp", json={"properties": {"kind": "field"}}
    )
    assert response.status_code == 200, response.text
    after = stored(world, fid)
    assert after is not None
    assert "scope" not in orjson.loads(after.feature)["properties"]


@pytest.mark.parametrize(
    "props", [{"scope": "commune", "coop": ""}, {"coop": ""}, {"scope": "commune", "coop": None}]
)
def test_a_cooperative_may_not_turn_its_zone_into_a_commune_zone(
    world: World, props: dict[str, Any]
) -> None:
    fid = f"m-comm-{uuid.uuid4().hex[:8]}"
    new_field(world, fid, kind="no_spray")
    before = stored(world, fid)
    response = call(world, "PUT", f"/fields/{fid}", "coop_hp", json={"properties": props})
    assert response.status_code == 403
    assert "scope 'commune' needs an operator key" in response.text
    assert stored(world, fid) == before


def test_an_operator_turns_a_cooperatives_zone_into_a_commune_zone(world: World) -> None:
    fid = f"m-ops-{uuid.uuid4().hex[:8]}"
    new_field(world, fid, kind="no_spray")
    body = {"properties": {"coop": "", "scope": "commune", "owner": ""}}
    response = call(world, "PUT", f"/fields/{fid}", "operator", json=body)
    assert response.status_code == 200, response.text
    got = call(world, "GET", f"/fields/{fid}", "farmer_yt02").json()["properties"]
    assert (got["scope"], got["coop"]) == ("commune", "")


# --- path ids, valid_from, taken ids (finding 10) ------------------------------------------


@pytest.mark.parametrize("bad", ["a.b", "%00", "a%20b", "x" * 65])
@pytest.mark.parametrize("suffix", ["", "/versions", "/coverage"])
@pytest.mark.parametrize("who", ROLES)
def test_a_malformed_field_id_is_422_for_every_key(
    world: World, bad: str, suffix: str, who: str
) -> None:
    response = call(world, "GET", f"/fields/{bad}{suffix}", who, params=THE_DAY)
    assert response.status_code == 422
    assert response.json()["detail"].startswith("path parameter 'field_id'")


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
@pytest.mark.parametrize("who", ["coop_hp", "operator"])
def test_a_malformed_field_id_is_422_for_writes(world: World, method: str, who: str) -> None:
    body = {"properties": {"name": "x"}} if method == "PUT" else None
    response = call(world, method, "/fields/a.b", who, json=body)
    assert response.status_code == 422
    assert "path parameter 'field_id'" in response.json()["detail"]


def test_a_valid_from_in_the_future_is_422_in_rfc3339(world: World) -> None:
    fid = f"t-fut-{uuid.uuid4().hex[:8]}"
    new_field(world, fid)
    body = {"properties": {"name": "x"}, "valid_from": "2999-01-01T00:00:00+07:00"}
    response = call(world, "PUT", f"/fields/{fid}", "coop_hp", json=body)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail.startswith("valid_from: 2999-01-01T00:00:00.000+07:00 is in the future")
    assert " ms" not in detail


def test_a_valid_from_before_the_current_versions_start_is_422_in_rfc3339(world: World) -> None:
    fid = f"t-past-{uuid.uuid4().hex[:8]}"
    new_field(world, fid)
    first = {"properties": {"name": "a"}, "valid_from": "2025-11-28T10:00:00+07:00"}
    assert call(world, "PUT", f"/fields/{fid}", "operator", json=first).status_code == 200
    again = {"properties": {"name": "b"}, "valid_from": "2025-11-28T09:00:00+07:00"}
    response = call(world, "PUT", f"/fields/{fid}", "operator", json=again)
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "valid_from: 2025-11-28T09:00:00.000+07:00 must be after the current version's start "
        "(2025-11-28T10:00:00.000+07:00)"
    )


def test_posting_the_id_of_a_commune_zone_says_it_is_taken_naming_no_owner(world: World) -> None:
    zone = square("dt-ns-01", kind="no_spray")
    response = call(world, "POST", "/fields", "coop_hp", json=zone)
    assert response.status_code == 409
    assert response.json() == {
        "detail": "field id 'dt-ns-01' is already taken; choose another id (nothing was stored)",
        "coded_problems": [
            {
                "index": 0,
                "id": "dt-ns-01",
                "code": "taken",
                "params": {},
                "text": "feature dt-ns-01: the id is already taken",
            }
        ],
    }


def test_posting_another_cooperatives_id_says_it_is_taken_naming_no_owner(world: World) -> None:
    response = call(world, "POST", "/fields", "coop_yt", json=square("dt-hp-004", coop=YT))
    assert response.status_code == 409
    assert response.json()["detail"] == (
        "field id 'dt-hp-004' is already taken; choose another id (nothing was stored)"
    )


# --- commune-wide zones are readable by everyone (finding 11) ----------------------------------


@pytest.mark.parametrize("who", ROLES)
def test_every_key_lists_the_commune_wide_zones(world: World, who: str) -> None:
    listed = {f["id"]: f for f in call(world, "GET", "/fields", who).json()}
    assert set(listed) >= ZONES
    assert all(listed[z]["kind"] == "no_spray" and listed[z]["coop"] == "" for z in ZONES)


@pytest.mark.parametrize("who", ROLES)
def test_every_key_reads_a_commune_wide_zone_and_its_versions(world: World, who: str) -> None:
    one = call(world, "GET", "/fields/dt-ns-01", who)
    assert one.status_code == 200
    assert one.json()["properties"]["scope"] == "commune"
    assert call(world, "GET", "/fields/dt-ns-01/versions", who).status_code == 200


@pytest.mark.parametrize("who", ["farmer_hp00", "coop_hp"])
def test_a_commune_wide_zone_has_no_coverage_of_its_own_for_anyone(world: World, who: str) -> None:
    response = call(world, "GET", "/fields/dt-ns-01/coverage", who, params=THE_DAY)
    assert response.status_code == 422
    assert "is a no-spray zone" in response.json()["detail"]


@pytest.mark.parametrize(
    ("method", "who", "status"),
    [("PUT", "coop_hp", 404), ("DELETE", "coop_yt", 404), ("PUT", "farmer_hp00", 403)],
)
def test_commune_wide_zones_stay_read_only_but_for_operators(
    world: World, method: str, who: str, status: int
) -> None:
    before = stored(world, "dt-ns-02")
    body = {"properties": {"name": "mine"}} if method == "PUT" else None
    response = call(world, method, "/fields/dt-ns-02", who, json=body)
    assert response.status_code == status
    assert stored(world, "dt-ns-02") == before


def test_cooperative_zones_stay_with_their_cooperative(world: World) -> None:
    fid = f"z-coop-{uuid.uuid4().hex[:8]}"
    new_field(world, fid, kind="no_spray")
    assert call(world, "GET", f"/fields/{fid}", "coop_hp").status_code == 200
    for who in ("coop_yt", "farmer_yt02"):
        assert call(world, "GET", f"/fields/{fid}", who).status_code == 404
        listed = {f["id"] for f in call(world, "GET", "/fields", who).json()}
        assert fid not in listed


# --- real dirty input ---------------------------------------------------------------------


@needs_realdata
def test_the_invalid_fields2cover_strips_are_422_with_a_message_per_feature(
    world: World,
) -> None:
    """Fields2Cover's strips file as published (no ids, rings not closed), then with ids and
    closed rings (self-intersecting): refused whole, each feature named, nothing stored."""
    doc = orjson.loads(realdata("fields", "f2c_strips.geojson").read_bytes())
    response = call(world, "POST", "/fields", "coop_hp", json=doc)
    assert response.status_code == 422, response.text
    problems = response.json()["detail"]["problems"]
    for i in range(3):
        assert f"feature {i}: no 'id' property" in problems
        assert any(p.startswith(f"feature {i} outer ring: ring not closed") for p in problems)
    for i, f in enumerate(doc["features"]):
        f["properties"]["id"] = f"f2c-strip-{i}"
        ring = f["geometry"]["coordinates"][0]
        ring.append(ring[0])
    response = call(world, "POST", "/fields", "coop_hp", json=doc)
    assert response.status_code == 422, response.text
    problems = response.json()["detail"]["problems"]
    assert len(problems) == 3
    for i, problem in enumerate(problems):
        assert problem.startswith(f"feature {i} (f2c-strip-{i}): invalid geometry")
        assert "Self-intersection" in problem
        assert stored(world, f"f2c-strip-{i}") is None
