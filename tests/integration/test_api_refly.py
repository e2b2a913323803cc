"""A job's re-fly list over real HTTP and the CLI, on both layouts (SQLite telemetry and
metadata; InfluxDB telemetry and PostgreSQL metadata).

The scenario: Hồng Phong's drone d-hp-a flies one job, ``j-r``, naming two fields, and
skips two pass lines on each (the simulator's ``missed-strip`` fault): on the orchard block
dt-hp-023 two strips apart, on the skewed paddy dt-hp-016 two neighbouring lines (one
strip twice as wide). Yên Thọ's drone d-yt-a flies job ``j-y``, which names its own
dt-yt-004 (flown), Hồng Phong's dt-hp-005 (not flown) and a field that does not exist.
The pieces are checked against where the scenario put the gaps: the noise-free flown track
of the simulator, not the engine's answer.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import re
import uuid
from collections.abc import Iterator
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any, Final

import httpx
import numpy as np
import pytest
import shapely
from shapely import affinity
from shapely.geometry import shape

from agridrone.cli import main as run_cli
from fields.registry import load_fields
from fields.synthetic import T0_MS
from simulators.faults import Faults
from simulators.fleet import (
    DroneState,
    FlightConfig,
    Job,
    pass_offsets,
    plan_job,
    run_footprints,
)
from simulators.geo import DEFAULT_FIELDS_PATH, frame_for
from simulators.geo import load_fields as load_sim_fields
from storage.influx import InfluxStore
from storage.records import Event
from storage.sqlite import SqliteStore
from tests.gis_readers import gdal_read, pln_polygon, same_shape, taskdata
from tests.integration.api_world import HP, YT, World, running_world
from tests.servers import Influxd, Postgres

pytestmark = pytest.mark.integration

HP_JOB: Final = f"{HP}.d-hp-a.j-r"
YT_JOB: Final = f"{YT}.d-yt-a.j-y"
#: (field, rng seed, passes skipped) of each of j-r's fields, in the order the job names them.
HP_FIELDS: Final = (("dt-hp-023", 0, 2), ("dt-hp-016", 0, 2))
YT_FIELDS: Final = ("dt-yt-004", "dt-hp-005", "dt-nope")
HOUR_MS: Final = 3_600_000
MIN_M2: Final = 25.0
#: 7 decimals at most in coordinates (RFC 7946 output, about 1 cm).
MORE_THAN_7_DECIMALS: Final = re.compile(r"\d\.\d{8,}")


@cache
def scenario() -> tuple[tuple[Job, ...], tuple[Event, ...]]:
    """The simulated jobs (their own job events dropped) and the job events announcing
    ``j-r`` over both of Hồng Phong's fields and ``j-y`` over Yên Thọ's three."""
    sim = load_sim_fields()
    hp = DroneState(HP, "d-hp-a", T0_MS)
    flown: list[Job] = []
    for field_id, seed, skipped in HP_FIELDS:
        config = FlightConfig(faults=Faults(missed_strips=skipped))
        flown.append(plan_job(sim.by_id(field_id), hp, config, np.random.default_rng(seed)))
        hp.t_ms += HOUR_MS
    yt = DroneState(YT, "d-yt-a", T0_MS)
    flown.append(plan_job(sim.by_id("dt-yt-004"), yt, FlightConfig(), np.random.default_rng(3)))
    jobs = tuple(
        replace(j, events=[e for e in j.events if e.type not in ("job_start", "job_end")])
        for j in flown
    )
    first_hp, last_hp, only_yt = jobs[0], jobs[1], jobs[2]
    events = (
        Event(HP, "d-hp-a", first_hp.samples[0].ts_ms - 1_000, "job_start",
              {"job": "j-r", "fields": [f for f, _, _ in HP_FIELDS]}),
        Event(HP, "d-hp-a", last_hp.end_ms + 1_000, "job_end", {"job": "j-r"}),
        Event(YT, "d-yt-a", only_yt.samples[0].ts_ms - 1_000, "job_start",
              {"job": "j-y", "fields": list(YT_FIELDS)}),
        Event(YT, "d-yt-a", only_yt.end_ms + 1_000, "job_end", {"job": "j-y"}),
    )  # fmt: skip
    return jobs, events


@pytest.fixture(scope="module", params=["sqlite", "influx"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[World, str]]:
    """The API over the scenario's summarized flights; yields it and its metadata URL."""
    folder = tmp_path_factory.mktemp(f"refly-{request.param}")
    jobs, events = scenario()
    if request.param == "sqlite":
        url = str(folder / "agridrone.db")
        with SqliteStore(folder / "telemetry.db") as sqlite:
            sqlite.write_events(list(events))
            with running_world(sqlite, folder, url, planned=jobs) as w:
                yield w, f"sqlite:///{url}"
        return
    influxd: Influxd = request.getfixturevalue("influxd")
    postgres: Postgres = request.getfixturevalue("postgres")
    name = f"refly_{uuid.uuid4().hex[:12]}"
    influx = InfluxStore.open(influxd.url, name)
    url = postgres.create_database(name)
    try:
        influx.write_events(list(events))
        with running_world(influx, folder, url, planned=jobs) as w:
            yield w, url
    finally:
        influx.drop_database()
        influx.close()
        postgres.drop_database(name)


