"""``from``/``to`` parsing: RFC 3339 with offsets or local dates, today in Asia/Ho_Chi_Minh."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.times import (
    MAX_WINDOW_DAYS,
    TimeInputError,
    Window,
    local_day,
    parse_time,
    resolve_window,
    rfc3339,
    to_ms,
)


def utc_ms(year: int, month: int, day: int, hour: int = 0) -> int:
    return to_ms(datetime(year, month, day, hour, tzinfo=UTC))


def test_an_offset_time_is_the_instant_it_names() -> None:
    assert parse_time("from", "2026-11-28T07:00:00+07:00") == utc_ms(2026, 11, 28, 0)


def test_z_means_utc() -> None:
    assert parse_time("from", "2026-11-28T00:00:00Z") == utc_ms(2026, 11, 28, 0)


def test_fractions_are_kept_to_the_millisecond() -> None:
    assert parse_time("from", "2026-11-28T00:00:00.123456789Z") == utc_ms(2026, 11, 28) + 123


def test_a_bare_date_is_local_midnight() -> None:
    assert parse_time("from", "2026-11-28") == utc_ms(2026, 11, 27, 17)


def test_an_unencoded_plus_that_arrived_as_a_space_is_read_as_plus() -> None:
    assert parse_time("from", "2026-11-28T07:00:00 07:00") == utc_ms(2026, 11, 28, 0)


def test_a_negative_offset_is_honoured() -> None:
    assert parse_time("to", "2026-11-27T19:00:00-05:00") == utc_ms(2026, 11, 28, 0)


@pytest.mark.parametrize("text", ["2026-13-01", "2026-02-30", "yesterday", "1764300000000", ""])
def test_bad_input_names_the_parameter_and_shows_an_example(text: str) -> None:
    with pytest.raises(TimeInputError) as err:
        parse_time("from", text)
    message = str(err.value)
    assert message.startswith(f"from: {text!r} is not an RFC 3339 time or a date")
    assert "2026-11-28T07:00:00+07:00" in message


def test_a_time_without_offset_is_refused_with_the_fix() -> None:
    with pytest.raises(TimeInputError, match="has no UTC offset; add one"):
        parse_time("to", "2026-11-28T07:00:00")


def test_an_impossible_offset_is_refused() -> None:
    with pytest.raises(TimeInputError, match="not an RFC 3339 time"):
        parse_time("to", "2026-11-28T07:00:00+25:00")


def test_years_before_1970_are_refused() -> None:
    with pytest.raises(TimeInputError, match="outside 1970-01-01"):
        parse_time("from", "0001-01-01")


def test_outputs_carry_the_local_offset_and_milliseconds() -> None:
    assert rfc3339(utc_ms(2026, 11, 28, 0) + 5) == "2026-11-28T07:00:00.005+07:00"


def test_local_midnight_is_17_00_utc_the_day_before() -> None:
    midnight = utc_ms(2026, 11, 27, 17)
    assert local_day(midnight - 1).isoformat() == "2026-11-27"
    assert local_day(midnight).isoformat() == "2026-11-28"
    assert rfc3339(midnight) == "2026-11-28T00:00:00.000+07:00"


def test_the_default_window_is_the_local_day_containing_now() -> None:
    now = utc_ms(2026, 11, 27, 18)  # 01:00 on the 28th in Hà Nội
    assert resolve_window(None, None, now) == Window(
        utc_ms(2026, 11, 27, 17), utc_ms(2026, 11, 28, 17)
    )


def test_just_before_17_00_utc_today_is_still_the_previous_local_day() -> None:
    now = utc_ms(2026, 11, 27, 17) - 1
    window = resolve_window(None, None, now)
    assert (window.start, window.end) == (
        "2026-11-27T00:00:00.000+07:00",
        "2026-11-28T00:00:00.000+07:00",
    )


def test_only_from_given_runs_to_the_end_of_today() -> None:
    now = utc_ms(2026, 11, 28, 3)
    window = resolve_window("2026-11-01", None, now)
    assert window.start == "2026-11-01T00:00:00.000+07:00"
    assert window.end == "2026-11-29T00:00:00.000+07:00"


def test_to_must_be_after_from() -> None:
    with pytest.raises(TimeInputError, match=r"to \(.*\) must be after from"):
        resolve_window("2026-11-28", "2026-11-28", utc_ms(2026, 11, 28))


def test_a_defaulted_end_that_lands_before_the_other_says_so() -> None:
    with pytest.raises(TimeInputError, match="from defaulted to today"):
        resolve_window(None, "2026-01-01", utc_ms(2026, 11, 28))


def test_a_window_longer_than_the_limit_is_refused() -> None:
    with pytest.raises(TimeInputError, match=f"at most {MAX_WINDOW_DAYS} days"):
        resolve_window("2025-01-01", "2026-01-03", utc_ms(2026, 11, 28))


def test_a_window_of_exactly_the_limit_is_accepted() -> None:
    window = resolve_window("2025-01-01", "2026-01-02", utc_ms(2026, 11, 28))
    assert window.end_ms - window.start_ms == MAX_WINDOW_DAYS * 86_400_000


@given(st.integers(min_value=0, max_value=utc_ms(9000, 1, 1)))
def test_what_we_print_parses_back_to_the_same_millisecond(ms: int) -> None:
    assert parse_time("from", rfc3339(ms)) == ms


# Vietnam kept UTC+08:00 until 1975; every time since is UTC+07:00 all year.
@given(st.integers(min_value=utc_ms(1976, 1, 1), max_value=utc_ms(9000, 1, 1)))
def test_the_default_window_is_one_local_day_around_now(now: int) -> None:
    window = resolve_window(None, None, now)
    assert window.start_ms <= now < window.end_ms
    assert window.end_ms - window.start_ms == 86_400_000
    assert window.start.endswith("T00:00:00.000+07:00")
    assert (window.start_ms + 7 * 3_600_000) % 86_400_000 == 0
    assert timedelta(milliseconds=window.end_ms - now) <= timedelta(days=1)
