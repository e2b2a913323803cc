"""The spray diary, products and jobs over real HTTP, on both layouts (SQLite telemetry and
metadata; InfluxDB telemetry and PostgreSQL metadata): the world's simulated jobs announced
with job ids, products, doses and pilots, summarized into diary entries."""

from __future__ import annotations

import csv
import io
import itertools
import json
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pypdf
import pytest
import shapely
import shapely.geometry

from agridrone.cli import main as run_cli
from fields.projection import LocalPlane
from fields.registry import load_fields
from simulators.geo import DEFAULT_FIELDS_PATH
from storage.drones import DroneRecord
from storage.influx import InfluxStore
from storage.metadata import MetadataDB
from storage.records import Event
from storage.sqlite import SqliteStore
from tests.integration.api_world import HP, THE_DAY, YT, World, jobs, running_world
from tests.servers import Influxd, Postgres

pytestmark = pytest.mark.integration

#: What each of the world's three jobs announces besides its field (api_world.JOBS order).
ANNOUNCED: tuple[dict[str, Any], ...] = (
    {
        "job": "j-0",
        "product": "validan",
        "dose_l_per_ha": 38,  # within 20 % of what the simulator applies (~34 L/ha)
        "pilot_name": "Nguyễn Văn Hưng",
        "pilot_licence": "UAV-HP-07",
        "wind_mps": 2.0,
    },
    {
        "job": "j-1",
        "product": "anvil",
        "dose_l_per_ha": 20,  # the simulator applies ~34 L/ha: a dose fault
        "pilot_name": "Trần Văn Bình",
        "drone_registration": "VN-UAV-YT01",
        "wind_mps": 5.0,  # above 3.4 m/s: a wind fault
    },
    {"job": "j-2", "product": "no-such-product", "dose_l_per_ha": 900},
)
HP_JOB = f"{HP}.d-hp-a.j-0"
YT_JOB2 = f"{YT}.d-yt-a.j-2"


def announce(store: Any) -> None:
    """A job_start with the job's id and details 1 ms after the simulator's own."""
    for job, extra in zip(jobs(), ANNOUNCED, strict=True):
        [start] = [e for e in job.events if e.type == "job_start"]
        store.write_events([replace(start, ts_ms=start.ts_ms + 1, attrs={**start.attrs, **extra})])
    end = next(e for e in jobs()[0].events if e.type == "job_end")
    store.write_events([Event(HP, "d-hp-a", end.ts_ms + 1, "job_end", {"job": "j-0"})])


def prepare(url: str) -> None:
    """Hồng Phong's drone registered with its registration number (the world's products are
    api_world.PRODUCTS)."""
    metadata = MetadataDB(url)
    try:
        metadata.add_drone(
            DroneRecord(HP, "d-hp-a", None, 1, "$7$101$x$y", registration="VN-UAV-HP01")
        )
    finally:
        metadata.close()