def get(w: World, path: str, who: str | None, **params: Any) -> httpx.Response:
    headers = w.headers[who] if who else {}
    return httpx.get(f"{w.url}{path}", headers=headers, params=params, timeout=60)


def refly(w: World, who: str = "coop_hp", job: str = HP_JOB, **params: Any) -> dict[str, Any]:
    response = get(w, f"/api/v1/jobs/{job}/refly", who, **params)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


# --- where the scenario put the gaps ---------------------------------------------------------


def intended_gaps(job: Job) -> tuple[list[Any], Any]:
    """The missed pieces of at least MIN_M2 the noise-free track left on the job's field
    (in the simulator's local frame of the field), and that frame."""
    registry = load_fields(DEFAULT_FIELDS_PATH)
    frame = frame_for(job.field.geometry)
    local = frame.polygon_to_local(job.field.geometry)
    zones = [frame.polygon_to_local(z.geometry) for z in registry.no_spray]
    near = [z for z in zones if z.intersects(local.buffer(100))]
    target = local.difference(shapely.union_all(near)) if near else local
    missed = target.difference(shapely.union_all(run_footprints(job.truth)))
    return [p for p in shapely.get_parts(missed) if p.area >= MIN_M2], frame


def local_xy(frame: Any, point: dict[str, float]) -> tuple[float, float]:
    x, y = frame.to_local(np.array([point["lon"]]), np.array([point["lat"]]))
    return float(x[0]), float(y[0])


def skipped_lines(job: Job) -> list[float]:
    """Cross-track positions (in the field's frame turned to its main axis) of the pass
    lines the scenario skipped."""
    frame = frame_for(job.field.geometry)
    local = frame.polygon_to_local(job.field.geometry)
    turned = affinity.rotate(local, -job.route.axis_deg, origin=(0, 0))
    _, v0, _, v1 = turned.bounds
    offsets = pass_offsets(v1 - v0, 5.0, 5.0)
    return [v0 + float(offsets[k]) for k in job.route.missed_strips]


