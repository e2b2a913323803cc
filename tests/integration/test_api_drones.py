"""Drones over real HTTP, against SQLite and a real InfluxDB: a cooperative sees its own
drones (list, detail with online/offline, track as GeoJSON), never another's."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.app import create_app
from api.routes.drones import (
    TrackPiece,
    _positions,
    _thin,
    choose_stride,
    track_geojson,
    track_pieces,
)
from api.times import rfc3339
from fields.coverage import GAP_LIMIT_S
from fields.projection import metres_per_degree
from storage.contract import TelemetryStore
from storage.drones import DroneRecord
from storage.keys import Role, generate_key
from storage.metadata import MetadataDB
from storage.records import Event, Sample
from tests.integration.api_server import serving
from tests.integration.conftest import scaled_metadata
from tests.integration.mqtt_helpers import sample_series

pytestmark = pytest.mark.integration

T0 = 1_764_300_000_000  # 2025-11-28T10:20:00+07:00
LAT0, LON0 = 21.08, 106.52
PER_LON, PER_LAT = (float(v) for v in metres_per_degree(LAT0))
WINDOW = {"from": "2025-11-28", "to": "2025-11-29"}


def straight_flight(coop: str, drone: str, n_on: int, n_off: int) -> list[Sample]:
    """Due east at 5 m/s, a sample every 200 ms (1 m apart): spraying, then not."""
    return [
        Sample(
            coop,
            drone,
            T0 + 200 * i,
            lat=LAT0,
            lon=LON0 + i / PER_LON,
            spraying=i < n_on,
            seq=i,
            battery_pct=90.0 - 0.1 * i,
        )
        for i in range(n_on + n_off)
    ]


FLIGHT = straight_flight("htx-a", "dt-01", 10, 10)


@dataclass
class Api:
    """The running API plus a way to mint keys."""

    url: str
    metadata: MetadataDB

    def key(self, role: Role, subject: str) -> dict[str, str]:
        new = generate_key(role, subject, "test", int(time.time() * 1000))
        self.metadata.add_api_key(new.record)
        return {"Authorization": f"Bearer {new.key}"}

    def get(self, path: str, role: Role | None = None, subject: str = "", **params: Any) -> Any:
        headers = self.key(role, subject) if role else {}
        return httpx.get(f"{self.url}{path}", headers=headers, params=params)


@pytest.fixture
def api(store: TelemetryStore, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Api]:
    now = int(time.time() * 1000)
    store.write_samples(FLIGHT + sample_series("htx-b", "dt-09", 3))
    store.write_events(
        [
            Event("htx-a", "dt-01", T0 - 1000, "status", {"state": "online"}),
            Event("htx-a", "dt-01", T0 + 500, "takeoff"),
            Event("htx-a", "dt-01", T0 + 60_000, "status", {"state": "offline"}),
            Event("htx-a", "dt-02", now - 5000, "status", {"state": "online"}),
        ]
    )
    metadata = MetadataDB(scaled_metadata(request, store, tmp_path))
    metadata.add_drone(
        DroneRecord(
            "htx-a", "dt-02", 6.5, now, "$7$101$x$y", mavlink_spray="rc7>1500", dji_sn="SN-2"
        )
    )
    with serving(create_app(store, metadata)) as url:
        yield Api(url, metadata)
    metadata.close()


# --- the list ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "subject", "expected"),
    [
        ("coop", "htx-a", ["dt-01"]),
        ("coop", "htx-b", ["dt-09"]),
        ("operator", "ops", ["dt-01", "dt-09"]),
        ("farmer", "nd-hung", []),
    ],
)
def test_each_role_lists_only_its_drones(
    api: Api, role: Role, subject: str, expected: list[str]
) -> None:
    response = api.get("/api/v1/drones", role, subject)
    assert response.status_code == 200
    assert sorted(d["drone"] for d in response.json()) == expected


def test_the_listed_position_is_the_newest_sample_in_local_time(api: Api) -> None:
    [drone] = api.get("/api/v1/drones", "coop", "htx-a").json()
    assert (drone["lat"], drone["lon"]) == (FLIGHT[-1].lat, FLIGHT[-1].lon)
    assert drone["last_seen"] == "2025-11-28T10:20:03.800+07:00"


# --- who may call what ------------------------------------------------------------------

DRONE = "/api/v1/drones/htx-a/dt-01"
TRACK = f"{DRONE}/track"


@pytest.mark.parametrize(
    ("role", "subject", "status"),
    [
        (None, "", 401),
        ("farmer", "nd-hung", 404),
        ("coop", "htx-b", 404),
        ("coop", "htx-a", 200),
        ("operator", "ops", 200),
    ],
)
@pytest.mark.parametrize("path", [DRONE, TRACK])
def test_role_matrix_of_one_drone(
    api: Api, path: str, role: Role | None, subject: str, status: int
) -> None:
    response = api.get(path, role, subject, **WINDOW)
    assert response.status_code == status, response.text
    if status == 404:
        assert response.json()["detail"].startswith("no drone 'dt-01' in cooperative 'htx-a'")


def test_a_drone_the_caller_may_not_see_answers_like_one_that_does_not_exist(api: Api) -> None:
    hidden = api.get(DRONE, "coop", "htx-b")
    missing = api.get("/api/v1/drones/htx-a/dt-99", "coop", "htx-b")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"].replace("dt-01", "dt-99") == missing.json()["detail"]


# --- detail -----------------------------------------------------------------------------


def test_detail_has_last_position_battery_and_the_last_status(api: Api) -> None:
    body = api.get(DRONE, "coop", "htx-a").json()
    assert (body["lat"], body["lon"]) == (FLIGHT[-1].lat, FLIGHT[-1].lon)
    assert body["battery_pct"] == FLIGHT[-1].battery_pct
    assert body["last_seen"] == rfc3339(FLIGHT[-1].ts_ms)
    assert body["status"] == "offline"
    assert body["status_since"] == rfc3339(T0 + 60_000)
    assert body["registered"] is False
    assert (body["mavlink_spray"], body["dji_sn"], body["dji_spraying"]) == (None, None, None)


def test_a_registered_drone_that_never_flew_shows_its_status_and_no_position(api: Api) -> None:
    body = api.get("/api/v1/drones/htx-a/dt-02", "operator", "ops").json()
    assert body["status"] == "online"
    assert body["registered"] is True
    assert body["swath_m"] == 6.5
    settings = (body["mavlink_spray"], body["dji_sn"], body["dji_spraying"])
    assert settings == ("rc7>1500", "SN-2", False)
    assert (body["last_seen"], body["lat"], body["battery_pct"]) == (None, None, None)


def test_a_drone_that_never_sent_a_status_is_unknown(api: Api) -> None:
    body = api.get("/api/v1/drones/htx-b/dt-09", "coop", "htx-b").json()
    assert (body["status"], body["status_since"]) == ("unknown", None)


def test_an_unknown_drone_of_ones_own_coop_is_404(api: Api) -> None:
    assert api.get("/api/v1/drones/htx-a/dt-77", "coop", "htx-a").status_code == 404
    assert api.get("/api/v1/drones/htx-a/dt-77/track", "coop", "htx-a").status_code == 404


# --- track ------------------------------------------------------------------------------


def test_a_straight_flight_spraying_then_not_is_two_lines(api: Api) -> None:
    body = api.get(TRACK, "coop", "htx-a", **WINDOW).json()
    assert body["type"] == "FeatureCollection"
    spray, dry = body["features"]
    assert spray["geometry"]["type"] == dry["geometry"]["type"] == "LineString"
    assert spray["properties"]["spraying"] is True
    assert dry["properties"]["spraying"] is False
    coords = [[round(s.lon, 7), round(s.lat, 7)] for s in FLIGHT]
    assert spray["geometry"]["coordinates"] == coords[:10]
    assert dry["geometry"]["coordinates"] == coords[9:]
    assert spray["properties"]["start"] == "2025-11-28T10:20:00.000+07:00"
    assert spray["properties"]["end"] == dry["properties"]["start"] == rfc3339(T0 + 1800)
    assert dry["properties"]["end"] == rfc3339(T0 + 3800)
    assert spray["properties"]["length_m"] == pytest.approx(9.0, abs=0.01)
    assert dry["properties"]["length_m"] == pytest.approx(10.0, abs=0.01)
    assert (body["samples"], body["points"], body["downsampled"]) == (20, 21, None)
    assert (body["from"], body["to"]) == (
        "2025-11-28T00:00:00.000+07:00",
        "2025-11-29T00:00:00.000+07:00",
    )


def test_the_track_holds_only_the_window(api: Api) -> None:
    body = api.get(
        TRACK, "coop", "htx-a", **{"from": rfc3339(T0 + 2000), "to": rfc3339(T0 + 2600)}
    ).json()
    [line] = body["features"]
    assert line["properties"]["samples"] == body["samples"] == 3
    assert line["properties"]["spraying"] is False


def test_a_day_without_samples_is_an_empty_collection(api: Api) -> None:
    body = api.get(TRACK, "coop", "htx-a", **{"from": "2025-11-29", "to": "2025-11-30"}).json()
    assert (body["features"], body["samples"]) == ([], 0)


@pytest.fixture
def long_api(store: TelemetryStore, tmp_path: Path) -> Iterator[tuple[Api, list[Sample]]]:
    """30,001 samples (spraying, then not) in one flight, then a second flight hours later."""
    first = straight_flight("htx-a", "dt-01", 15_000, 15_001)
    second = [
        replace(s, ts_ms=s.ts_ms + 10_000_000) for s in straight_flight("htx-a", "dt-01", 0, 500)
    ]
    store.write_samples(first + second)
    metadata = MetadataDB(tmp_path / "m.db")
    with serving(create_app(store, metadata)) as url:
        yield Api(url, metadata), first + second
    metadata.close()


def coordinates(body: dict[str, Any]) -> list[list[float]]:
    return [c for f in body["features"] for c in f["geometry"]["coordinates"]]


def test_a_long_track_is_thinned_in_the_store_keeping_every_flights_ends(
    long_api: tuple[Api, list[Sample]],
) -> None:
    api, flights = long_api
    body = api.get(TRACK, "operator", "ops", **WINDOW).json()
    spray, dry, later = body["features"]
    assert body["samples"] == 30_501
    assert body["max_points"] == 5_000
    assert body["points"] == len(coordinates(body)) <= 5_000
    assert body["downsampled"]["method"] == "store_buckets"
    assert body["downsampled"]["gap_ms"] == GAP_LIMIT_S * 1000
    assert (spray["properties"]["spraying"], dry["properties"]["spraying"]) == (True, False)
    assert spray["geometry"]["coordinates"][0] == [round(flights[0].lon, 7), LAT0]
    assert spray["properties"]["start"] == rfc3339(flights[0].ts_ms)
    assert dry["geometry"]["coordinates"][-1] == [round(flights[30_000].lon, 7), LAT0]
    assert dry["properties"]["end"] == rfc3339(flights[30_000].ts_ms)
    assert later["geometry"]["coordinates"][0] == [round(flights[30_001].lon, 7), LAT0]
    assert later["properties"]["end"] == rfc3339(flights[-1].ts_ms)
    assert spray["geometry"]["coordinates"][-1] == dry["geometry"]["coordinates"][0]
    assert body["truncated"] is False


def test_the_spray_change_is_drawn_within_one_bucket_of_where_it_happened(
    long_api: tuple[Api, list[Sample]],
) -> None:
    api, flights = long_api
    body = api.get(TRACK, "operator", "ops", max_points=200, **WINDOW).json()
    spray, _, _ = body["features"]
    assert body["points"] <= 200
    change_lon = spray["geometry"]["coordinates"][-1][0]
    metres_per_bucket = body["downsampled"]["bucket_ms"] / 200  # 1 m per 200 ms
    assert abs(change_lon - flights[14_999].lon) * PER_LON <= 2 * metres_per_bucket + 1


@pytest.mark.parametrize("max_points", [3, 20_001, -1])
def test_max_points_outside_its_bounds_is_a_clear_422(api: Api, max_points: int) -> None:
    response = api.get(TRACK, "coop", "htx-a", max_points=max_points, **WINDOW)
    assert response.status_code == 422
    assert "max_points" in response.json()["detail"]


def test_a_window_under_max_points_is_every_sample(api: Api) -> None:
    body = api.get(TRACK, "coop", "htx-a", max_points=25, **WINDOW).json()
    assert coordinates(body) == [
        [round(s.lon, 7), round(s.lat, 7)] for s in (*FLIGHT[:10], *FLIGHT[9:])
    ]
    assert (body["samples"], body["downsampled"]) == (20, None)


def test_the_track_is_streamed_as_geojson(api: Api) -> None:
    response = api.get(TRACK, "coop", "htx-a", **WINDOW)
    assert response.headers["content-type"] == "application/geo+json"
    assert "content-length" not in response.headers


# --- track pieces, pure -----------------------------------------------------------------


def test_a_gap_longer_than_the_gap_limit_breaks_the_line() -> None:
    assert GAP_LIMIT_S == 5.0
    ts = [0, 200, 400, 5401, 5600]
    pieces = track_pieces(ts, [LAT0] * 5, [LON0 + i * 1e-5 for i in range(5)], [True] * 5)
    assert [(p.first, p.last, p.spraying) for p in pieces] == [(0, 2, True), (3, 4, True)]


def test_a_jump_longer_than_twenty_metres_breaks_the_line() -> None:
    lon = [LON0, LON0 + 1 / PER_LON, LON0 + 22 / PER_LON, LON0 + 23 / PER_LON]
    pieces = track_pieces([0, 200, 400, 600], [LAT0] * 4, lon, [False] * 4)
    assert [(p.first, p.last) for p in pieces] == [(0, 1), (2, 3)]


def test_a_lone_sample_is_a_point() -> None:
    body = track_geojson(
        [
            Sample("c", "d", 0, LAT0, LON0, spraying=True),
            Sample("c", "d", 10_000, LAT0, LON0, spraying=False),
        ]
    )
    assert [f["geometry"]["type"] for f in body["features"]] == ["Point", "Point"]
    assert [f["properties"]["spraying"] for f in body["features"]] == [True, False]


def test_when_even_line_ends_overflow_the_cap_the_answer_is_cut_and_says_where_to_resume() -> None:
    samples = [Sample("c", "d", 10_000 * i, LAT0, LON0, i % 2 == 0) for i in range(10)]
    body = track_geojson(samples, max_points=4)
    assert len(body["features"]) == 4
    assert body["truncated"] is True
    assert body["next_from"] == rfc3339(40_000)


tracks = st.integers(min_value=1, max_value=60).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(1, 7000), min_size=n, max_size=n),
        st.lists(st.floats(0, 30).filter(lambda m: abs(m - 20) > 1e-6), min_size=n, max_size=n),
        st.lists(st.booleans(), min_size=n, max_size=n),
    )
)


@given(tracks)
@settings(max_examples=200, deadline=None)
def test_every_joined_step_is_drawn_exactly_once_with_its_spray_state(
    track: tuple[list[int], list[float], list[bool]],
) -> None:
    dts, steps, on = track
    ts = np.cumsum(dts)
    lon = LON0 + np.cumsum(steps) / PER_LON
    pieces = track_pieces(ts, np.full(len(ts), LAT0), lon, on)
    drawn = [(i, p.spraying) for p in pieces for i in range(p.first, p.last)]
    joined = [
        i for i in range(len(ts) - 1) if dts[i + 1] <= GAP_LIMIT_S * 1000 and steps[i + 1] < 20
    ]
    assert sorted(i for i, _ in drawn) == joined
    assert all(spraying == (on[i] and on[i + 1]) for i, spraying in drawn)
    covered = {i for p in pieces for i in range(p.first, p.last + 1)}
    assert covered == set(range(len(ts)))


@given(st.lists(st.integers(0, 500), min_size=1, max_size=50), st.integers(2, 2000))
def test_the_chosen_stride_fits_the_cap_and_no_smaller_one_does(sizes: list[int], cap: int) -> None:
    pieces, at = [], 0
    for size in sizes:
        pieces.append(TrackPiece(at, at + size, spraying=True))
        at += size + 1
    stride, fit = choose_stride(pieces, cap)
    used = sum(len(_thin(p, stride)) for p in pieces[:fit])
    assert used == sum(_positions(p, stride) for p in pieces[:fit])
    assert used <= cap
    if fit == len(pieces) and stride > 1:
        assert sum(_positions(p, stride - 1) for p in pieces) > cap
    if fit < len(pieces):
        assert used + (2 if pieces[fit].last > pieces[fit].first else 1) > cap
