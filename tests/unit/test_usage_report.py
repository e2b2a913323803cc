"""Usage report arithmetic: hand-computed answers for a small cooperative, and invariants."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reports.usage import (
    GROUP_BYS,
    UNASSIGNED,
    FieldUsage,
    FlightUsage,
    GroupBy,
    UsageFlag,
    UsageInputError,
    UsageReport,
    UsageRow,
    allocate_vnd,
    split_ms,
    usage_report,
)

TARIFF = 300_000  # VND per hectare


def utc_ms(text: str) -> int:
    """Epoch ms of an ISO instant with an explicit offset."""
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def flight(
    fid: str,
    drone: str,
    start: str,
    duration_s: float,
    litres: float,
    *fields: FieldUsage,
) -> FlightUsage:
    start_ms = utc_ms(start)
    return FlightUsage(
        flight_id=fid,
        coop="htx-dt",
        drone=drone,
        start_ms=start_ms,
        end_ms=start_ms + int(duration_s * 1000),
        duration_s=duration_s,
        litres=litres,
        fields=fields,
    )


def on(field_id: str, covered_ha: float, litres: float) -> FieldUsage:
    """One flight's work on one of the three fields below."""
    name, owner, field_ha = FIELDS[field_id]
    return FieldUsage(
        field_id=field_id,
        field_name=name,
        owner=owner,
        field_ha=field_ha,
        covered_ha=covered_ha,
        litres=litres,
        coverage_pct=100.0 * covered_ha / field_ha,
    )


# Two members, three fields: An owns f-1 (0.5 ha) and f-2 (0.3 ha), Bình owns f-3 (1 ha).
FIELDS = {
    "f-1": ("Ruộng đầu làng", "m-an", 0.5),
    "f-2": ("Ruộng gò", "m-an", 0.3),
    "f-3": ("Ruộng bãi", "m-binh", 1.0),
}
NAMES = {"m-an": "Nguyễn Văn An", "m-binh": "Trần Thị Bình"}

# Four flights over two local days; F2 sprays both members' fields, F4 touches no field.
FLIGHTS = (
    flight("F1", "d1", "2024-06-01T07:00:00+07:00", 1800, 10.0, on("f-1", 0.4, 8.0)),
    flight(
        "F2",
        "d1",
        "2024-06-01T09:00:00+07:00",
        2700,
        15.0,
        on("f-2", 0.3, 6.0),
        on("f-3", 0.6, 9.0),
    ),
    flight("F3", "d1", "2024-06-02T08:00:00+07:00", 3600, 20.0, on("f-3", 0.4, 20.0)),
    flight("F4", "d2", "2024-06-02T10:00:00+07:00", 600, 2.0),
)


def report(group_by: GroupBy, flights: tuple[FlightUsage, ...] = FLIGHTS) -> UsageReport:
    return usage_report(flights, group_by=group_by, tariff_vnd_per_ha=TARIFF, member_names=NAMES)


def figures(row: UsageRow) -> tuple[Any, ...]:
    """(flights, hours, ha, litres, L/ha, coverage %, VND) with the inexact ones rounded."""
    l_per_ha = row.mean_l_per_ha
    cov = row.mean_coverage_pct
    return (
        row.flights,
        Fraction(row.flight_ms, 3_600_000),
        row.sprayed_ha,
        row.litres,
        None if l_per_ha is None else round(l_per_ha, 4),
        None if cov is None else round(cov, 4),
        row.amount_vnd,
    )


def by_key(r: UsageReport) -> dict[str, UsageRow]:
    return {row.key: row for row in r.rows}


D = Decimal


def test_member_rows_split_a_shared_flight_by_covered_area() -> None:
    rows = by_key(report("member"))
    # F2 (45 min) covered 0.3 ha for An and 0.6 ha for Bình: 15 min and 30 min.
    assert figures(rows["m-an"]) == (2, Fraction(3, 4), D("0.7"), D("14"), D(20), 87.5, 210_000)
    assert figures(rows["m-binh"]) == (2, Fraction(3, 2), D("1.0"), D("29"), D(29), 50.0, 300_000)
    assert rows["m-an"].label == "Nguyễn Văn An"
    assert rows["m-binh"].label == "Trần Thị Bình"