def test_the_pieces_are_where_the_scenario_skipped_passes(world: tuple[World, str]) -> None:
    w, _ = world
    answer = refly(w)
    jobs, _ = scenario()
    for job in jobs[:2]:
        fid = job.field.id
        mine = [p for p in answer["pieces"] if p["field_id"] == fid]
        gaps, frame = intended_gaps(job)
        assert len(mine) == len(gaps), (fid, [p["area_m2"] for p in mine], [g.area for g in gaps])
        for gap in gaps:
            [piece] = [
                p
                for p in mine
                if gap.buffer(1.0).contains(shapely.Point(local_xy(frame, p["centroid"])))
            ]
            assert piece["area_m2"] == pytest.approx(gap.area, abs=max(20.0, 0.02 * gap.area))
            # The line runs along the passes (the field's main axis), the strip's length.
            along = (90.0 - job.route.axis_deg) % 180.0  # compass bearing, either way
            assert abs((piece["line"]["heading_deg"] - along + 90.0) % 180.0 - 90.0) < 1.0
            corners = shapely.oriented_envelope(gap).exterior.coords
            long_side = max(math.dist(a, b) for a, b in itertools.pairwise(corners))
            assert piece["line"]["length_m"] == pytest.approx(long_side, abs=1.0)
            start, end = (local_xy(frame, piece["line"][k]) for k in ("start", "end"))
            assert math.dist(start, end) == pytest.approx(piece["line"]["length_m"], abs=0.05)
    # On the block, each strip lies on a skipped pass line, one swath wide.
    block = jobs[0]
    frame = frame_for(block.field.geometry)
    lines = skipped_lines(block)
    assert len(lines) == 2
    assert abs(lines[0] - lines[1]) > 5.0
    for piece in (p for p in answer["pieces"] if p["field_id"] == block.field.id):
        x, y = local_xy(frame, piece["centroid"])
        v = float(affinity.rotate(shapely.Point(x, y), -block.route.axis_deg, origin=(0, 0)).y)
        assert min(abs(v - line) for line in lines) < 0.5
        assert piece["width_m"] == pytest.approx(5.0, abs=0.3)


def test_the_answer_reports_each_named_field_and_the_total(world: tuple[World, str]) -> None:
    w, _ = world
    answer = refly(w)
    assert answer["job"] == HP_JOB
    assert answer["min_m2"] == MIN_M2
    assert [f["field_id"] for f in answer["fields"]] == [f for f, _, _ in HP_FIELDS]
    flights = get(w, "/api/v1/flights", "coop_hp", **{"from": "2025-11-28", "to": "2025-11-29"})
    ours = flights.json()["flights"]
    for report in answer["fields"]:
        mine = [p for p in answer["pieces"] if p["field_id"] == report["field_id"]]
        assert report["listed"] is True
        assert report["pieces"] == len(mine)
        assert report["listed_m2"] == pytest.approx(sum(p["area_m2"] for p in mine), abs=0.2)
        assert report["listed_m2"] <= report["missed_m2"] + 0.1
        assert report["positioning"] == "rtk"
        assert report["uncertain"] is False
        over = [f["id"] for f in ours if report["field_id"] in [x["field_id"] for x in f["fields"]]]
        assert report["flights"] == over
    assert answer["total_m2"] == pytest.approx(sum(p["area_m2"] for p in answer["pieces"]), abs=0.2)


def test_pieces_are_flown_field_by_field_each_from_the_nearest_end(
    world: tuple[World, str],
) -> None:
    w, _ = world
    pieces = refly(w)["pieces"]
    assert [p["order"] for p in pieces] == list(range(1, len(pieces) + 1))
    fields = [p["field_id"] for p in pieces]
    assert fields == sorted(fields, key=[f for f, _, _ in HP_FIELDS].index)
    frame = frame_for(load_sim_fields().by_id("dt-hp-023").geometry)  # one plane: ~2 km apart
    for before, piece in itertools.pairwise(pieces):
        here = local_xy(frame, before["line"]["end"])
        left = [
            p for p in pieces if p["order"] >= piece["order"] and p["field_id"] == piece["field_id"]
        ]
        nearest = min(
            math.dist(here, local_xy(frame, p["line"][k])) for p in left for k in ("start", "end")
        )
        assert math.dist(here, local_xy(frame, piece["line"]["start"])) == pytest.approx(
            nearest, abs=0.01
        )