@pytest.fixture(scope="module", params=["sqlite", "influx"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[World, str]]:
    """The API world with announced jobs; yields it and its metadata URL (for the CLI)."""
    folder = tmp_path_factory.mktemp(f"diary-{request.param}")
    if request.param == "sqlite":
        url = str(folder / "agridrone.db")
        prepare(url)
        with SqliteStore(folder / "telemetry.db") as sqlite:
            announce(sqlite)
            with running_world(sqlite, folder, url) as w:
                yield w, url
        return
    influxd: Influxd = request.getfixturevalue("influxd")
    postgres: Postgres = request.getfixturevalue("postgres")
    name = f"diary_{uuid.uuid4().hex[:12]}"
    influx = InfluxStore.open(influxd.url, name)
    url = postgres.create_database(name)
    try:
        prepare(url)
        announce(influx)
        with running_world(influx, folder, url) as w:
            yield w, url
    finally:
        influx.drop_database()
        influx.close()
        postgres.drop_database(name)


def get(w: World, path: str, who: str | None, **params: Any) -> httpx.Response:
    headers = w.headers[who] if who else {}
    return httpx.get(f"{w.url}{path}", headers=headers, params=params, timeout=60)


def send(w: World, method: str, path: str, who: str, body: Any) -> httpx.Response:
    return httpx.request(method, f"{w.url}{path}", headers=w.headers[who], json=body, timeout=60)


def local_date_of(rfc3339: str) -> date:
    return datetime.fromisoformat(rfc3339).date()


# --- every column ---------------------------------------------------------------------------


def test_the_entry_of_a_job_has_every_column(world: tuple[World, str]) -> None:
    w, _ = world
    answer = get(w, "/api/v1/fields/dt-hp-004/diary", "farmer_hp00").json()
    [entry] = answer["entries"]
    flights = get(w, "/api/v1/flights", "coop_hp", field="dt-hp-004", **THE_DAY).json()["flights"]
    ours = [f for f in flights if f["drone"] == "d-hp-a"]
    assert len(ours) >= 2  # the small tank forces refills: one job, several flights
    assert entry["flights"] == [f["id"] for f in ours]
    assert entry["job"] == HP_JOB
    assert entry["job_closed"] is True
    first_start = datetime.fromisoformat(ours[0]["start"])
    last_end = datetime.fromisoformat(ours[-1]["end"])
    assert entry["date"] == first_start.date().isoformat()
    assert datetime.fromisoformat(entry["start"]) == first_start.replace(microsecond=0)
    assert datetime.fromisoformat(entry["end"]) == last_end.replace(microsecond=0)
    assert entry["start"].endswith("+07:00")
    assert (entry["coop"], entry["coop_name"]) == (HP, "HTX Hồng Phong")
    assert (entry["drone"], entry["drone_registration"]) == ("d-hp-a", "VN-UAV-HP01")
    assert (entry["pilot_name"], entry["pilot_licence"]) == ("Nguyễn Văn Hưng", "UAV-HP-07")
    assert entry["product"] == {
        "id": "validan",
        "trade_name": "Validan 5SL",
        "active_ingredient": "Validamycin",
        "concentration": "5% SL",
        "registration_no": "VN-1234/BVTV",
        "target": "Bệnh khô vằn",
        "recommended_dose_l_per_ha": 16.0,
        "phi_days": 7,
    }
    assert entry["planned_dose_l_per_ha"] == 38.0
    assert entry["wind_mps"] == 2.0
    # Area, coverage and litres are the coverage engine's for the job's flights together.
    cov = get(w, "/api/v1/fields/dt-hp-004/coverage", "coop_hp", **THE_DAY).json()
    assert [f["id"] for f in cov["flights"]] == entry["flights"]
    metrics = cov["coverage"]
    assert entry["sprayed_ha"] == pytest.approx(metrics["covered_ha"], abs=1e-6)
    assert entry["sprayed_sao"] == pytest.approx(metrics["covered_ha"] * 10_000 / 360, abs=1e-3)
    assert entry["coverage_pct"] == pytest.approx(metrics["coverage_pct"], abs=0.01)
    assert entry["applied_l"] == pytest.approx(metrics["applied_l"], abs=1e-3)
    # Applied L/ha: the litres that landed on the field over the area sprayed (the coverage
    # engine's dose raster), within 1 %; and within 5 % of a raster-free estimate from the
    # raw samples: litres flown while the track was over the field, over the same area (at
    # the field's edges half a swath lands on one side of the track, hence the margin).
    assert entry["applied_l_per_ha"] == pytest.approx(metrics["mean_rate_l_per_ha"], rel=0.01)
    assert entry["applied_l_on_field"] == pytest.approx(
        metrics["mean_rate_l_per_ha"] * metrics["covered_ha"], rel=0.01
    )
    outline = next(f for f in load_fields(DEFAULT_FIELDS_PATH).fields if f.id == "dt-hp-004")
    track = sorted(jobs()[0].samples, key=lambda s: s.ts_ms)
    over_field = sum(
        (a.flow_lpm or 0.0) * (b.ts_ms - a.ts_ms) / 60_000
        for a, b in itertools.pairwise(track)
        if a.spraying
        and b.spraying
        and outline.geometry.contains(shapely.Point((a.lon + b.lon) / 2, (a.lat + b.lat) / 2))
    )
    assert entry["applied_l_per_ha"] == pytest.approx(over_field / entry["sprayed_ha"], rel=0.05)
    # ... and of what the flights' own summaries say they sprayed, most of it on this field.
    flown = sum(
        s["applied_l"]
        for f in ours
        for s in get(w, f"/api/v1/flights/{f['id']}", "coop_hp").json()["fields"]
        if s["field_id"] == "dt-hp-004"
    )
    assert entry["applied_l"] == pytest.approx(flown, rel=0.01)
    # PHI and the safe-harvest date: the local date of the last flight's end + 7 days.
    assert entry["phi_days"] == 7
    assert entry["safe_harvest_date"] == (local_date_of(ours[-1]["end"]) + timedelta(7)).isoformat()
    # Flags: the simulator sprays up to the canal's edge and past the field's ends; the
    # dose and the wind are within limits.
    assert {f["code"] for f in entry["flags"]} == {"no_spray_buffer", "off_target"}
    [off] = [f for f in entry["flags"] if f["code"] == "off_target"]
    assert off["area_m2"] == pytest.approx(metrics["off_target_ha"] * 10_000, abs=0.1)
    assert cov["flags"] == [
        {**f, "entry": HP_JOB, "job": HP_JOB, "date": entry["date"]} for f in entry["flags"]
    ]
    assert entry["version"] == 1
    assert entry["superseded"] is False
    assert answer["field"]["owner_name"] == "Nguyễn Văn Hưng"
    assert answer["chain_head"] == entry["entry_hash"]


def test_a_hired_drone_s_job_names_its_own_registration_and_product(
    world: tuple[World, str],
) -> None:
    w, _ = world
    entries = get(w, "/api/v1/fields/dt-hp-002/diary", "coop_hp").json()["entries"]
    [entry] = [e for e in entries if e["job"] == f"{YT}.d-yt-a.j-1"]
    assert entry["coop_name"] == "HTX Yên Thọ"
    assert entry["drone_registration"] == "VN-UAV-YT01"
    assert entry["product"]["trade_name"] == "Anvil 5SC"
    assert entry["phi_days"] == 14
    assert entry["safe_harvest_date"] == (local_date_of(entry["end"]) + timedelta(14)).isoformat()


# --- who may read it ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "status"),
    [
        (None, 401),
        ("farmer_hp00", 200),
        ("farmer_hp01", 404),
        ("farmer_none", 404),
        ("coop_hp", 200),
        ("coop_yt", 404),
        ("operator", 200),
    ],
)
@pytest.mark.parametrize("fmt", ["json", "csv", "pdf"])
def test_the_diary_is_the_field_s_farmer_s_cooperative_s_and_operators_only(
    world: tuple[World, str], who: str | None, status: int, fmt: str
) -> None:
    w, _ = world
    response = get(w, "/api/v1/fields/dt-hp-004/diary", who, format=fmt)
    assert response.status_code == status, response.text
    if status == 404:
        missing = get(w, "/api/v1/fields/no-such-field/diary", who, format=fmt)
        assert missing.status_code == 404
        assert response.json()["detail"].replace("dt-hp-004", "X") == missing.json()[
            "detail"
        ].replace("no-such-field", "X")


