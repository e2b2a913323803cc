"""Field versions over real HTTP, against both stores: a redraw, a deletion or a move never
changes the coverage, bills or audience of flights flown before it; flights after it use
the new version. Hồng Phong's d-hp-a sprays dt-hp-004 (member nd-hp-00) in three flights
(tests/integration/api_world.py); each test changes the field between them or afterwards."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import shapely
from shapely.geometry import mapping

from api.times import local_day, rfc3339
from fields.coverage import CoverageEngine
from fields.registry import FieldRegistry, load_fields, parse_fields
from fields.synthetic import T0_MS
from flights.service import FlightWatcher, rebuild
from simulators.geo import DEFAULT_FIELDS_PATH
from storage.contract import TelemetryStore
from storage.metadata import StoredFlight
from tests.integration.api_world import DAY_MS, HP, THE_DAY, YT, World, jobs, running_world

pytestmark = pytest.mark.integration

FIELD = "dt-hp-004"


@pytest.fixture
def fresh(store: TelemetryStore, tmp_path: Path) -> Iterator[tuple[World, TelemetryStore]]:
    """A world of its own (these tests change fields), over each store."""
    with running_world(store, tmp_path) as w:
        yield w, store


def call(world: World, method: str, path: str, who: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(
        method, f"{world.url}/api/v1{path}", headers=world.headers[who], timeout=60, **kwargs
    )


def coverage(world: World, who: str = "coop_hp") -> httpx.Response:
    return call(world, "GET", f"/fields/{FIELD}/coverage", who, params=THE_DAY)


def report(world: World, group_by: str = "member") -> httpx.Response:
    return call(world, "GET", "/reports/usage", "coop_hp", params={**THE_DAY, "group_by": group_by})


def past(world: World) -> tuple[Any, ...]:
    """What the day's coverage and bills say (the version's figures, not its end time)."""
    body = coverage(world).json()
    figures = {k: body[k] for k in ("field", "version", "coverage", "flights")}
    return figures, report(world).json(), report(world, "field").json()


def hp_flights(world: World) -> list[StoredFlight]:
    flights = world.metadata.flights(T0_MS - DAY_MS, T0_MS + DAY_MS, coop=HP)
    assert len(flights) == 3
    return flights


def rebuild_all(world: World, store: TelemetryStore) -> None:
    outcomes = rebuild(
        store,
        world.metadata,
        T0_MS - DAY_MS,
        T0_MS + DAY_MS,
        now_ms=T0_MS + 3 * DAY_MS,
    )
    assert not [f for o in outcomes for f in o.failed]


def resummarize(world: World, store: TelemetryStore) -> None:
    """One round of the flight watcher's late-data pass, as the ingest process runs it."""
    outcomes = FlightWatcher().poll_late(store, world.metadata, int(time.time() * 1000))
    assert outcomes
    assert not [f for o in outcomes for f in o.failed]
    assert world.metadata.late_ranges() == []


def yt_report() -> dict[str, str]:
    return {**THE_DAY, "coop": YT}


def shrunk() -> dict[str, Any]:
    """dt-hp-004 with a 0.5 m strip taken off all round (every flight still touches it)."""
    original = next(f for f in load_fields(DEFAULT_FIELDS_PATH).fields if f.id == FIELD)
    smaller = original.plane.to_wgs84(original.metric.buffer(-0.5, join_style="mitre"))
    return dict(mapping(shapely.set_precision(smaller, 1e-9)))


def registry_with(geometry: dict[str, Any]) -> FieldRegistry:
    """The packaged fields with dt-hp-004 redrawn."""
    packaged = load_fields(DEFAULT_FIELDS_PATH)
    doc: dict[str, Any] = {"type": "FeatureCollection", "features": []}
    for f in (*packaged.fields, *packaged.no_spray):
        feature = f.to_feature()
        if f.id == FIELD:
            feature["geometry"] = geometry
        doc["features"].append(feature)
    return parse_fields(doc)