def test_a_flight_over_no_field_lands_in_the_unassigned_row_last() -> None:
    r = report("member")
    assert [row.key for row in r.rows] == ["m-an", "m-binh", UNASSIGNED]
    assert figures(r.rows[-1]) == (1, Fraction(1, 6), D(0), D(2), None, None, 0)


def test_member_totals_count_each_flight_once_and_add_up_the_rest() -> None:
    t = report("member").totals
    # 30 + 45 + 60 + 10 minutes; litres in fields plus the unassigned flight's (F1's 2 L off
    # the field are not in a member's litres).
    assert figures(t)[:4] == (4, Fraction(29, 12), D("1.7"), D("45"))
    assert t.amount_vnd == 510_000
    assert t.mean_coverage_pct == pytest.approx(100 * 1.7 / 2.8)


def test_field_rows_use_field_names_and_per_field_litres() -> None:
    r = report("field")
    assert [row.key for row in r.rows] == ["f-1", "f-2", "f-3", UNASSIGNED]
    rows = by_key(r)
    assert rows["f-1"].label == "Ruộng đầu làng"
    assert figures(rows["f-1"]) == (1, Fraction(1, 2), D("0.4"), D("8"), D(20), 80.0, 120_000)
    assert figures(rows["f-2"]) == (1, Fraction(1, 4), D("0.3"), D("6"), D(20), 100.0, 90_000)
    assert figures(rows["f-3"]) == (2, Fraction(3, 2), D("1.0"), D("29"), D(29), 50.0, 300_000)


def test_drone_rows_take_whole_flights_and_the_flights_own_litres() -> None:
    rows = by_key(report("drone"))
    assert list(rows) == ["d1", "d2"]
    assert figures(rows["d1"]) == (
        3,
        Fraction(9, 4),
        D("1.7"),
        D("45"),
        round(D(43) / D("1.7"), 4),  # F1's 2 L off its field are not in the rate
        round(100 * 1.7 / 2.8, 4),
        510_000,
    )
    assert figures(rows["d2"]) == (1, Fraction(1, 6), D(0), D(2), None, None, 0)
    assert report("drone").totals.litres == D(47)


def test_day_rows_are_local_dates_of_the_flight_start() -> None:
    r = report("day")
    rows = by_key(r)
    assert list(rows) == ["2024-06-01", "2024-06-02"]
    assert rows["2024-06-01"].label == "2024-06-01"
    assert figures(rows["2024-06-01"])[:4] == (2, Fraction(5, 4), D("1.3"), D(25))
    assert figures(rows["2024-06-02"])[:4] == (2, Fraction(7, 6), D("0.4"), D(22))
    assert [row.amount_vnd for row in r.rows] == [390_000, 120_000]


def test_off_field_litres_count_in_litres_but_not_in_the_rate() -> None:
    day2 = by_key(report("day"))["2024-06-02"]
    assert day2.litres == D(22)  # F3's 20 L and the 2 L of F4, which touched no field
    assert day2.mean_l_per_ha == D(50)  # 20 L over F3's 0.4 ha


@pytest.mark.parametrize(
    ("start_utc", "local_day"),
    [
        ("2024-06-01T16:30:00+00:00", "2024-06-01"),  # 23:30 local on the 1st
        ("2024-06-01T16:59:59.999+00:00", "2024-06-01"),
        ("2024-06-01T17:00:00+00:00", "2024-06-02"),  # 17:00 UTC is local midnight
        ("2024-06-01T17:30:00+00:00", "2024-06-02"),  # 00:30 local on the 2nd
    ],
)
def test_the_day_boundary_is_midnight_in_ho_chi_minh_city(start_utc: str, local_day: str) -> None:
    f = flight("late", "d1", start_utc, 1200, 1.0)
    (row,) = report("day", (f,)).rows
    assert row.key == local_day