# --- CSV and PDF ----------------------------------------------------------------------------


def test_the_csv_opens_in_excel_with_vietnamese_intact(world: tuple[World, str]) -> None:
    w, _ = world
    vi = get(w, "/api/v1/fields/dt-hp-004/diary", "farmer_hp00", format="csv", lang="vi")
    assert vi.status_code == 200
    assert vi.headers["content-type"].startswith("text/csv")
    assert vi.content.startswith(b"\xef\xbb\xbf")  # UTF-8 byte-order mark: Excel reads UTF-8
    rows = list(csv.reader(io.StringIO(vi.content.decode("utf-8-sig")), delimiter=";"))
    header, [row] = rows[0], rows[1:]
    cells = dict(zip(header, row, strict=True))
    entry = get(w, "/api/v1/fields/dt-hp-004/diary", "farmer_hp00").json()["entries"][0]
    assert cells["Người lái"] == "Nguyễn Văn Hưng"
    assert cells["Đối tượng phòng trừ"] == "Bệnh khô vằn"
    assert cells["Tên thuốc"] == "Validan 5SL"
    y, m, d = entry["safe_harvest_date"].split("-")
    assert cells["Ngày thu hoạch an toàn"] == f"{d}/{m}/{y}"
    assert cells["Liều thực tế (L/ha)"] == f"{entry['applied_l_per_ha']:.1f}".replace(".", ",")
    assert cells["Mã băm"] == entry["entry_hash"]
    en = get(w, "/api/v1/fields/dt-hp-004/diary", "farmer_hp00", format="csv", lang="en")
    header_en, row_en = list(csv.reader(io.StringIO(en.content.decode("utf-8-sig"))))[:2]
    cells_en = dict(zip(header_en, row_en, strict=True))
    assert cells_en["Safe-harvest date"] == entry["safe_harvest_date"]
    assert cells_en["Pilot"] == "Nguyễn Văn Hưng"


def test_the_pdf_has_one_page_per_season_and_its_text_keeps_the_diacritics(
    world: tuple[World, str],
) -> None:
    w, _ = world
    response = get(w, "/api/v1/fields/dt-hp-004/diary", "farmer_hp00", format="pdf")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    reader = pypdf.PdfReader(io.BytesIO(response.content))
    assert len(reader.pages) == 1  # one season (Vụ Đông 2025), few entries
    text = reader.pages[0].extract_text()
    for words in (
        "NHẬT KÝ PHUN THUỐC BẢO VỆ THỰC VẬT",
        "Vụ Đông 2025",
        "Ruộng ông Hùng",
        "Nguyễn Văn Hưng",
        "Bệnh khô vằn",
        "HTX Hồng Phong",
        "Validan 5SL",
    ):
        assert words in text, words
    fonts = pdf_fonts(reader)
    assert any("DejaVuSans" in str(f.get("/BaseFont")) for f in fonts), fonts
    embedded = [f["/FontDescriptor"].get_object() for f in fonts if "/FontDescriptor" in f]
    assert any("/FontFile2" in d for d in embedded)  # the TrueType font travels with it


