"""Which job a flight served, from the drone's job_start / job_end events."""

from __future__ import annotations

from typing import Any

import pytest

from flights.jobs import JOB_LOOKBACK_MS, JobInfo, job_of, named_fields
from storage.records import Event


def event(ts_ms: int, kind: str, **attrs: Any) -> Event:
    return Event("htx-a", "d1", ts_ms, kind, attrs)


def test_a_flight_serves_the_job_started_before_it_took_off() -> None:
    events = [event(1_000, "job_start", job="j-1", field="f-12")]
    assert job_of(5_000, 9_000, events) == JobInfo(("j-1",), ("f-12",))


def test_the_job_lasts_over_refills_until_job_end() -> None:
    events = [
        event(1_000, "job_start", job="j-1", field="f-12"),
        event(9_500, "refill"),
        event(20_000, "job_end", job="j-1"),
    ]
    assert job_of(10_000, 15_000, events).fields == ("f-12",)
    assert job_of(25_000, 30_000, events) == JobInfo()


def test_a_job_started_during_the_flight_counts_with_the_open_one() -> None:
    events = [
        event(1_000, "job_start", job="j-1", field="f-12"),
        event(6_000, "job_start", job="j-2", fields=["f-13", "f-14"]),
    ]
    assert job_of(5_000, 9_000, events) == JobInfo(("j-1", "j-2"), ("f-12", "f-13", "f-14"))


def test_the_latest_job_start_before_take_off_wins() -> None:
    events = [
        event(1_000, "job_start", job="j-1", field="f-12"),
        event(2_000, "job_start", job="j-2", field="f-13"),
    ]
    assert job_of(5_000, 9_000, events).fields == ("f-13",)


def test_a_job_ended_and_restarted_at_one_instant_is_open() -> None:
    events = [event(1_000, "job_end"), event(1_000, "job_start", field="f-12")]
    assert job_of(5_000, 9_000, events).fields == ("f-12",)


def test_a_job_started_after_landing_is_not_this_flights() -> None:
    assert job_of(5_000, 9_000, [event(9_001, "job_start", field="f-12")]) == JobInfo()


def test_without_job_events_nothing_is_known() -> None:
    assert job_of(5_000, 9_000, [event(1_000, "takeoff")]) == JobInfo()


HOUR_MS = 3_600_000


def test_a_job_start_is_looked_for_within_the_lookback_before_each_flight() -> None:
    events = [event(0, "job_start", job="j-1", field="f-12")]
    assert job_of(JOB_LOOKBACK_MS, JOB_LOOKBACK_MS + HOUR_MS, events).fields == ("f-12",)
    assert job_of(JOB_LOOKBACK_MS + 1, JOB_LOOKBACK_MS + HOUR_MS, events) == JobInfo()


def test_a_never_closed_job_from_days_ago_does_not_bill_a_later_flight() -> None:
    # Both flights are in one read; only the first is within the lookback of the job_start.
    events = [event(1_000, "job_start", job="j-1", field="f-12")]
    assert job_of(2 * HOUR_MS, 3 * HOUR_MS, events).fields == ("f-12",)
    assert job_of(3 * 24 * HOUR_MS, 3 * 24 * HOUR_MS + HOUR_MS, events) == JobInfo()


def test_a_never_closed_job_followed_by_another_job_start_does_not_bill_later_flights() -> None:
    events = [
        event(1_000, "job_start", job="j-1", field="f-12"),
        event(2_000, "job_start", job="j-2", field="f-13"),
    ]
    assert job_of(5_000, 9_000, events) == JobInfo(("j-2",), ("f-13",))


def test_a_job_start_at_the_flights_end_is_not_this_flights() -> None:
    assert job_of(5_000, 9_000, [event(9_000, "job_start", field="f-12")]) == JobInfo()


def test_a_job_start_at_the_take_off_instant_is_served() -> None:
    assert job_of(5_000, 9_000, [event(5_000, "job_start", field="f-12")]).fields == ("f-12",)


def test_a_job_end_closes_only_the_job_with_its_id() -> None:
    events = [
        event(1_000, "job_start", job="j-1", field="f-12"),
        event(2_000, "job_end", job="j-0"),
    ]
    assert job_of(5_000, 9_000, events) == JobInfo(("j-1",), ("f-12",))


def test_a_job_end_of_a_replaced_job_leaves_the_newer_job_open() -> None:
    events = [
        event(1_000, "job_start", job="j-1", field="f-12"),
        event(2_000, "job_start", job="j-2", field="f-13"),
        event(3_000, "job_end", job="j-1"),
    ]
    assert job_of(5_000, 9_000, events) == JobInfo(("j-2",), ("f-13",))


def test_a_job_end_without_an_id_closes_the_open_job() -> None:
    events = [event(1_000, "job_start", job="j-1", field="f-12"), event(2_000, "job_end")]
    assert job_of(5_000, 9_000, events) == JobInfo()


@pytest.mark.parametrize(
    ("attrs", "fields"),
    [
        ({"field": "f-1"}, ("f-1",)),
        ({"fields": ["f-1", "f-2", "f-1"]}, ("f-1", "f-2")),
        ({"field": "f-1", "fields": ["f-2"]}, ("f-1", "f-2")),
        ({"field": 12, "fields": "f-1"}, ()),
        ({"fields": ["f-1", None, 3, ""]}, ("f-1",)),
        ({}, ()),
    ],
)
def test_fields_are_named_by_field_or_fields_and_other_values_ignored(
    attrs: dict[str, Any], fields: tuple[str, ...]
) -> None:
    assert named_fields(attrs) == fields
