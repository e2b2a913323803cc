"""What a job_start says about the spraying (flights.jobs): kept, or flagged and dropped;
the job itself is always kept."""

from __future__ import annotations

from typing import Any

import pytest

from flights.jobs import announcements, check_detail, job_details
from storage.records import Event


def ev(ts: int, kind: str, **attrs: Any) -> Event:
    return Event("htx-a", "d1", ts, kind, attrs)


def test_a_full_job_start_keeps_every_detail() -> None:
    details, problems = job_details(
        {
            "job": "j-1",
            "product": "validan",
            "dose_l_per_ha": 15,
            "pilot_name": " Nguyễn Văn Hưng ",
            "pilot_licence": "UAV-123",
            "drone_registration": "VN-UAV-0001",
            "wind_mps": 2.5,
            "crop": "lúa",
        }
    )
    assert problems == ()
    assert details == {
        "product": "validan",
        "dose_l_per_ha": 15.0,
        "pilot_name": "Nguyễn Văn Hưng",
        "pilot_licence": "UAV-123",
        "drone_registration": "VN-UAV-0001",
        "wind_mps": 2.5,
    }


@pytest.mark.parametrize(
    ("key", "value", "code"),
    [
        ("dose_l_per_ha", 501, "bad_dose_l_per_ha"),
        ("dose_l_per_ha", 0, "bad_dose_l_per_ha"),
        ("dose_l_per_ha", -3, "bad_dose_l_per_ha"),
        ("dose_l_per_ha", "15", "bad_dose_l_per_ha"),
        ("dose_l_per_ha", True, "bad_dose_l_per_ha"),
        ("wind_mps", -0.1, "bad_wind_mps"),
        ("wind_mps", 61, "bad_wind_mps"),
        ("product", "no such/id", "bad_product"),
        ("product", 12, "bad_product"),
        ("pilot_name", "", "bad_pilot_name"),
        ("pilot_licence", "x" * 201, "bad_pilot_licence"),
    ],
)
def test_a_bad_detail_is_named_and_not_kept(key: str, value: Any, code: str) -> None:
    details, problems = job_details(
        {key: value, "pilot_name": "A"} if key != "pilot_name" else {key: value}
    )
    assert key not in details
    assert [(p.code, p.key) for p in problems] == [(code, key)]
    assert key in problems[0].message
    kept, problem = check_detail(key, value)
    assert kept is None
    assert problem is not None


def test_500_l_per_ha_is_the_highest_dose_kept() -> None:
    assert check_detail("dose_l_per_ha", 500) == (500.0, None)


def test_announcements_take_ids_fields_details_and_the_closing_job_end() -> None:
    events = [
        ev(1000, "job_start", job="j-1", field="f1", product="p1", dose_l_per_ha=15),
        ev(3000, "job_start", job="j-1", field="f1", product="p2"),  # restated: start stays
        ev(5000, "job_end"),  # no id: closes the open job
        ev(6000, "job_start", job="j-2", fields=["f2", "f3"], dose_l_per_ha=900),
        ev(7000, "job_start", field="f4"),  # no id: not a job of the diary, but it replaces
        ev(8000, "job_end", job="j-2"),  # closes j-2 by its id
    ]
    found = {a.job: a for a in announcements(events)}
    assert set(found) == {"j-1", "j-2"}
    j1, j2 = found["j-1"], found["j-2"]
    assert (j1.start_ms, j1.end_ms, j1.fields) == (1000, 5000, ("f1",))
    assert j1.details == {"product": "p2"}
    assert (j2.start_ms, j2.end_ms, j2.fields) == (6000, 8000, ("f2", "f3"))
    assert j2.details == {}
    assert [p.code for p in j2.problems] == ["bad_dose_l_per_ha"]