def pdf_fonts(reader: pypdf.PdfReader) -> list[Any]:
    """Every font dictionary of the PDF's pages (composite fonts with their descendants)."""
    found: list[Any] = []
    for page in reader.pages:
        resources: Any = page["/Resources"]
        for ref in resources["/Font"].values():
            font: Any = ref.get_object()
            found += [font, *(d.get_object() for d in font.get("/DescendantFonts", []))]
    return found


# --- products -------------------------------------------------------------------------------

NEW = {
    "trade_name": "Regent 800WG",
    "active_ingredient": "Fipronil",
    "concentration": "800 g/kg",
    "registration_no": "VN-9999/BVTV",
    "target": "Sâu đục thân",
    "dose_l_per_ha": 15,
    "phi_days": 10,
}


def test_products_belong_to_a_cooperative(world: tuple[World, str]) -> None:
    w, _ = world
    pid = f"regent-{uuid.uuid4().hex[:6]}"
    made = send(w, "POST", "/api/v1/products", "coop_hp", {"id": pid, **NEW})
    assert made.status_code == 201, made.text
    assert made.json()["coop"] == HP
    assert send(w, "POST", "/api/v1/products", "coop_hp", {"id": pid, **NEW}).status_code == 409
    assert send(w, "POST", "/api/v1/products", "farmer_hp00", {"id": pid, **NEW}).status_code == 403
    path = f"/api/v1/products/{HP}/{pid}"
    assert get(w, path, "coop_hp").json()["target"] == "Sâu đục thân"
    assert get(w, path, "operator").status_code == 200
    hidden = get(w, path, "coop_yt")
    missing = get(w, f"/api/v1/products/{HP}/no-such", "coop_yt")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"].replace(pid, "X") == missing.json()["detail"].replace(
        "no-such", "X"
    )
    assert get(w, path, "farmer_hp00").status_code == 404
    assert pid not in [p["id"] for p in get(w, "/api/v1/products", "coop_yt").json()]
    assert pid in [p["id"] for p in get(w, "/api/v1/products", "coop_hp").json()]
    assert get(w, "/api/v1/products", "farmer_hp00").json() == []
    changed = {**NEW, "phi_days": 12}
    assert send(w, "PUT", path, "coop_yt", changed).status_code == 404
    assert get(w, path, "coop_hp").json()["phi_days"] == 10
    assert send(w, "PUT", path, "coop_hp", changed).json()["phi_days"] == 12


@pytest.mark.parametrize(
    ("body", "who", "words"),
    [
        ({k: v for k, v in NEW.items() if k != "phi_days"}, "coop_hp", "phi_days"),
        ({**NEW, "dose_l_per_ha": 600}, "coop_hp", "dose_l_per_ha"),
        ({**NEW, "dose_l_per_ha": 0}, "coop_hp", "dose_l_per_ha"),
        ({**NEW, "trade_name": ""}, "coop_hp", "trade_name"),
        ({**NEW, "id": "bad id"}, "coop_hp", "id"),
        (NEW, "operator", "coop"),
    ],
)
def test_a_bad_product_is_refused_naming_what_to_fix_and_nothing_is_stored(
    world: tuple[World, str], body: dict[str, Any], who: str, words: str
) -> None:
    w, _ = world
    before = get(w, "/api/v1/products", "operator").json()
    response = send(w, "POST", "/api/v1/products", who, {"id": "p-bad", **body})
    assert response.status_code == 422
    assert words in response.json()["detail"]
    assert get(w, "/api/v1/products", "operator").json() == before


# --- jobs -----------------------------------------------------------------------------------


def test_a_job_with_an_unknown_product_and_a_bad_dose_is_kept_with_flags(
    world: tuple[World, str],
) -> None:
    w, _ = world
    job = get(w, f"/api/v1/jobs/{YT_JOB2}", "coop_yt").json()
    assert job["fields"] == ["dt-yt-004"]
    assert job["details"] == {"product": "no-such-product"}
    assert {p["code"] for p in job["problems"]} == {"bad_dose_l_per_ha", "unknown_product"}
    for who in ("coop_hp", "farmer_yt02"):
        assert get(w, f"/api/v1/jobs/{YT_JOB2}", who).status_code == 404
    assert get(w, "/api/v1/jobs", "farmer_yt02", **THE_DAY).status_code == 403
    listed = [j["id"] for j in get(w, "/api/v1/jobs", "coop_yt", **THE_DAY).json()]
    assert listed == [f"{YT}.d-yt-a.j-1", YT_JOB2]
    assert len(get(w, "/api/v1/jobs", "operator", **THE_DAY).json()) == 3