@pytest.mark.parametrize(("min_m2", "more"), [(10.0, True), (600.0, False)])
def test_min_m2_sets_the_smallest_piece_listed(
    world: tuple[World, str], min_m2: float, more: bool
) -> None:
    w, _ = world
    default = refly(w)["pieces"]
    other = refly(w, min_m2=min_m2)
    assert other["min_m2"] == min_m2
    assert all(p["area_m2"] >= min_m2 for p in other["pieces"])
    if more:  # the skewed paddy leaves a small corner under 25 m² but over 10 m²
        assert len(other["pieces"]) > len(default)
        assert any(min_m2 <= p["area_m2"] < MIN_M2 for p in other["pieces"])
    else:
        kept = sorted(p["area_m2"] for p in default if p["area_m2"] >= min_m2)
        assert sorted(p["area_m2"] for p in other["pieces"]) == kept
        assert len(kept) < len(default)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("0", "greater than 0"),
        ("-5", "greater than 0"),
        ("1000001", "less than or equal to 1000000"),
        ("nan", "min_m2"),
        ("many", "min_m2"),
    ],
)
def test_a_min_m2_out_of_bounds_is_422_naming_the_limit(
    world: tuple[World, str], value: str, words: str
) -> None:
    w, _ = world
    response = get(w, f"/api/v1/jobs/{HP_JOB}/refly", "coop_hp", min_m2=value)
    assert response.status_code == 422
    detail = json.dumps(response.json())
    assert "min_m2" in detail
    assert words in detail


def test_a_bad_format_is_422(world: tuple[World, str]) -> None:
    w, _ = world
    response = get(w, f"/api/v1/jobs/{HP_JOB}/refly", "coop_hp", format="gpx")
    assert response.status_code == 422
    assert "format" in json.dumps(response.json())


# --- who may read it ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "status"),
    [
        (None, 401),
        ("farmer_hp00", 404),
        ("farmer_none", 404),
        ("coop_hp", 200),
        ("coop_yt", 404),
        ("operator", 200),
    ],
)
@pytest.mark.parametrize("fmt", ["json", "geojson", "csv"])
def test_the_list_is_the_job_s_cooperative_s_and_operators_only(
    world: tuple[World, str], who: str | None, status: int, fmt: str
) -> None:
    w, _ = world
    response = get(w, f"/api/v1/jobs/{HP_JOB}/refly", who, format=fmt)
    assert response.status_code == status, response.text
    if status == 404:
        missing = get(w, f"/api/v1/jobs/{HP}.d-hp-a.j-none/refly", who, format=fmt)
        assert missing.status_code == 404
        assert response.json()["detail"].replace("j-r", "X") == missing.json()["detail"].replace(
            "j-none", "X"
        )


def test_a_named_field_of_another_cooperative_not_flown_is_told_like_a_missing_one(
    world: tuple[World, str],
) -> None:
    w, _ = world
    reports = {f["field_id"]: f for f in refly(w, "coop_yt", YT_JOB)["fields"]}
    assert reports["dt-yt-004"]["listed"] is True
    hidden, missing = reports["dt-hp-005"], reports["dt-nope"]
    assert hidden == {**missing, "field_id": "dt-hp-005"}
    assert hidden["listed"] is False
    pieces = refly(w, "coop_yt", YT_JOB)["pieces"]
    assert {p["field_id"] for p in pieces} <= {"dt-yt-004"}


def test_an_operator_gets_a_named_field_not_flown_as_one_whole_piece(
    world: tuple[World, str],
) -> None:
    w, _ = world
    answer = refly(w, "operator", YT_JOB)
    report = next(f for f in answer["fields"] if f["field_id"] == "dt-hp-005")
    assert report["listed"] is True
    assert report["flights"] == []
    [whole] = [p for p in answer["pieces"] if p["field_id"] == "dt-hp-005"]
    field = get(w, "/api/v1/fields/dt-hp-005", "operator").json()
    area_m2 = field["properties"]["area_ha"] * 10_000  # no zone binds it: the target is all
    assert report["field_ha"] * 10_000 == pytest.approx(area_m2, abs=0.1)
    assert whole["area_m2"] == pytest.approx(area_m2, abs=0.1)
    assert report["missed_m2"] == pytest.approx(area_m2, abs=0.1)
    assert next(f for f in answer["fields"] if f["field_id"] == "dt-nope")["listed"] is False


