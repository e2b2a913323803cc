"""A flight's track over real HTTP, against both layouts: the stored samples cut into spray-on
and spray-off lines with each position's time, whole for the drone's cooperative, and for a
farmer only over their field and the unregistered ground near it."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import httpx
import numpy as np
import pytest
import shapely

from api.app import create_app
from api.flight_tracks import TRACK_MARGIN_M
from fields.registry import Field, load_fields
from fields.stored import to_stored
from fields.synthetic import T0_MS
from flights.service import rebuild
from simulators.geo import DEFAULT_FIELDS_PATH
from storage.contract import TelemetryStore
from storage.keys import Role, generate_key
from storage.metadata import MetadataDB
from storage.records import Sample
from tests.integration.api_server import serving
from tests.integration.api_world import HP, THE_DAY, World, jobs
from tests.integration.conftest import scaled_metadata

pytestmark = pytest.mark.integration

FIELD: Final = "dt-hp-004"  # nd-hp-00's
NEIGHBOUR: Final = "dt-hp-003"  # nd-hp-06's, west of it


def _fields() -> dict[str, Field]:
    registry = load_fields(DEFAULT_FIELDS_PATH)
    return {f.id: f for f in registry.fields}


def _get(world_url: str, headers: dict[str, str], path: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{world_url}{path}", params=params, headers=headers, timeout=60)


def _track(world: World, who: str, flight_id: str, **params: Any) -> dict[str, Any]:
    answer = _get(world.url, world.headers[who], f"/api/v1/flights/{flight_id}/track", **params)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _positions(body: dict[str, Any]) -> list[tuple[float, float, int]]:
    """(lon, lat, t_ms) of every position drawn, each once, in time order."""
    seen: dict[tuple[float, float, int], None] = {}
    for f in body["features"]:
        g = f["geometry"]
        coords = g["coordinates"] if g["type"] == "LineString" else [g["coordinates"]]
        assert len(coords) == len(f["properties"]["t_ms"])
        for (lon, lat), t in zip(coords, f["properties"]["t_ms"], strict=True):
            seen[(lon, lat, t)] = None
    return sorted(seen, key=lambda p: p[2])


def _flight_over_the_neighbour(world: World) -> dict[str, Any]:
    """Hồng Phong's flight over nd-hp-00's field that also touched nd-hp-06's field."""
    listed = _get(
        world.url, world.headers["operator"], "/api/v1/flights", field=FIELD, coop=HP, **THE_DAY
    ).json()["flights"]
    flight = next(f for f in listed if NEIGHBOUR in {s["field_id"] for s in f["fields"]})
    assert isinstance(flight, dict)
    return flight


def _stored(flight: dict[str, Any]) -> list[Sample]:
    """The samples the world wrote for the flight (the simulator's plan)."""
    return sorted(
        (
            s
            for job in jobs()
            for s in job.samples
            if (s.coop, s.drone) == (flight["coop"], flight["drone"])
            and flight["start_ms"] <= s.ts_ms <= flight["end_ms"]
        ),
        key=lambda s: s.ts_ms,
    )


def _spray_runs(samples: list[Sample], start_ms: int) -> list[tuple[int, int]]:
    """(first, last) time after start of every run of two or more spraying samples."""
    runs = []
    for on, group in itertools.groupby(samples, key=lambda s: s.spraying):
        run = list(group)
        if on and len(run) > 1:
            runs.append((run[0].ts_ms - start_ms, run[-1].ts_ms - start_ms))
    return runs


def test_a_flights_track_is_its_stored_samples_with_spray_on_and_off(world: World) -> None:
    flight = _flight_over_the_neighbour(world)
    samples = _stored(flight)
    steps = np.diff([s.ts_ms for s in samples])
    assert steps.max() <= 1000  # no gap: the lines are cut by the spray state alone
    body = _track(world, "coop_hp", flight["id"])
    assert (body["flight"], body["whole_flight"], body["clipped"]) == (flight["id"], True, None)
    assert body["start_ms"] == flight["start_ms"]
    assert (body["samples"], body["downsampled"]) == (len(samples), None)
    start = flight["start_ms"]
    assert _positions(body) == [
        (round(s.lon, 7), round(s.lat, 7), s.ts_ms - start) for s in samples
    ]
    on = [f["properties"] for f in body["features"] if f["properties"]["spraying"]]
    assert [(p["t_ms"][0], p["t_ms"][-1]) for p in on] == _spray_runs(samples, start)
    assert len(on) >= 2
    off = [f for f in body["features"] if not f["properties"]["spraying"]]
    assert off  # takeoff, turns and the way home
    assert body["points"] == sum(len(f["properties"]["t_ms"]) for f in body["features"])