def test_a_refused_job_change_stores_nothing(world: tuple[World, str]) -> None:
    w, _ = world
    path = f"/api/v1/jobs/{HP_JOB}"
    before = get(w, path, "coop_hp").json()
    diary = get(w, "/api/v1/fields/dt-hp-004/diary", "coop_hp", history=True).json()
    for who, body, status in (
        ("coop_yt", {"pilot_name": "X"}, 404),
        ("farmer_hp00", {"pilot_name": "X"}, 404),
        ("coop_hp", {"dose_l_per_ha": 600}, 422),
        ("coop_hp", {"product": "anvil"}, 422),  # Yên Thọ's product, not Hồng Phong's
        ("coop_hp", {"pilot_name": "x" * 201}, 422),
        ("coop_hp", {"colour": "red"}, 422),
    ):
        response = send(w, "PUT", path, who, body)
        assert response.status_code == status, (who, body, response.text)
    assert get(w, path, "coop_hp").json() == before
    assert get(w, "/api/v1/fields/dt-hp-004/diary", "coop_hp", history=True).json() == diary


def test_correcting_a_job_writes_a_new_version_that_supersedes_the_old(
    world: tuple[World, str],
) -> None:
    w, _ = world
    diary = "/api/v1/fields/dt-yt-004/diary"
    [old] = get(w, diary, "farmer_yt02").json()["entries"]
    assert old["job"] == YT_JOB2
    assert {f["code"] for f in old["flags"]} >= {"unknown_product", "bad_dose_l_per_ha"}
    assert old["safe_harvest_date"] is None
    put = send(
        w, "PUT", f"/api/v1/jobs/{YT_JOB2}", "coop_yt", {"product": "anvil", "dose_l_per_ha": 35}
    )
    assert put.status_code == 200, put.text
    assert put.json()["problems"] == []
    [new] = get(w, diary, "farmer_yt02").json()["entries"]
    assert new["version"] == 2
    assert new["supersedes"] == old["entry_hash"]
    assert (
        new["prev_hash"]
        == get(w, diary, "coop_yt", history=True).json()["entries"][-2]["entry_hash"]
    )
    assert new["product"]["trade_name"] == "Anvil 5SC"
    assert new["planned_dose_l_per_ha"] == 35.0
    codes = {f["code"] for f in new["flags"]}
    assert not codes & {"unknown_product", "bad_dose_l_per_ha", "dose_deviation"}, codes
    assert new["safe_harvest_date"] == (local_date_of(new["end"]) + timedelta(14)).isoformat()
    every = get(w, diary, "coop_yt", history=True).json()["entries"]
    assert [(e["version"], e["superseded"]) for e in every] == [(1, True), (2, False)]
    # Setting the same again writes nothing; removing the correction goes back.
    send(w, "PUT", f"/api/v1/jobs/{YT_JOB2}", "coop_yt", {"product": "anvil"})
    assert len(get(w, diary, "coop_yt", history=True).json()["entries"]) == 2