def test_late_and_early_flights_fall_on_different_days() -> None:
    late = flight("a", "d1", "2024-06-01T23:30:00+07:00", 600, 1.0)
    early = flight("b", "d1", "2024-06-02T00:30:00+07:00", 600, 1.0)
    r = report("day", (late, early))
    assert [(row.key, row.flights) for row in r.rows] == [("2024-06-01", 1), ("2024-06-02", 1)]


def test_another_time_zone_moves_the_day() -> None:
    f = flight("a", "d1", "2024-06-01T17:30:00+00:00", 600, 1.0)
    r = usage_report([f], group_by="day", tariff_vnd_per_ha=1, tz="UTC")
    assert r.rows[0].key == "2024-06-01"


def test_mean_coverage_is_weighted_by_field_area() -> None:
    small = FieldUsage("s", "s", "m", 0.1, 0.1, 1.0, 100.0)
    big = FieldUsage("b", "b", "m", 0.9, 0.45, 5.0, 50.0)
    f = FlightUsage("x", "c", "d", 0, 60_000, 60.0, 6.0, (small, big))
    (row,) = usage_report([f], group_by="member", tariff_vnd_per_ha=0).rows
    assert row.mean_coverage_pct == pytest.approx((100 * 0.1 + 50 * 0.9) / 1.0)


def half_dong_each(group_by: GroupBy) -> UsageReport:
    """Two fields of one member, 0.000005 ha each at 100,000 VND/ha: 0.5 đồng each, 1 in all."""
    fs = [
        FlightUsage(
            f"x{i}",
            "c",
            "d",
            0,
            1000,
            1.0,
            0.0,
            (FieldUsage(f"f{i}", "", "m", 1.0, 5e-6, 0, 0),),
        )
        for i in range(2)
    ]
    return usage_report(fs, group_by=group_by, tariff_vnd_per_ha=100_000)


def test_the_total_is_rounded_once_so_member_and_field_reports_agree() -> None:
    # Rounding each field's 0.5 đồng up would bill 2 by field and 1 by member.
    assert {g: half_dong_each(g).totals.amount_vnd for g in GROUP_BYS} == dict.fromkeys(
        GROUP_BYS, 1
    )


def test_rows_share_the_total_by_largest_remainder_ties_to_the_first_row() -> None:
    r = half_dong_each("field")
    assert [(row.key, row.amount_vnd) for row in r.rows] == [("f0", 1), ("f1", 0)]
    assert [row.exact_vnd for row in r.rows] == [Fraction(1, 2), Fraction(1, 2)]


@pytest.mark.parametrize(
    ("exact", "total", "parts"),
    [
        (["0.5", "0.5"], 1, [1, 0]),
        (["0.4", "0.4", "0.4"], 1, [1, 0, 0]),  # 1.2 rounds to 1: one row gets the đồng
        (["0.6", "0.6", "0.6"], 2, [1, 1, 0]),  # 1.8 rounds to 2
        (["10.2", "3.7", "5.1"], 19, [10, 4, 5]),
        (["0.5"], 1, [1]),  # half up, not to even
        (["2.5"], 3, [3]),
        ([], 0, []),
    ],
)
def test_allocate_vnd_known_answers(exact: list[str], total: int, parts: list[int]) -> None:
    assert allocate_vnd([Fraction(e) for e in exact]) == (total, parts)