def test_a_farmer_sees_the_track_over_their_field_never_over_another_members(
    world: World,
) -> None:
    flight = _flight_over_the_neighbour(world)
    fields = _fields()
    mine, theirs = fields[FIELD], fields[NEIGHBOUR]
    body = _track(world, "farmer_hp00", flight["id"])
    assert body["whole_flight"] is False
    assert body["clipped"] == {"fields": [FIELD], "margin_m": TRACK_MARGIN_M}
    shown = {(lon, lat) for lon, lat, _ in _positions(body)}
    stored = [(round(s.lon, 7), round(s.lat, 7)) for s in _stored(flight)]
    over_neighbour = [p for p in stored if theirs.geometry.contains(shapely.Point(p))]
    over_mine = [p for p in stored if mine.geometry.contains(shapely.Point(p))]
    assert over_neighbour  # the drone did fly over nd-hp-06's field
    assert shown.isdisjoint(over_neighbour)
    assert set(over_mine) <= shown
    plane = mine.plane
    for lon, lat in shown:
        x, y = plane.forward(lon, lat)
        assert mine.metric.distance(shapely.Point(float(x), float(y))) <= TRACK_MARGIN_M + 0.01
        assert not any(
            f.geometry.contains(shapely.Point(lon, lat)) for f in fields.values() if f.id != FIELD
        )
    assert body["samples"] == len(_positions(body))


def test_a_thinned_farmers_track_stays_in_the_region_and_within_max_points(
    world: World,
) -> None:
    flight = _flight_over_the_neighbour(world)
    body = _track(world, "farmer_hp00", flight["id"], max_points=60)
    assert body["points"] <= 60
    assert body["downsampled"]["method"] == "store_buckets"
    assert body["samples"] is None
    theirs = _fields()[NEIGHBOUR]
    assert not any(theirs.geometry.contains(shapely.Point(p[:2])) for p in _positions(body))


def test_a_hidden_flights_track_is_the_404_of_an_unknown_one(world: World) -> None:
    flight = _flight_over_the_neighbour(world)
    hidden = _get(world.url, world.headers["farmer_yt02"], f"/api/v1/flights/{flight['id']}/track")
    missing = _get(world.url, world.headers["farmer_yt02"], f"/api/v1/flights/{HP}.d-hp-a.1/track")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"] == missing.json()["detail"].replace(
        f"{HP}.d-hp-a.1", flight["id"]
    )


@pytest.mark.parametrize(
    ("path", "params", "named"),
    [
        ("/api/v1/flights/{id}/track", {"max_points": 3}, "max_points"),
        ("/api/v1/flights/{id}/track", {"max_points": 20_001}, "max_points"),
        ("/api/v1/flights/{id}/track", {"max_points": "many"}, "max_points"),
        ("/api/v1/flights/not-a-flight/track", {}, "flight_id"),
        (f"/api/v1/flights/{HP}.d-hp-a.{'9' * 20}/track", {}, "flight_id"),
    ],
)
def test_bad_input_is_a_422_naming_what_to_fix(
    world: World, path: str, params: dict[str, Any], named: str
) -> None:
    flight = _flight_over_the_neighbour(world)
    answer = _get(
        world.url, world.headers["operator"], path.replace("{id}", flight["id"]), **params
    )
    assert answer.status_code == 422
    assert named in str(answer.json()["detail"])


