"""The compliance rules at their thresholds (flights.compliance), on made-up entries."""

from __future__ import annotations

from typing import Any

import pytest
import shapely

from fields.projection import LocalPlane
from flights.compliance import ComplianceParams, Places, attribute, compliance_flags

PLANE = LocalPlane.around(106.52, 21.08)
FIELD = shapely.box(0, 0, 40, 40)  # metres in PLANE


def body(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "field_id": "f1",
        "date": "2025-11-28",
        "start": "2025-11-28T08:00:00+07:00",
        "sprayed_ha": 0.16,
        "planned_dose_l_per_ha": 15.0,
        "applied_l_per_ha": 15.0,
        "rate_cv_pct": 10.0,
        "wind_mps": 2.0,
    }
    return base | over


def codes(flags: list[dict[str, Any]]) -> list[str]:
    return [f["code"] for f in flags]


def spots(near_zone: Any = None, off_target: Any = None) -> Places:
    empty = shapely.Polygon()
    return Places(
        PLANE,
        FIELD,
        empty if off_target is None else off_target,
        empty if near_zone is None else near_zone,
    )


@pytest.mark.parametrize(
    ("applied", "flagged"),
    [(15.0, False), (18.0, False), (18.05, True), (12.0, False), (11.95, True), (40.0, True)],
)
def test_dose_more_than_20_percent_from_plan(applied: float, flagged: bool) -> None:
    flags = compliance_flags(body(applied_l_per_ha=applied), spots(), ["f1"], [])
    assert ("dose_deviation" in codes(flags)) == flagged
    if flagged:
        [f] = flags
        assert f["deviation_pct"] == pytest.approx(100 * (applied - 15) / 15, abs=0.05)
        assert f["where"]["type"] == "Polygon"  # the covered ground
        assert "L/ha" in f["message_vi"]
        assert "L/ha" in f["message_en"]


@pytest.mark.parametrize(("wind", "flagged"), [(3.4, False), (3.41, True), (None, False)])
def test_wind_above_3_4_m_per_s(wind: float | None, flagged: bool) -> None:
    assert ("wind" in codes(compliance_flags(body(wind_mps=wind), spots(), ["f1"], []))) == flagged


@pytest.mark.parametrize(("cv", "flagged"), [(25.0, False), (25.1, True), (None, False)])
def test_deposit_cv_above_25_percent(cv: float | None, flagged: bool) -> None:
    flags = compliance_flags(body(rate_cv_pct=cv), spots(), ["f1"], [])
    assert ("rate_cv" in codes(flags)) == flagged


def test_spray_near_a_zone_is_placed_where_it_happened() -> None:
    strip = shapely.box(0, 35, 40, 40)  # 200 m² of spray in the buffer
    [f] = compliance_flags(body(), spots(near_zone=strip), ["f1"], [])
    assert f["code"] == "no_spray_buffer"
    assert f["area_m2"] == pytest.approx(200.0)
    placed = PLANE.to_plane(shapely.geometry.shape(f["where"]))
    assert placed.symmetric_difference(strip).area < 0.5  # 1e-7 degree grid: ~1 cm
    assert "15 m" in f["message_vi"]
    wider = ComplianceParams(buffer_m=30)
    assert (
        "30 m"
        in compliance_flags(body(), spots(near_zone=strip), ["f1"], [], wider)[0]["message_en"]
    )


@pytest.mark.parametrize(("m2", "flagged"), [(25.0, False), (26.0, True)])
def test_off_target_beyond_the_tolerance(m2: float, flagged: bool) -> None:
    off = shapely.box(40, 0, 41, m2)
    flags = compliance_flags(body(), spots(off_target=off), ["f1"], [])
    assert ("off_target" in codes(flags)) == flagged


def test_a_field_the_job_did_not_name() -> None:
    assert codes(compliance_flags(body(), spots(), ["f2"], [])) == ["not_job_field"]
    assert codes(compliance_flags(body(), spots(), [], [])) == []  # the job named none
    tiny = body(sprayed_ha=0.002)  # 20 m²: within the tolerance
    assert codes(compliance_flags(tiny, spots(), ["f2"], [])) == []


@pytest.mark.parametrize(
    ("day", "flagged"),
    [("2025-11-28", True), ("2025-12-04", True), ("2025-12-05", False), ("2025-11-27", False)],
)
def test_spraying_before_the_previous_safe_harvest_date(day: str, flagged: bool) -> None:
    earlier = {
        "entry": "c.d.j-1",
        "date": "2025-11-28",
        "safe_harvest_date": "2025-12-05",
        "product": {"trade_name": "Validan 5SL"},
    }
    flags = compliance_flags(body(date=day), spots(), ["f1"], [earlier])
    assert ("phi_conflict" in codes(flags)) == flagged
    if flagged:
        assert "05/12/2025" in flags[0]["message_vi"]
        assert flags[0]["previous_entry"] == "c.d.j-1"


# --- which flights a flag concerns (attribute) -----------------------------------------------


def test_a_placed_flag_concerns_the_flights_whose_own_spray_lies_in_it() -> None:
    strip = shapely.box(0, 35, 40, 40)  # the buffer's spray, all of it by flight f2
    placed = spots(near_zone=strip, off_target=shapely.box(40, 0, 42, 40))
    flags = compliance_flags(body(applied_l_per_ha=30.0), placed, ["f1"], [])
    footprints = {"f1": shapely.box(0, 0, 42, 20), "f2": shapely.box(0, 20, 40, 40)}
    out = attribute(flags, [("f1", 0.0), ("f2", 0.0)], placed, footprints)
    by_code = {f["code"]: f for f in out}
    assert (by_code["no_spray_buffer"]["flights"], by_code["no_spray_buffer"]["scope"]) == (
        ["f2"],
        "flight",
    )
    assert (by_code["off_target"]["flights"], by_code["off_target"]["scope"]) == (
        ["f1"],
        "flight",
    )
    # The dose is the whole job's figure: every flight of the entry carries it.
    assert (by_code["dose_deviation"]["flights"], by_code["dose_deviation"]["scope"]) == (
        ["f1", "f2"],
        "job",
    )
    # Nothing else of the flag changes.
    assert [{k: v for k, v in f.items() if k not in ("flights", "scope")} for f in out] == flags


def test_a_flight_touching_a_place_by_less_than_half_a_square_metre_is_not_concerned() -> None:
    strip = shapely.box(0, 35, 40, 40)
    placed = spots(near_zone=strip)
    flags = compliance_flags(body(), placed, ["f1"], [])
    grazing = {"f1": shapely.box(0, 0, 40, 35.01), "f2": shapely.box(0, 30, 40, 40)}
    [f] = attribute(flags, [("f1", 0.0), ("f2", 0.0)], placed, grazing)
    assert f["flights"] == ["f2"]  # f1's 0.4 m² inside the buffer is GNSS noise


def test_spray_during_return_to_home_concerns_the_flights_that_did_it() -> None:
    rth = {"code": "rth_spray", "message_vi": "…", "message_en": "…", "where": None}
    [f] = attribute([rth], [("f1", 0.0), ("f2", 3.5), ("f3", 1.0)], spots(), {})
    assert (f["flights"], f["scope"]) == (["f2", "f3"], "flight")


def test_unplaced_flights_give_every_flag_to_the_whole_job() -> None:
    flags = compliance_flags(body(), None, ["f2"], [])  # not_job_field, no place
    [f] = attribute(flags, [("f1", 0.0), ("f2", 0.0)], None, None)
    assert (f["code"], f["flights"], f["scope"]) == ("not_job_field", ["f1", "f2"], "job")