# --- GeoJSON and CSV ------------------------------------------------------------------------------


def test_the_geojson_has_each_piece_and_its_line_in_rfc7946(world: tuple[World, str]) -> None:
    w, _ = world
    pieces = refly(w)["pieces"]
    response = get(w, f"/api/v1/jobs/{HP_JOB}/refly", "coop_hp", format="geojson")
    assert response.headers["content-type"].startswith("application/geo+json")
    doc = response.json()
    assert (doc["type"], doc["job"], doc["min_m2"]) == ("FeatureCollection", HP_JOB, MIN_M2)
    assert len(doc["features"]) == 2 * len(pieces)
    assert not MORE_THAN_7_DECIMALS.search(response.text)
    for f in doc["features"]:
        props = f["properties"]
        piece = pieces[props["order"] - 1]
        assert props["field_id"] == piece["field_id"]
        g = shape(f["geometry"])
        assert g.is_valid
        if props["kind"] == "missed":
            # A hairline tail may hang on by a neck narrower than the 1e-7° grid: a part.
            assert f["geometry"]["type"] in ("Polygon", "MultiPolygon")
            for part in shapely.get_parts(g):
                assert part.exterior.is_ccw
                assert all(not ring.is_ccw for ring in part.interiors)
            assert props["area_m2"] == piece["area_m2"]
            assert g.contains(shapely.Point(piece["centroid"]["lon"], piece["centroid"]["lat"]))
        else:
            assert props["kind"] == "line"
            start, end = f["geometry"]["coordinates"]
            assert start == [piece["line"]["start"]["lon"], piece["line"]["start"]["lat"]]
            assert end == [piece["line"]["end"]["lon"], piece["line"]["end"]["lat"]]


@pytest.mark.parametrize("fmt", ["kml", "shp"])
def test_gis_files_carry_each_piece_and_its_line_s_ends(world: tuple[World, str], fmt: str) -> None:
    w, _ = world
    pieces = refly(w)["pieces"]
    response = get(w, f"/api/v1/jobs/{HP_JOB}/refly", "coop_hp", format=fmt)
    assert response.status_code == 200
    _meta, attributes, geometries = gdal_read(response.content)  # GDAL: an independent reader
    assert len(attributes) == len(pieces)
    for attrs, geometry in zip(attributes, geometries, strict=True):
        piece = pieces[int(attrs["order"]) - 1]
        assert attrs["field_id"] == piece["field_id"]
        assert float(attrs["start_lat"]) == piece["line"]["start"]["lat"]
        assert float(attrs["end_lon"]) == piece["line"]["end"]["lon"]
        assert geometry.contains(shapely.Point(piece["centroid"]["lon"], piece["centroid"]["lat"]))


def test_an_isoxml_file_has_the_pieces_as_treatment_zones_of_their_fields(
    world: tuple[World, str],
) -> None:
    w, _ = world
    pieces = refly(w)["pieces"]
    response = get(w, f"/api/v1/jobs/{HP_JOB}/refly", "coop_hp", format="isoxml")
    assert response.status_code == 200
    root = taskdata(response.content)
    got = {
        pfd.get("B"): shapely.union_all(
            [pln_polygon(pln) for pln in pfd.iter("PLN") if pln.get("A") == "2"]
        )
        for pfd in root.iter("PFD")
    }
    doc = get(w, f"/api/v1/jobs/{HP_JOB}/refly", "coop_hp", format="geojson").json()
    for field_id in {p["field_id"] for p in pieces}:
        missed = [
            shape(f["geometry"])
            for f in doc["features"]
            if f["properties"]["kind"] == "missed" and f["properties"]["field_id"] == field_id
        ]
        assert same_shape(got[field_id], shapely.union_all(missed))