@given(st.lists(st.fractions(0, 10**9, max_denominator=10**6), max_size=12))
def test_allocate_vnd_sums_to_the_rounded_total_within_a_dong_per_part(
    exact: list[Fraction],
) -> None:
    total, parts = allocate_vnd(exact)
    assert total == int((sum(exact, Fraction(0)) + Fraction(1, 2)) // 1)
    assert sum(parts) == total
    assert all(abs(part - e) < 1 for part, e in zip(parts, exact, strict=True))


def test_sao_are_360_square_metres() -> None:
    row = by_key(report("field"))["f-3"]
    assert row.sprayed_sao == D(10_000) / D(360)


@pytest.mark.parametrize(
    ("total", "weights", "parts"),
    [
        (2_700_000, ["0.3", "0.6"], [900_000, 1_800_000]),
        (10, ["1", "1", "1"], [4, 3, 3]),  # the odd millisecond goes to the first tie
        (10, ["0", "0"], [5, 5]),  # no area at all: equal shares
        (7, ["0", "2"], [0, 7]),
        (0, ["1", "2"], [0, 0]),
    ],
)
def test_split_ms_known_answers(total: int, weights: list[str], parts: list[int]) -> None:
    assert split_ms(total, [D(w) for w in weights]) == parts


@given(
    st.integers(0, 10**8),
    st.lists(st.decimals(0, 10, places=6, allow_nan=False), min_size=1, max_size=8),
)
def test_split_ms_conserves_time_and_stays_within_a_millisecond(
    total: int, weights: list[Decimal]
) -> None:
    parts = split_ms(total, weights)
    assert sum(parts) == total
    whole = sum(weights)
    for w, part in zip(weights, parts, strict=True):
        exact = (
            Fraction(total) * Fraction(w) / Fraction(whole)
            if whole
            else Fraction(total, len(weights))
        )
        assert abs(part - exact) < 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"duration_s": -1.0}, "flight F1: duration_s -1.0 must be"),
        ({"litres": float("nan")}, "flight F1: litres nan must be"),
        ({"end_ms": 0}, "flight F1: ends (0) before it starts"),
        (
            {"fields": (on("f-1", 0.4, 8.0), on("f-1", 0.1, 1.0))},
            "flight F1: field f-1: listed twice",
        ),
        (
            {"fields": (replace(on("f-1", 0.4, 8.0), covered_ha=-0.1),)},
            "flight F1: field f-1: covered_ha -0.1",
        ),
        (
            {"fields": (replace(on("f-1", 0.4, 8.0), coverage_pct=101.0),)},
            "flight F1: field f-1: coverage_pct 101.0",
        ),
        (
            {"fields": (replace(on("f-1", 0.4, 8.0), field_ha=0.0),)},
            "flight F1: field f-1: field_ha 0.0 must be",
        ),
    ],
)
def test_bad_flights_are_refused_with_the_flight_and_field_named(
    change: dict[str, Any], message: str
) -> None:
    bad = replace(FLIGHTS[0], **change)
    with pytest.raises(UsageInputError, match="^" + re.escape(message)):
        report("member", (bad,))


def test_a_flight_given_twice_is_refused() -> None:
    with pytest.raises(UsageInputError, match="flight F1: given twice"):
        report("drone", (FLIGHTS[0], FLIGHTS[0]))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"group_by": "pilot"}, "group_by 'pilot' unknown; use one of member, field, drone, day"),
        ({"tz": "Asia/Hanoi_Typo"}, "time zone 'Asia/Hanoi_Typo' unknown"),
        ({"tariff_vnd_per_ha": 1.5}, "tariff 1.5: give whole đồng"),
        ({"tariff_vnd_per_ha": -1}, "tariff -1 VND/ha: must be"),
    ],
)
def test_bad_options_are_refused(options: dict[str, Any], message: str) -> None:
    kwargs: dict[str, Any] = {"group_by": "member", "tariff_vnd_per_ha": TARIFF, **options}
    with pytest.raises(UsageInputError, match=message):
        usage_report(FLIGHTS, **kwargs)


def test_no_flights_make_an_empty_report_with_zero_totals() -> None:
    r = report("member", ())
    assert r.rows == ()
    assert figures(r.totals) == (0, 0, 0, 0, None, None, 0)


def test_from_summary_joins_the_registry() -> None:
    share = SimpleNamespace(field_id="f-3", covered_ha=0.6, applied_l=9.0, coverage_pct=60.0)
    summary = SimpleNamespace(
        flight_id="F2",
        coop="htx-dt",
        drone="d1",
        start_ms=1,
        end_ms=2,
        duration_s=0.001,
        applied_l=15.0,
        fields=(share,),
        job_fields=("f-3",),
    )
    registry = {"f-3": SimpleNamespace(name="Ruộng bãi", owner="m-binh", area_ha=1.0)}
    f = FlightUsage.from_summary(summary, registry)  # type: ignore[arg-type]
    assert f.fields == (on("f-3", 0.6, 9.0),)
    assert (f.flight_id, f.drone, f.litres, f.job_fields) == ("F2", "d1", 15.0, ("f-3",))
    with pytest.raises(UsageInputError, match="flight F2: field f-3 is not in the field registry"):
        FlightUsage.from_summary(summary, {})  # type: ignore[arg-type]


