"""Known answers for the diary's local times, safe-harvest dates and sào (flights.diary)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from flights.diary import ha_to_sao, local_date, local_time, safe_harvest_date


def ms(text: str) -> int:
    """Epoch ms of an RFC 3339 time."""
    return int(datetime.fromisoformat(text).timestamp() * 1000)


@pytest.mark.parametrize(
    ("last_spray", "phi", "safe"),
    [
        # A job ending 23:30 local is on that local day (16:30 UTC the same day).
        ("2025-11-28T23:30:00+07:00", 7, date(2025, 12, 5)),
        ("2025-11-28T16:30:00+00:00", 7, date(2025, 12, 5)),
        # 00:30 local is the next local day, although it is still the 28th in UTC.
        ("2025-11-29T00:30:00+07:00", 7, date(2025, 12, 6)),
        ("2025-11-28T17:30:00+00:00", 7, date(2025, 12, 6)),
        # The last millisecond of a local day and the first of the next.
        ("2025-11-28T23:59:59.999+07:00", 0, date(2025, 11, 28)),
        ("2025-11-29T00:00:00+07:00", 0, date(2025, 11, 29)),
        # Month, year and leap-day edges.
        ("2025-12-31T23:30:00+07:00", 1, date(2026, 1, 1)),
        ("2028-02-27T08:00:00+07:00", 2, date(2028, 2, 29)),
        ("2027-02-27T08:00:00+07:00", 2, date(2027, 3, 1)),
        ("2025-06-10T06:00:00+07:00", 14, date(2025, 6, 24)),
    ],
)
def test_safe_harvest_date_is_the_local_date_of_the_last_spraying_plus_phi(
    last_spray: str, phi: int, safe: date
) -> None:
    assert safe_harvest_date(ms(last_spray), phi) == safe


def test_local_time_is_utc_plus_seven_all_year() -> None:
    for month in (1, 4, 7, 10):
        moment = datetime(2025, month, 15, 12, 0, tzinfo=UTC)
        local = local_time(int(moment.timestamp() * 1000))
        assert local.utcoffset() is not None
        assert local.utcoffset().total_seconds() == 7 * 3600  # type: ignore[union-attr]
        assert local.hour == 19
    assert local_date(ms("2025-11-28T16:59:59.999+00:00")) == date(2025, 11, 28)
    assert local_date(ms("2025-11-28T17:00:00+00:00")) == date(2025, 11, 29)


def test_one_sao_bac_bo_is_360_square_metres() -> None:
    assert ha_to_sao(1.0) == pytest.approx(10_000 / 360)
    assert ha_to_sao(0.036) == pytest.approx(1.0)
