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
from flights.service import rebuild
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
    answer = call(
        world,
        "PUT",
        f"/fields/{FIELD}",
        "coop_hp",
        json={
            "valid_from": valid_from,
            "geometry": geometry,
            "properties": {"owner": "nd-hp-01", "name": "Ruộng bà Lan"},
        },
    )
    assert answer.status_code == 200, answer.text
    assert "flights rebuild" in answer.json()["note"]
    # Until the rebuild, the flights summarized against version 1 are refused, not misread.
    for stale in (coverage(world), report(world)):
        assert stale.status_code == 409
        assert "flights rebuild" in stale.json()["detail"]
    rebuild_all(world, store)

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
