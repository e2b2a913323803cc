"""Tariff history in usage reports: each flight is priced at the tariff in force on the local
day it started, per hectare or per sào, and every grouping bills the same total."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reports.usage import (
    GROUP_BYS,
    TARIFF_UNITS,
    UNASSIGNED,
    FieldUsage,
    FlightUsage,
    GroupBy,
    NoTariffError,
    Tariff,
    UsageInputError,
    UsageReport,
    tariff_periods,
    usage_report,
)
from tests.unit.test_usage_report import FLIGHTS, flight, flight_usages

D = Decimal
JUNE_2 = date(2024, 6, 2)


def billed(
    flights: tuple[FlightUsage, ...] | list[FlightUsage],
    tariffs: list[Tariff],
    group_by: GroupBy = "day",
    **options: Any,
) -> UsageReport:
    return usage_report(flights, group_by=group_by, tariffs=tariffs, **options)


def one_field_flight(fid: str, start: str, covered_ha: float) -> FlightUsage:
    return flight(
        fid, "d1", start, 600, 1.0, FieldUsage(f"f-{fid}", "", "m", 2.0, covered_ha, 1, 1)
    )


def test_a_price_change_never_reprices_flights_flown_before_it() -> None:
    # F1 and F2 fly on 1 June (0.4 + 0.9 ha), F3 on 2 June (0.4 ha).
    r = billed(FLIGHTS, [Tariff(D(300_000)), Tariff(D(400_000), "ha", JUNE_2)])
    assert [(row.key, row.amount_vnd) for row in r.rows] == [
        ("2024-06-01", 390_000),
        ("2024-06-02", 160_000),
    ]
    assert r.totals.amount_vnd == 550_000


@pytest.mark.parametrize(
    ("start", "amount"),
    [
        ("2024-06-01T23:59:59.999+07:00", 100),
        ("2024-06-02T00:00:00+07:00", 200),
        ("2024-06-01T17:00:00+00:00", 200),  # the same instant in UTC
    ],
)
def test_a_tariff_starts_at_midnight_in_vietnam(start: str, amount: int) -> None:
    r = billed([one_field_flight("a", start, 1.0)], [Tariff(D(100)), Tariff(D(200), "ha", JUNE_2)])
    assert r.totals.amount_vnd == amount


def test_the_tariff_day_does_not_move_with_the_reports_time_zone() -> None:
    f = one_field_flight("a", "2024-06-01T17:30:00+00:00", 1.0)  # 00:30 on 2 June in Hà Nội
    tariffs = [Tariff(D(100)), Tariff(D(200), "ha", JUNE_2)]
    r = billed([f], tariffs, tz="UTC")
    assert (r.rows[0].key, r.totals.amount_vnd) == ("2024-06-01", 200)


def test_a_later_tariff_for_the_same_day_corrects_the_earlier_one() -> None:
    r = billed(FLIGHTS, [Tariff(D(300_000)), Tariff(D(250_000))])
    assert r.totals.amount_vnd == 425_000  # 1.7 ha at the correction's price


def test_one_sao_at_a_per_sao_price_costs_exactly_that_price() -> None:
    # 1 sào = 360 m² = 0.036 ha; ha x 250/9 is computed exactly, not as 0.036 x 27.777…
    r = billed(
        [one_field_flight("a", "2024-06-01T08:00:00+07:00", 0.036)], [Tariff(D(10_000), "sao")]
    )
    assert r.totals.exact_vnd == 10_000
    assert r.totals.amount_vnd == 10_000


def test_a_hectare_at_a_per_sao_price_is_250_ninths_of_it() -> None:
    r = billed(
        [one_field_flight("a", "2024-06-01T08:00:00+07:00", 1.0)], [Tariff(D(10_000), "sao")]
    )
    assert r.totals.exact_vnd == Fraction(2_500_000, 9)  # 277,777.78
    assert r.totals.amount_vnd == 277_778


def test_a_cooperative_can_move_from_per_ha_to_per_sao() -> None:
    r = billed(FLIGHTS, [Tariff(D(300_000)), Tariff(D(9_000), "sao", JUNE_2)])
    # 1 June: 1.3 ha x 300,000; 2 June: 0.4 ha x 9,000 x 250/9 = 100,000.
    assert [row.amount_vnd for row in r.rows] == [390_000, 100_000]


def test_a_flight_before_the_first_tariff_is_refused_naming_its_day_and_the_command() -> None:
    with pytest.raises(NoTariffError) as caught:
        billed(FLIGHTS, [Tariff(D(400_000), "ha", JUNE_2)])
    message = str(caught.value)
    assert message.startswith("flight F1 flew on 2024-06-01 (Asia/Ho_Chi_Minh), before")
    assert "first tariff (from 2024-06-02)" in message
    assert "agridrone coops set htx-dt --tariff-vnd-per-ha N --from 2024-06-01" in message
    assert (caught.value.flight_id, caught.value.day) == ("F1", date(2024, 6, 1))


def test_without_any_tariff_a_flight_over_a_field_cannot_be_priced() -> None:
    with pytest.raises(NoTariffError, match=r"cooperative htx-dt has no tariff"):
        billed(FLIGHTS, [])


def test_a_flight_that_sprayed_no_field_needs_no_tariff() -> None:
    r = billed(FLIGHTS[3:], [Tariff(D(400_000), "ha", date(2030, 1, 1))])
    assert (r.totals.flights, r.totals.amount_vnd, r.tariffs) == (1, 0, ())


def test_the_report_lists_the_tariff_periods_it_used() -> None:
    tariffs = [
        Tariff(D(500_000), "ha", date(2024, 6, 10)),
        Tariff(D(300_000)),
        Tariff(D(400_000), "ha", JUNE_2),
    ]
    used = [
        (
            u.period.tariff.vnd,
            u.period.tariff.effective_from,
            u.period.until,
            u.flights,
            u.sprayed_ha,
        )
        for u in billed(FLIGHTS, tariffs).tariffs
    ]
    assert used == [
        (D(300_000), None, JUNE_2, 2, D("1.3")),
        (D(400_000), JUNE_2, date(2024, 6, 10), 1, D("0.4")),
    ]


def test_the_schedule_orders_tariffs_by_day_and_keeps_the_last_of_a_day() -> None:
    periods = tariff_periods(
        [Tariff(D(2), "ha", JUNE_2), Tariff(D(1)), Tariff(D(3), "sao", JUNE_2)]
    )
    assert [(p.tariff.vnd, p.tariff.unit, p.until) for p in periods] == [
        (D(1), "ha", JUNE_2),
        (D(3), "sao", None),
    ]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tariffs": [Tariff(D(1))], "tariff_vnd_per_ha": 1}, "give either tariffs"),
        ({}, "give either tariffs"),
    ],
)
def test_exactly_one_way_of_giving_prices(options: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageInputError, match=message):
        usage_report(FLIGHTS, group_by="member", **options)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Tariff(1.5), "tariff 1.5: give whole đồng per ha"),  # type: ignore[arg-type]
        (lambda: Tariff(D(-1), "sao"), "tariff -1 VND/sào: must be"),
        (lambda: Tariff(D(1), "mau"), "tariff unit 'mau' unknown; use one of ha, sao"),  # type: ignore[arg-type]
    ],
)
def test_a_bad_tariff_is_refused(make: Any, message: str) -> None:
    with pytest.raises(UsageInputError, match=re.escape(message)):
        make()


# --- invariants ---------------------------------------------------------------------------

HCM = ZoneInfo("Asia/Ho_Chi_Minh")


@st.composite
def tariff_histories(draw: st.DrawFn) -> list[Tariff]:
    """A price from the beginning, then changes on days around the flights' week (Nov 2023)."""
    price = st.integers(0, 2_000_000).map(Decimal)
    unit = st.sampled_from(TARIFF_UNITS)
    first = Tariff(draw(price), draw(unit))
    later = draw(
        st.lists(
            st.builds(Tariff, price, unit, st.dates(date(2023, 11, 10), date(2023, 11, 25))),
            max_size=5,
        )
    )
    return [first, *later]