def test_a_flight_whose_job_named_its_field_bills_only_that_field() -> None:
    hired = replace(
        flight(
            "F1",
            "d1",
            "2024-06-01T08:00:00+07:00",
            600,
            9.0,
            on("f-1", 0.5, 8.0),
            on("f-3", 0.02, 1.0),
        ),
        job_fields=("f-1",),
    )
    report = usage_report([hired], group_by="member", tariff_vnd_per_ha=TARIFF)
    assert [r.key for r in report.rows] == ["m-an"]
    assert report.totals.sprayed_ha == Decimal("0.5")
    assert report.totals.amount_vnd == 150_000
    assert report.totals.flight_ms == 600_000
    assert report.not_billed_ha == Decimal("0.02")


def test_a_job_naming_none_of_the_touched_fields_bills_all_of_them() -> None:
    stray = replace(
        flight(
            "F1",
            "d1",
            "2024-06-01T08:00:00+07:00",
            600,
            9.0,
            on("f-1", 0.5, 8.0),
            on("f-2", 0.02, 1.0),
        ),
        job_fields=("f-99",),
    )
    report = usage_report([stray], group_by="field", tariff_vnd_per_ha=TARIFF)
    assert [r.key for r in report.rows] == ["f-1", "f-2"]
    assert report.not_billed_ha == 0


# --- invariants ---------------------------------------------------------------------------


@st.composite
def field_usages(draw: st.DrawFn, field_id: str) -> FieldUsage:
    field_ha = draw(st.floats(0.05, 2))
    covered = draw(st.floats(0, field_ha))
    return FieldUsage(
        field_id=field_id,
        field_name=f"Thửa {field_id}",
        owner=draw(st.sampled_from(["m1", "m2", "m3", ""])),
        field_ha=field_ha,
        covered_ha=covered,
        litres=draw(st.floats(0, 50)),
        coverage_pct=100.0 * covered / field_ha,
    )


@st.composite
def flight_usages(draw: st.DrawFn) -> list[FlightUsage]:
    n = draw(st.integers(0, 12))
    out = []
    for i in range(n):
        ids = draw(st.lists(st.sampled_from(["a", "b", "c", "d"]), unique=True, max_size=3))
        start = draw(st.integers(1_700_000_000_000, 1_700_000_000_000 + 7 * 86_400_000))
        duration = draw(st.floats(0, 3 * 3600))
        out.append(
            FlightUsage(
                flight_id=f"F{i}",
                coop="c",
                drone=draw(st.sampled_from(["d1", "d2"])),
                start_ms=start,
                end_ms=start + int(duration * 1000),
                duration_s=duration,
                litres=draw(st.floats(0, 100)),
                fields=tuple(draw(field_usages(fid)) for fid in ids),
            )
        )
    return out


@settings(max_examples=150)
@given(flight_usages(), st.sampled_from(GROUP_BYS), st.integers(0, 2_000_000))
def test_totals_are_the_sum_of_rows(
    flights: list[FlightUsage], group_by: GroupBy, tariff: int
) -> None:
    r = usage_report(flights, group_by=group_by, tariff_vnd_per_ha=tariff)
    t = r.totals
    assert t.flight_ms == sum(row.flight_ms for row in r.rows)
    assert t.sprayed_ha == sum((row.sprayed_ha for row in r.rows), Decimal(0))
    assert t.litres == sum((row.litres for row in r.rows), Decimal(0))
    assert t.litres_on_fields == sum((row.litres_on_fields for row in r.rows), Decimal(0))
    assert t.amount_vnd == sum(row.amount_vnd for row in r.rows)
    assert t.flights == len(flights)
    assert [row.key for row in r.rows] == sorted(
        (row.key for row in r.rows), key=lambda k: (k == UNASSIGNED, k)
    )