def test_the_csv_opens_in_excel_with_vietnamese_intact(world: tuple[World, str]) -> None:
    w, _ = world
    pieces = refly(w)["pieces"]
    vi = get(w, f"/api/v1/jobs/{HP_JOB}/refly", "coop_hp", format="csv", lang="vi")
    assert vi.headers["content-type"].startswith("text/csv")
    assert vi.content.startswith(b"\xef\xbb\xbf")  # UTF-8 byte-order mark: Excel reads UTF-8
    rows = list(csv.reader(io.StringIO(vi.content.decode("utf-8-sig")), delimiter=";"))
    header, body = rows[0], rows[1:]
    assert len(body) == len(pieces)
    first = dict(zip(header, body[0], strict=True))
    assert first["STT"] == "1"
    assert first["Thửa ruộng"] == "Vườn vải ông Quang — Xứ Đồi Vải"
    assert first["Diện tích sót (m²)"] == f"{pieces[0]['area_m2']:.1f}".replace(".", ",")
    assert first["Vĩ độ điểm đầu"] == f"{pieces[0]['line']['start']['lat']:.7f}".replace(".", ",")
    en = get(w, f"/api/v1/jobs/{HP_JOB}/refly", "coop_hp", format="csv", lang="en")
    header_en, row_en = list(csv.reader(io.StringIO(en.content.decode("utf-8-sig"))))[:2]
    cells = dict(zip(header_en, row_en, strict=True))
    assert cells["Field"] == "Vườn vải ông Quang — Xứ Đồi Vải"
    assert float(cells["Heading (°)"]) == pytest.approx(pieces[0]["line"]["heading_deg"], abs=0.5)
    assert float(cells["End longitude"]) == pieces[0]["line"]["end"]["lon"]


# --- the CLI ------------------------------------------------------------------------------------


def test_the_cli_gives_the_api_s_list(
    world: tuple[World, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    w, url = world
    where = ["--metadata-url", url]
    assert run_cli(["jobs", "refly", HP_JOB, "--format", "json", *where]) == 0
    assert json.loads(capsys.readouterr().out) == refly(w, "operator")
    out = tmp_path / "refly.csv"
    assert run_cli(["jobs", "refly", HP_JOB, "--format", "csv", "-o", str(out), *where]) == 0
    api_csv = get(w, f"/api/v1/jobs/{HP_JOB}/refly", "operator", format="csv").content
    assert out.read_bytes() == api_csv
    assert run_cli(["jobs", "refly", HP_JOB, "--min-m2", "600", *where]) == 0
    text = capsys.readouterr().out
    big = refly(w, "operator", min_m2=600)["pieces"]
    empty = [f for f in refly(w, "operator", min_m2=600)["fields"] if not f.get("pieces")]
    assert text.count("\n") == 1 + len(big) + len(empty)
    assert "Ruộng ông Bình" in text
    assert f"{big[0]['area_m2']:.1f} m²".replace(".", ",") in text  # decimal comma in Vietnamese
    assert f"{big[0]['line']['start']['lat']:.7f},{big[0]['line']['start']['lon']:.7f}" in text
    geo = tmp_path / "refly.geojson"
    assert run_cli(["jobs", "refly", HP_JOB, "--format", "geojson", "-o", str(geo), *where]) == 0
    assert (
        json.loads(geo.read_text())
        == get(w, f"/api/v1/jobs/{HP_JOB}/refly", "operator", format="geojson").json()
    )


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ([f"{HP}.d-hp-a.j-none"], "no job"),
        ([HP_JOB, "--min-m2", "0"], "--min-m2"),
        ([HP_JOB, "--min-m2", "2000000"], "--min-m2"),
    ],
)
def test_the_cli_refuses_an_unknown_job_or_a_bad_min_m2_with_exit_2(
    world: tuple[World, str], capsys: pytest.CaptureFixture[str], args: list[str], words: str
) -> None:
    _, url = world
    assert run_cli(["jobs", "refly", *args, "--metadata-url", url]) == 2
    captured = capsys.readouterr()
    assert words in captured.err
    assert captured.out == ""