def test_the_track_is_streamed_as_geojson(world: World) -> None:
    flight = _flight_over_the_neighbour(world)
    answer = _get(world.url, world.headers["farmer_hp00"], f"/api/v1/flights/{flight['id']}/track")
    assert answer.headers["content-type"] == "application/geo+json"
    assert "content-length" not in answer.headers


# --- a long way to the field: the part near it is read again, less thinned ---------------

TRANSIT_M: Final = 600.0
STEP_M: Final = 0.5  # 5 m/s at 10 Hz


def _long_way(field: Field) -> list[Sample]:
    """A drone flying due east along the field's middle, from 600 m west of it to 100 m
    past it, spraying only over the field."""
    centre = field.geometry.centroid
    plane = field.plane
    cx, cy = (float(v) for v in plane.forward(centre.x, centre.y))
    xs = np.arange(cx - TRANSIT_M, cx + 100.0, STEP_M)
    lons, lats = plane.inverse(xs, np.full(len(xs), cy))
    return [
        Sample(
            HP,
            "d-hp-x",
            T0_MS + 100 * i,
            lat=float(lat),
            lon=float(lon),
            spraying=bool(field.geometry.contains(shapely.Point(float(lon), float(lat)))),
            seq=i,
            alt_m=3.0,
            speed_mps=5.0,
            battery_pct=90.0,
            flow_lpm=1.5,
            swath_m=6.5,
            fix="rtk",
        )
        for i, (lon, lat) in enumerate(zip(lons, lats, strict=True))
    ]


@pytest.fixture
def long_way(
    store: TelemetryStore, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[str, dict[str, dict[str, str]], str]]:
    """(API url, headers by role, the flight's id) of the one long flight."""
    registry = load_fields(DEFAULT_FIELDS_PATH)
    metadata = MetadataDB(scaled_metadata(request, store, tmp_path))
    metadata.save_fields(to_stored([*registry.fields, *registry.no_spray]))
    store.write_samples(_long_way(_fields()[FIELD]))
    rebuild(store, metadata, T0_MS - 3_600_000, T0_MS + 3_600_000, now_ms=T0_MS + 86_400_000)
    flight = metadata.latest_flight(HP, "d-hp-x")
    assert flight is not None
    headers = {}
    keys: dict[str, tuple[Role, str]] = {"coop": ("coop", HP), "farmer": ("farmer", "nd-hp-00")}
    for name, (role, subject) in keys.items():
        new = generate_key(role, subject, "test", T0_MS)
        metadata.add_api_key(new.record)
        headers[name] = {"Authorization": f"Bearer {new.key}"}
    with serving(create_app(store, metadata)) as url:
        yield url, headers, flight.id
    metadata.close()


def test_a_farmers_part_of_a_long_flight_is_thinned_less_than_the_whole(
    long_way: tuple[str, dict[str, dict[str, str]], str],
) -> None:
    url, headers, flight_id = long_way
    path = f"/api/v1/flights/{flight_id}/track"
    whole = _get(url, headers["coop"], path, max_points=100).json()
    part = _get(url, headers["farmer"], path, max_points=100).json()
    assert part["clipped"]["fields"] == [FIELD]
    near = _positions(part)
    mine = _fields()[FIELD]
    plane = mine.plane

    def near_field(p: tuple[float, float, int]) -> bool:
        x, y = plane.forward(p[0], p[1])
        return bool(mine.metric.distance(shapely.Point(float(x), float(y))) <= TRACK_MARGIN_M)

    assert all(near_field(p) for p in near)

    def over_field(p: tuple[float, float, int]) -> bool:
        return bool(mine.geometry.contains(shapely.Point(p[0], p[1])))

    assert whole["downsampled"]["method"] == "store_buckets"
    # The part near the field holds under 100 samples: read again, it is every one of them.
    assert part["downsampled"] is None
    over = [p for p in near if over_field(p)]
    stored = [
        (round(s.lon, 7), round(s.lat, 7), s.ts_ms - part["start_ms"]) for s in _long_way(mine)
    ]
    assert over == [p for p in stored if over_field(p)]
    assert len(over) >= 3 * len([p for p in _positions(whole) if over_field(p)])
    assert part["points"] <= 100
    assert any(f["properties"]["spraying"] for f in part["features"])