def test_the_cli_shows_the_diary_and_verify_names_a_changed_row(
    world: tuple[World, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    w, url = world
    where = ["--metadata-url", url if "://" in url else f"sqlite:///{url}"]
    assert run_cli(["diary", "dt-hp-004", "--format", "json", *where]) == 0
    shown = json.loads(capsys.readouterr().out)
    api = get(w, "/api/v1/fields/dt-hp-004/diary", "operator").json()
    assert [e["entry_hash"] for e in shown["entries"]] == [e["entry_hash"] for e in api["entries"]]
    out = tmp_path / "diary.csv"
    assert run_cli(["diary", "dt-hp-004", "--format", "csv", "-o", str(out), *where]) == 0
    assert (
        out.read_bytes()
        == get(w, "/api/v1/fields/dt-hp-004/diary", "operator", format="csv").content
    )
    assert run_cli(["diary", "no-such-field", *where]) == 2
    capsys.readouterr()
    assert run_cli(["diary", "verify", *where]) == 0
    assert "BROKEN" not in capsys.readouterr().out
    [row] = w.metadata.diary_rows("dt-hp-002")[:1]
    tampered = row.content.replace('"sprayed_ha":', '"sprayed_ha":1', 1)
    assert tampered != row.content
    with w.metadata._write() as tx:
        tx.execute(
            "UPDATE diary_entries SET content = ? WHERE field_id = ? AND n = ?",
            (tampered, row.field_id, row.n),
        )
    try:
        assert run_cli(["diary", "verify", *where]) == 1
        out_text = capsys.readouterr().out
        assert f"BROKEN field dt-hp-002: entry {row.n} ({row.entry_key})" in out_text
        assert "content" in out_text
        assert out_text.count("BROKEN") == 1
    finally:
        with w.metadata._write() as tx:
            tx.execute(
                "UPDATE diary_entries SET content = ? WHERE field_id = ? AND n = ?",
                (row.content, row.field_id, row.n),
            )
    assert run_cli(["diary", "verify", *where]) == 0


def _every_entry(w: World) -> list[dict[str, Any]]:
    fields = get(w, "/api/v1/fields", "operator").json()
    out: list[dict[str, Any]] = []
    for f in fields:
        if f.get("kind", "field") == "field":
            out += get(w, f"/api/v1/fields/{f['id']}/diary", "operator").json()["entries"]
    return out


def test_flags_are_raised_where_the_scenario_put_the_faults(world: tuple[World, str]) -> None:
    w, _ = world
    registry = load_fields(DEFAULT_FIELDS_PATH)
    by_id = {f.id: f for f in registry.fields}
    zones = shapely.union_all([z.geometry for z in registry.no_spray])
    entries = _every_entry(w)
    named = {HP_JOB: "dt-hp-004", f"{YT}.d-yt-a.j-1": "dt-hp-002", YT_JOB2: "dt-yt-004"}
    for e in entries:
        codes = [f["code"] for f in e["flags"]]
        field = by_id[e["field_id"]]
        plane = LocalPlane.around(*field.geometry.centroid.coords[0])
        # The job's dose and wind faults are on every field it sprayed, placed on the field.
        dose_fault = e["job"] == f"{YT}.d-yt-a.j-1"
        assert ("wind" in codes) == dose_fault, (e["field_id"], codes)
        applied, planned = e["applied_l_per_ha"], e["planned_dose_l_per_ha"]
        if isinstance(planned, float):
            assert ("dose_deviation" in codes) == (abs(applied - planned) / planned > 0.2)
        # Spray on a field the job did not name, beyond 25 m², and only there.
        strayed = e["field_id"] != named[e["job"]] and e["sprayed_ha"] * 10_000 > 25
        assert ("not_job_field" in codes) == strayed, (e["field_id"], e["job"], codes)
        for f in e["flags"]:
            if f["where"] is None:
                continue
            where = plane.to_plane(shapely.geometry.shape(f["where"]))
            if f["code"] == "no_spray_buffer":
                # Every bit of it lies within 15 m of a zone (the canals and fish ponds).
                buffered = shapely.buffer(plane.to_plane(zones), 15.05)
                assert shapely.difference(where, buffered).area < 0.01
                assert where.area == pytest.approx(f["area_m2"], rel=0.01, abs=0.5)
            elif f["code"] != "off_target":
                # Dose, wind, stray and PHI faults are placed on the field itself.
                inside = shapely.buffer(plane.to_plane(field.geometry), 0.05)
                assert shapely.difference(where, inside).area < 0.01
    # Two jobs sprayed dt-hp-003 the same morning: the later one is within the earlier
    # product's PHI.
    both = sorted((e for e in entries if e["field_id"] == "dt-hp-003"), key=lambda e: e["start"])
    assert len(both) == 2
    assert "phi_conflict" not in [f["code"] for f in both[0]["flags"]]
    [conflict] = [f for f in both[1]["flags"] if f["code"] == "phi_conflict"]
    assert conflict["previous_entry"] == both[0]["entry"]
    assert conflict["safe_harvest_date"] == both[0]["safe_harvest_date"]
    assert both[0]["product"]["trade_name"] in conflict["message_vi"]
    y, m, d = both[0]["safe_harvest_date"].split("-")
    assert f"{d}/{m}/{y}" in conflict["message_vi"]
    assert both[0]["safe_harvest_date"] in conflict["message_en"]


@pytest.mark.parametrize(
    ("query", "entries"),
    [
        (THE_DAY, 1),
        ({"from": "2025-11-29"}, 0),
        ({"to": "2025-11-28"}, 0),
        ({"from": "2025-11-28T00:00:00+07:00", "to": "2025-11-28T23:59:59+07:00"}, 1),
    ],
)
def test_from_and_to_select_jobs_by_when_they_started(
    world: tuple[World, str], query: dict[str, str], entries: int
) -> None:
    w, _ = world
    answer = get(w, "/api/v1/fields/dt-hp-004/diary", "farmer_hp00", **query)
    assert answer.status_code == 200
    assert len(answer.json()["entries"]) == entries


@pytest.mark.parametrize(
    "query",
    [{"from": "yesterday"}, {"from": "2025-11-29", "to": "2025-11-28"}, {"format": "xlsx"}],
)
def test_a_bad_window_or_format_is_422(world: tuple[World, str], query: dict[str, str]) -> None:
    w, _ = world
    answer = get(w, "/api/v1/fields/dt-hp-004/diary", "farmer_hp00", **query)
    assert answer.status_code == 422
    assert answer.json()["detail"]


def test_an_operator_may_correct_any_job_and_an_unchanged_detail_writes_no_entry(
    world: tuple[World, str],
) -> None:
    w, _ = world
    path = f"/api/v1/jobs/{HP_JOB}"
    diary = get(w, "/api/v1/fields/dt-hp-004/diary", "operator", history=True).json()
    response = send(w, "PUT", path, "operator", {"pilot_name": "Nguyễn Văn Hưng"})
    assert response.status_code == 200, response.text
    assert response.json()["overrides"] == {"pilot_name": "Nguyễn Văn Hưng"}
    assert get(w, "/api/v1/fields/dt-hp-004/diary", "operator", history=True).json() == diary
    cleared = send(w, "PUT", path, "coop_hp", {"pilot_name": None})
    assert cleared.json()["overrides"] == {}
    assert cleared.json()["details"]["pilot_name"] == "Nguyễn Văn Hưng"  # as announced


# --- flags per flight -----------------------------------------------------------------------


def _instant(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def _own_spray(w: World, field_id: str, flight: dict[str, Any]) -> Any:
    """Where one flight alone sprayed around a field (the coverage of a window holding only
    its start): covered, off-target and no-spray ground, in WGS84."""
    window = {"from": _instant(flight["start_ms"]), "to": _instant(flight["start_ms"] + 1)}
    geo = get(w, f"/api/v1/fields/{field_id}/coverage", "operator", format="geojson", **window)
    kinds = ("covered", "off_target", "no_spray")
    shapes = [
        shapely.geometry.shape(f["geometry"])
        for f in geo.json()["features"]
        if f["properties"]["kind"] in kinds
    ]
    return shapely.union_all(shapes)


def test_a_placed_flag_is_on_the_flights_whose_own_spray_lies_in_it(
    world: tuple[World, str],
) -> None:
    w, _ = world
    [entry] = get(w, "/api/v1/fields/dt-hp-004/diary", "coop_hp").json()["entries"]
    outline = next(f for f in load_fields(DEFAULT_FIELDS_PATH).fields if f.id == "dt-hp-004")
    plane = LocalPlane.around(*outline.geometry.centroid.coords[0])
    placed = [f for f in entry["flags"] if f["code"] in ("no_spray_buffer", "off_target")]
    assert placed  # the scenario sprays by the canal and past the field's ends
    carried: dict[str, set[str]] = {code["code"]: set() for code in placed}
    for flight_id in entry["flights"]:
        flight = get(w, f"/api/v1/flights/{flight_id}", "coop_hp").json()
        own = plane.to_plane(_own_spray(w, "dt-hp-004", flight))
        codes = {f["code"] for f in flight["flags"] if f["field_id"] == "dt-hp-004"}
        for flag in placed:
            inside = shapely.intersection(
                own, plane.to_plane(shapely.geometry.shape(flag["where"]))
            )
            if flag["code"] in codes:
                carried[flag["code"]].add(flight_id)
                assert inside.area > 0.4, (flight_id, flag["code"])
            else:
                assert inside.area < 1.0, (flight_id, flag["code"], inside.area)
        assert flight["flag_codes"] == sorted({f["code"] for f in flight["flags"]})
    for flag in placed:
        assert carried[flag["code"]] == set(flag["flights"]) != set()
        assert flag["scope"] == "flight"


def test_a_job_level_flag_is_on_every_flight_of_the_job(world: tuple[World, str]) -> None:
    w, _ = world
    entries = get(w, "/api/v1/fields/dt-hp-002/diary", "coop_hp").json()["entries"]
    [entry] = [e for e in entries if e["job"] == f"{YT}.d-yt-a.j-1"]
    [wind] = [f for f in entry["flags"] if f["code"] == "wind"]
    assert (wind["scope"], wind["flights"]) == ("job", entry["flights"])
    for flight_id in entry["flights"]:
        flags = get(w, f"/api/v1/flights/{flight_id}", "coop_hp").json()["flags"]
        [shown] = [f for f in flags if f["code"] == "wind" and f["field_id"] == "dt-hp-002"]
        assert shown == {
            **{k: v for k, v in wind.items() if k != "flights"},
            "field_id": "dt-hp-002",
            "entry": entry["entry"],
            "job": entry["job"],
            "date": entry["date"],
        }


def test_a_farmer_sees_only_the_flags_of_their_own_fields_on_a_flight(
    world: tuple[World, str],
) -> None:
    w, _ = world
    hired = get(w, "/api/v1/flights", "operator", field="dt-hp-002", **THE_DAY).json()
    flight_id = hired["flights"][0]["id"]
    whole = get(w, f"/api/v1/flights/{flight_id}", "coop_hp").json()["flags"]
    # The flight strayed onto the neighbour's dt-hp-003: its flags are in Hồng Phong's view.
    assert {f["field_id"] for f in whole} == {"dt-hp-002", "dt-hp-003"}
    mine = get(w, f"/api/v1/flights/{flight_id}", "farmer_hp01").json()
    assert mine["flags"] == [f for f in whole if f["field_id"] == "dt-hp-002"]
    listed = get(w, "/api/v1/flights", "farmer_hp01", **THE_DAY).json()["flights"]
    [item] = [f for f in listed if f["id"] == flight_id]
    assert item["flag_codes"] == sorted({f["code"] for f in mine["flags"]})
    assert "flags" not in item  # the list is compact
    # The hired drone's own cooperative sees its flight whole, but not the flags of the
    # fields of the cooperative that hired it (they are that field's diary's).
    theirs = get(w, f"/api/v1/flights/{flight_id}", "coop_yt").json()
    assert theirs["whole_flight"] is True
    assert theirs["flags"] == []
    assert get(w, f"/api/v1/flights/{flight_id}", "operator").json()["flags"] == whole


# --- flags in the usage report --------------------------------------------------------------


def _usage_csv(w: World, who: str, **params: str) -> list[dict[str, str]]:
    answer = get(w, "/api/v1/reports/usage", who, format="csv", **params, **THE_DAY)
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig")), delimiter=";"))
    return [dict(zip(rows[0], r, strict=True)) for r in rows[1 : rows.index([])]]


def test_the_usage_report_names_the_flags_of_each_row(world: tuple[World, str]) -> None:
    w, _ = world
    # Every flag the drone's job raised on every field it sprayed, each once.
    raised = [(e, f) for e in _every_entry(w) if e["job"] == HP_JOB for f in e["flags"]]
    codes = [f["code"] for _, f in raised]
    report = get(w, "/api/v1/reports/usage", "coop_hp", group_by="drone", **THE_DAY).json()
    [row] = report["rows"]
    assert row["flag_codes"] == sorted(set(codes))
    assert row["flag_counts"] == {c: codes.count(c) for c in sorted(set(codes))}
    [cells] = [c for c in _usage_csv(w, "coop_hp", group_by="drone") if c["Máy bay"] == "d-hp-a"]
    texts = {f"{e['field_id']} {f['code']}: {f['message_vi']}" for e, f in raised}
    assert set(cells["Cảnh báo"].split(" | ")) == texts
    # Grouped by field, the field's own flags are written without its id.
    [own] = [c for c in _usage_csv(w, "coop_hp", group_by="field") if c["Mã thửa"] == "dt-hp-004"]
    [entry] = [e for e, _ in raised if e["field_id"] == "dt-hp-004"][:1]
    assert {f"{f['code']}: {f['message_vi']}" for f in entry["flags"]} <= set(
        own["Cảnh báo"].split(" | ")
    )


def test_a_hired_drone_s_report_has_no_flags_of_the_hiring_cooperative_s_fields(
    world: tuple[World, str],
) -> None:
    w, _ = world
    report = get(w, "/api/v1/reports/usage", "coop_yt", group_by="field", **THE_DAY).json()
    by_key = {r["key"]: r for r in report["rows"]}
    assert by_key["dt-hp-002"]["flag_codes"] == []  # Hồng Phong's field: its diary's flags
    # Its own job on its own fields (billed to dt-yt-004, the field it named; the flags of
    # the neighbours it strayed onto go with that work).
    own = [e for e in _every_entry(w) if e["job"] == YT_JOB2 and e["field_coop"] == YT]
    assert by_key["dt-yt-004"]["flag_codes"] == sorted({f["code"] for e in own for f in e["flags"]})
    assert by_key["dt-yt-004"]["flag_codes"] != []
    # An operator reads every diary: the same work, with Hồng Phong's field's flags.
    seen = get(w, "/api/v1/reports/usage", "operator", coop=YT, group_by="field", **THE_DAY).json()
    hp = {r["key"]: r for r in seen["rows"]}["dt-hp-002"]
    assert "wind" in hp["flag_codes"]
    assert seen["totals"] == report["totals"]