@settings(max_examples=100)
@given(flight_usages(), st.integers(0, 2_000_000))
def test_every_grouping_accounts_for_the_same_hours_and_hectares(
    flights: list[FlightUsage], tariff: int
) -> None:
    reports = [usage_report(flights, group_by=g, tariff_vnd_per_ha=tariff) for g in GROUP_BYS]
    hours = {r.totals.flight_ms for r in reports}
    hectares = {r.totals.sprayed_ha for r in reports}
    assert len(hours) == 1
    assert len(hectares) == 1
    expected_ms = sum(round(f.duration_s * 1000) for f in flights)
    assert abs(hours.pop() - expected_ms) <= len(flights)  # half-up vs. round-half-even


@settings(max_examples=100)
@given(flight_usages(), st.sampled_from(GROUP_BYS))
def test_the_order_of_flights_does_not_matter(
    flights: list[FlightUsage], group_by: GroupBy
) -> None:
    def exact(r: UsageReport) -> list[tuple[Any, ...]]:
        return [
            (w.key, w.flights, w.flight_ms, w.sprayed_ha, w.litres, w.amount_vnd) for w in r.rows
        ]

    forward = usage_report(flights, group_by=group_by, tariff_vnd_per_ha=275_000)
    backward = usage_report(flights[::-1], group_by=group_by, tariff_vnd_per_ha=275_000)
    assert exact(forward) == exact(backward)


# --- compliance flags ------------------------------------------------------------------------

DOSE = UsageFlag("f-2", "htx-dt.d1.j-2", "dose_deviation", "Liều lệch", "Dose off")
DOSE3 = UsageFlag("f-3", "htx-dt.d1.j-2", "dose_deviation", "Liều lệch", "Dose off")
OFF = UsageFlag("f-3", "htx-dt.d1.j-2", "off_target", "Phun ra ngoài", "Spray outside")
STRAY = UsageFlag("f-3", "htx-dt.d1.j-1", "not_job_field", "Phun nhầm thửa", "Not the job's")


def flagged() -> tuple[FlightUsage, ...]:
    """FLIGHTS with flags: F2 and F3 served one job, which overdosed f-2 and f-3 and
    sprayed outside f-3; F1, sent to f-1, also strayed onto Bình's f-3 (not billed)."""
    f1, f2, f3, f4 = FLIGHTS
    stray = replace(f1, fields=(*f1.fields, on("f-3", 0.01, 0.2)), job_fields=("f-1",))
    return (
        replace(stray, flags=(STRAY,)),
        replace(f2, flags=(DOSE, DOSE3, OFF)),
        replace(f3, flags=(DOSE3,)),
        f4,
    )


def test_a_member_row_holds_the_flags_of_its_fields() -> None:
    rows = by_key(report("member", flagged()))
    assert rows["m-binh"].flags == (DOSE3, OFF)
    # An: the dose on f-2, and F1's stray onto f-3, which F1 is not billed for: a flag of a
    # field outside the flight's rows goes with the flight's work.
    assert set(rows["m-an"].flags) == {STRAY, DOSE}


def test_a_flag_shared_by_a_job_s_flights_counts_once_per_row() -> None:
    rows = by_key(report("drone", flagged()))
    assert rows["d1"].flags.count(DOSE3) == 1  # on F2 and F3: one flag of one entry
    assert set(rows["d1"].flags) == {STRAY, DOSE, DOSE3, OFF}
    assert rows["d2"].flags == ()


def test_day_rows_hold_the_flags_of_the_flights_that_started_that_day() -> None:
    rows = by_key(report("day", flagged()))
    assert set(rows["2024-06-01"].flags) == {STRAY, DOSE, DOSE3, OFF}
    assert rows["2024-06-02"].flags == (DOSE3,)


@pytest.mark.parametrize("group_by", GROUP_BYS)
def test_flags_change_no_figure_and_no_total(group_by: GroupBy) -> None:
    plain = report(group_by, tuple(replace(f, flags=()) for f in flagged()))
    with_flags = report(group_by, flagged())
    assert [replace(r, flags=()) for r in with_flags.rows] == list(plain.rows)
    assert with_flags.totals == plain.totals
    assert with_flags.totals.flags == ()