def price_on(tariffs: list[Tariff], start_ms: int) -> Fraction:
    """The oracle: the per-ha price of the latest-set tariff of the latest day ≤ the flight's."""
    day = datetime.fromtimestamp(start_ms / 1000, tz=HCM).date()
    ranked = [
        ((t.effective_from or date.min), i, t)
        for i, t in enumerate(tariffs)
        if t.effective_from is None or t.effective_from <= day
    ]
    t = max(ranked, key=lambda r: (r[0], r[1]))[2]
    return Fraction(t.vnd) * (Fraction(250, 9) if t.unit == "sao" else 1)


def exact_by_key(
    flights: list[FlightUsage], tariffs: list[Tariff], group_by: GroupBy
) -> dict[str, Fraction]:
    out: dict[str, Fraction] = {}
    for f in flights:
        price = price_on(tariffs, f.start_ms)
        for p in f.fields:
            key = {
                "member": p.owner or UNASSIGNED,
                "field": p.field_id,
                "drone": f.drone,
                "day": datetime.fromtimestamp(f.start_ms // 1000, tz=HCM).date().isoformat(),
            }[group_by]
            ha = Fraction(Decimal(repr(p.covered_ha)).quantize(Decimal("0.000001")))
            out[key] = out.get(key, Fraction(0)) + ha * price
    return out


@settings(max_examples=150, deadline=None)
@given(flight_usages(), tariff_histories())
def test_every_grouping_bills_the_same_total_and_its_rows_add_up_to_it(
    flights: list[FlightUsage], tariffs: list[Tariff]
) -> None:
    reports = {g: billed(flights, tariffs, g) for g in GROUP_BYS}
    exact_total = sum(exact_by_key(flights, tariffs, "drone").values(), Fraction(0))
    expected_total = int((exact_total + Fraction(1, 2)) // 1)
    for group_by, r in reports.items():
        assert r.totals.amount_vnd == expected_total, group_by
        assert sum(row.amount_vnd for row in r.rows) == expected_total, group_by
        oracle = exact_by_key(flights, tariffs, group_by)
        for row in r.rows:
            assert row.exact_vnd == oracle.get(row.key, 0), (group_by, row.key)
            assert abs(row.amount_vnd - row.exact_vnd) < 1, (group_by, row.key)