def test_a_redraw_now_leaves_past_coverage_bills_and_flights_as_they_were(
    fresh: tuple[World, TelemetryStore],
) -> None:
    world, store = fresh
    before = past(world)
    assert before[0]["version"] == 1
    answer = call(
        world,
        "PUT",
        f"/fields/{FIELD}",
        "coop_hp",
        json={"geometry": shrunk(), "properties": {"name": "Ruộng vẽ lại"}},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["note"] is None
    assert past(world) == before
    rebuild_all(world, store)
    assert past(world) == before
    today = call(world, "GET", f"/fields/{FIELD}/coverage", "coop_hp").json()
    assert today["version"] == 2
    assert today["field"]["name"] == "Ruộng vẽ lại"
    assert today["field"]["area_ha"] < before[0]["field"]["area_ha"]
    assert today["flights"] == []


def test_flights_after_a_past_dated_redraw_use_the_new_outline_and_owner(
    fresh: tuple[World, TelemetryStore],
) -> None:
    world, store = fresh
    first, second, third = hp_flights(world)
    old_first = coverage(world).json()["flights"][0]
    valid_from = rfc3339((first.end_ms + second.start_ms) // 2)
    geometry = shrunk()
    # A year back: an operator's correction (a cooperative key may go 31 days back).
    answer = call(
        world,
        "PUT",
        f"/fields/{FIELD}",
        "operator",
        json={
            "valid_from": valid_from,
            "geometry": geometry,
            "properties": {"owner": "nd-hp-01", "name": "Ruộng bà Lan"},
        },
    )
    assert answer.status_code == 200, answer.text
    assert "flight watcher" in answer.json()["note"]
    # Until the watcher has summarized them again, the flights summarized against version 1
    # are refused with 503, not misread.
    for stale in (coverage(world), report(world)):
        assert stale.status_code == 503
        assert stale.headers["Retry-After"] == "60"
        assert "being summarized again" in stale.json()["detail"]
    resummarize(world, store)

    body = coverage(world).json()
    v1, v2 = body["versions"]
    assert [f["id"] for f in v1["flights"]] == [first.id]
    assert v1["flights"][0] == old_first
    assert [f["id"] for f in v2["flights"]] == [second.id, third.id]
    assert (body["version"], body["valid_from"]) == (2, valid_from)
    assert body["field"]["owner"] == "nd-hp-01"
    # Version 2's coverage is the engine's over those two flights' samples and the new outline.
    engine = CoverageEngine(registry_with(geometry))
    samples = [s for s in jobs()[0].samples if second.start_ms <= s.ts_ms <= third.end_ms]
    want = engine.result(engine.run(samples)[FIELD]).metrics()
    assert body["field"]["area_ha"] == pytest.approx(want["field_ha"], abs=1e-6)
    for key in ("field_ha", "covered_ha", "missed_ha", "overlap_ha"):
        assert body["coverage"][key] == pytest.approx(want[key], abs=2e-6), key

    rows = {r["key"]: r for r in report(world).json()["rows"]}
    assert rows["nd-hp-00"]["flights"] == 1
    assert rows["nd-hp-00"]["sprayed_ha"] == pytest.approx(old_first["covered_ha"], abs=1e-6)
    assert rows["nd-hp-01"]["flights"] == 2
    assert rows["nd-hp-01"]["sprayed_ha"] == pytest.approx(
        sum(f["covered_ha"] for f in v2["flights"]), abs=2e-6
    )


def test_a_deleted_field_leaves_listings_while_past_coverage_and_bills_stay(
    fresh: tuple[World, TelemetryStore],
) -> None:
    world, _ = fresh
    before = past(world)
    assert call(world, "DELETE", f"/fields/{FIELD}", "coop_hp").status_code == 200
    listed = [f["id"] for f in call(world, "GET", "/fields", "coop_hp").json()]
    assert FIELD not in listed
    assert call(world, "GET", f"/fields/{FIELD}", "coop_hp").status_code == 404
    assert past(world) == before
    tomorrow = local_day(int(time.time() * 1000)) + timedelta(days=1)
    window = {"from": tomorrow.isoformat(), "to": (tomorrow + timedelta(days=1)).isoformat()}
    later = call(world, "GET", f"/fields/{FIELD}/coverage", "coop_hp", params=window)
    assert later.status_code == 404
    assert later.json() == {"detail": f"no field {FIELD!r}"}


def test_a_moved_field_shows_each_cooperative_only_the_flights_of_its_own_time(
    fresh: tuple[World, TelemetryStore],
) -> None:
    world, store = fresh
    first, second, third = hp_flights(world)
    answer = call(
        world,
        "PUT",
        f"/fields/{FIELD}",
        "operator",
        json={
            "valid_from": rfc3339((first.end_ms + second.start_ms) // 2),
            "properties": {"coop": YT, "owner": "nd-yt-02"},
        },
    )
    assert answer.status_code == 200, answer.text
    rebuild_all(world, store)

    new_coop, old_coop = coverage(world, "coop_yt").json(), coverage(world, "coop_hp").json()
    assert [v["version"] for v in new_coop["versions"]] == [2]
    assert [f["id"] for f in new_coop["flights"]] == [second.id, third.id]
    assert [v["version"] for v in old_coop["versions"]] == [1]
    assert [f["id"] for f in old_coop["flights"]] == [first.id]

    def seen(who: str) -> set[str]:
        flights = call(world, "GET", "/flights", who, params=THE_DAY).json()["flights"]
        return {f["id"] for f in flights if FIELD in [s["field_id"] for s in f["fields"]]}

    assert seen("farmer_yt02") == {second.id, third.id}
    assert seen("farmer_hp00") == {first.id}
    assert call(world, "GET", f"/flights/{first.id}", "coop_yt").status_code == 404
    part = call(world, "GET", f"/flights/{second.id}", "coop_yt").json()
    assert [s["field_id"] for s in part["fields"]] == [FIELD]
    assert part["whole_flight"] is False


def test_a_past_dated_rename_leaves_every_summary_and_report_alone(
    fresh: tuple[World, TelemetryStore],
) -> None:
    world, _ = fresh
    yt_before = call(world, "GET", "/reports/usage", "coop_yt", params=THE_DAY).json()
    hp_before = past(world)
    body = {"properties": {"name": "renamed"}, "valid_from": "2025-11-28T08:00:00+07:00"}
    refused = call(world, "PUT", "/fields/dt-hp-002", "coop_hp", json=body)
    assert refused.status_code == 422
    assert "31 days back" in refused.json()["detail"]
    answer = call(world, "PUT", "/fields/dt-hp-002", "operator", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["note"] is None
    yt_after = call(world, "GET", "/reports/usage", "coop_yt", params=THE_DAY)
    assert yt_after.status_code == 200, yt_after.text
    assert yt_after.json() == yt_before
    assert past(world) == hp_before
    assert world.metadata.late_ranges() == []


def test_a_past_dated_redraw_holds_other_cooperatives_reports_without_naming_the_field(
    fresh: tuple[World, TelemetryStore],
) -> None:
    world, store = fresh
    yt_before = call(world, "GET", "/reports/usage", "coop_yt", params=THE_DAY).json()
    answer = call(
        world,
        "PUT",
        f"/fields/{FIELD}",
        "operator",
        json={"valid_from": "2025-11-28T00:07:00+07:00", "geometry": shrunk()},
    )
    assert answer.status_code == 200, answer.text
    held = call(world, "GET", "/reports/usage", "coop_yt", params=THE_DAY)
    assert held.status_code == 503
    assert held.headers["Retry-After"] == "60"
    for secret in (FIELD, HP, "version", "00:07"):
        assert secret not in held.text
    resummarize(world, store)
    after = call(world, "GET", "/reports/usage", "coop_yt", params=THE_DAY)
    assert after.status_code == 200, after.text
    assert after.json() == yt_before


def test_a_past_dated_redraw_reaches_a_flight_that_missed_the_old_outline(
    fresh: tuple[World, TelemetryStore],
) -> None:
    world, store = fresh
    hired = world.metadata.flights(T0_MS - DAY_MS, T0_MS + DAY_MS, coop=YT)[0]
    over_002 = call(world, "GET", "/fields/dt-hp-002/coverage", "operator", params=THE_DAY).json()
    assert [f["id"] for f in over_002["flights"]] == [hired.id]
    before = call(world, "GET", "/fields/dt-hp-001/coverage", "operator", params=THE_DAY).json()
    assert before["flights"] == []
    # dt-hp-001 redrawn, from before the day, onto dt-hp-002's ground (one cooperative).
    outline = call(world, "GET", "/fields/dt-hp-002", "operator").json()["geometry"]
    answer = call(
        world,
        "PUT",
        "/fields/dt-hp-001",
        "operator",
        json={"valid_from": "2025-11-28T00:00:00+07:00", "geometry": outline},
    )
    assert answer.status_code == 200, answer.text
    pending = call(world, "GET", "/fields/dt-hp-001/coverage", "operator", params=THE_DAY)
    # No flight over dt-hp-001 is stored yet, so nothing is refused: it simply has none.
    assert pending.status_code == 200
    resummarize(world, store)
    after = call(world, "GET", "/fields/dt-hp-001/coverage", "operator", params=THE_DAY).json()
    assert [f["id"] for f in after["flights"]] == [hired.id]
    assert after["version"] == 2
    assert after["coverage"]["covered_ha"] == pytest.approx(
        over_002["coverage"]["covered_ha"], abs=1e-5
    )


def test_a_farmer_still_finds_a_hired_flight_by_a_deleted_fields_id(
    fresh: tuple[World, TelemetryStore],
) -> None:
    world, _ = fresh
    hired = world.metadata.flights(T0_MS - DAY_MS, T0_MS + DAY_MS, coop=YT)[0]

    def by_field(who: str, field_id: str) -> list[str]:
        params = {**THE_DAY, "field": field_id}
        answer = call(world, "GET", "/flights", who, params=params)
        assert answer.status_code == 200, answer.text
        return [f["id"] for f in answer.json()["flights"]]

    assert by_field("farmer_hp01", "dt-hp-002") == [hired.id]
    assert call(world, "DELETE", "/fields/dt-hp-002", "coop_hp").status_code == 200
    assert by_field("farmer_hp01", "dt-hp-002") == [hired.id]
    assert by_field("coop_hp", "dt-hp-002") == [hired.id]
    # Someone who could never see the field gets the answer of an unknown id.
    for who in ("farmer_hp00", "farmer_yt02"):
        hidden = call(world, "GET", "/flights", who, params={**THE_DAY, "field": "dt-hp-002"})
        unknown = call(world, "GET", "/flights", who, params={**THE_DAY, "field": "dt-zz-999"})
        assert hidden.json() == unknown.json()
        assert hidden.json()["flights"] == []
