"""The ``TelemetryStore`` contract, run unchanged against SQLite and a real InfluxDB."""

from __future__ import annotations

import math
import struct
import uuid
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage.contract import BBox, StoreDataError, TelemetryStore
from storage.records import OPTIONAL_NUMBER_KEYS, DroneLastSeen, Event, Sample

pytestmark = pytest.mark.integration

T0 = 1_700_000_000_000
ALL_TIME = (-(2**62), 2**62)
TRICKY = 'a,b c=d "quoted" back\\slash\\ new\nline\r\ttab é 農'


def full_sample(ts_ms: int = T0, coop: str = "htx-dt", drone: str = "dt-01", **kw: Any) -> Sample:
    values: dict[str, Any] = {
        "lat": 21.081234567890123,
        "lon": 106.52345678901234,
        "spraying": True,
        "seq": 2**62 + 7,
        "alt_m": 0.1 + 0.2,
        "speed_mps": 5e-324,
        "heading_deg": 359.99999999999994,
        "battery_pct": 100.0,
        "flow_lpm": 1.7976931348623157e308,
        "tank_l": -2.5e-300,
        "swath_m": 5.0,
        "fix": "rtk_fixed",
    }
    values.update(kw)
    return Sample(coop, drone, ts_ms, **values)


def bits(value: float | None) -> bytes | None:
    return None if value is None else struct.pack("<d", value)


def assert_bit_exact(got: Sample, want: Sample) -> None:
    assert got == want
    for name in ("lat", "lon", *OPTIONAL_NUMBER_KEYS):
        assert bits(getattr(got, name)) == bits(getattr(want, name)), name
    assert type(got.spraying) is bool
    assert got.seq is None or type(got.seq) is int


def test_every_field_round_trips_bit_exact(store: TelemetryStore) -> None:
    sample = full_sample()
    store.write_samples([sample])
    [got] = store.drone_samples("htx-dt", "dt-01", *ALL_TIME)
    assert_bit_exact(got, sample)
    assert all(isinstance(getattr(got, f), float) for f in ("battery_pct", "swath_m"))


def test_absent_optional_fields_read_back_as_none(store: TelemetryStore) -> None:
    bare = Sample("htx-dt", "dt-01", T0, 21.0, 106.0, spraying=False)
    store.write_samples([bare])
    assert store.drone_samples("htx-dt", "dt-01", *ALL_TIME) == [bare]


def test_whole_floats_stay_floats(store: TelemetryStore) -> None:
    sample = full_sample(lat=21.0, lon=106.0, alt_m=3.0, battery_pct=0.0)
    store.write_samples([sample])
    [got] = store.drone_samples("htx-dt", "dt-01", *ALL_TIME)
    assert (type(got.lat), type(got.alt_m), type(got.battery_pct)) == (float, float, float)
    assert got == sample


finite = st.floats(allow_nan=False, allow_infinity=False).filter(
    lambda x: not (x == 0.0 and math.copysign(1.0, x) < 0)  # InfluxDB's JSON writes -0.0 as -0
)
optional_finite = st.none() | finite


samples = st.builds(
    Sample,
    coop=st.just("htx-dt"),
    drone=st.just("dt-01"),
    ts_ms=st.integers(T0 - 10**9, T0 + 10**9),
    lat=st.floats(-90, 90).map(lambda x: x + 0.0),  # -0.0 + 0.0 is 0.0
    lon=st.floats(-180, 180).map(lambda x: x + 0.0),
    spraying=st.booleans(),
    seq=st.none() | st.integers(-(2**63), 2**63 - 1),
    alt_m=optional_finite,
    speed_mps=optional_finite,
    heading_deg=optional_finite,
    battery_pct=optional_finite,
    flow_lpm=optional_finite,
    tank_l=optional_finite,
    swath_m=optional_finite,
    fix=st.none() | st.text(st.characters(exclude_categories=["Cs"], min_codepoint=1)),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sample=samples)
def test_any_sample_round_trips_exactly(store: TelemetryStore, sample: Sample) -> None:
    sample = replace(sample, drone=f"dt-{uuid.uuid4().hex[:12]}")  # examples share the store
    store.write_samples([sample])
    [got] = store.drone_samples(sample.coop, sample.drone, *ALL_TIME)
    assert_bit_exact(got, sample)


def test_strings_with_separators_quotes_backslashes_and_newlines_round_trip(
    store: TelemetryStore,
) -> None:
    sample = full_sample(fix=TRICKY)
    event = Event("htx-dt", "dt-01", T0, "error", {"message": TRICKY, TRICKY: [1, 2.5, None]})
    store.write_samples([sample, full_sample(T0 + 1, fix="\\")])
    store.write_events([event])
    got = store.drone_samples("htx-dt", "dt-01", *ALL_TIME)
    assert [s.fix for s in got] == [TRICKY, "\\"]
    assert store.drone_events("htx-dt", "dt-01", *ALL_TIME) == [event]


def test_rewriting_the_same_drone_and_time_replaces_the_sample(store: TelemetryStore) -> None:
    first = full_sample()
    second = full_sample(lat=21.5, lon=106.5, spraying=False, seq=1, alt_m=9.0, fix="3d")
    store.write_samples([first])
    store.write_samples([second])
    store.write_samples([second])
    assert store.drone_samples("htx-dt", "dt-01", *ALL_TIME) == [second]


def test_duplicates_within_one_write_are_stored_once(store: TelemetryStore) -> None:
    sample = full_sample()
    store.write_samples([sample, sample, sample])
    assert store.drone_samples("htx-dt", "dt-01", *ALL_TIME) == [sample]


def test_window_is_start_inclusive_end_exclusive(store: TelemetryStore) -> None:
    samples = [full_sample(T0 + i * 1000, seq=i) for i in range(5)]
    store.write_samples(samples)
    got = store.drone_samples("htx-dt", "dt-01", T0 + 1000, T0 + 3000)
    assert [s.ts_ms for s in got] == [T0 + 1000, T0 + 2000]
    assert store.drone_samples("htx-dt", "dt-01", T0 + 5000, T0 + 9000) == []


def test_samples_come_back_oldest_first_whatever_the_write_order(store: TelemetryStore) -> None:
    samples = [full_sample(T0 + i, seq=i) for i in (3, 1, 4, 0, 2)]
    store.write_samples(samples)
    got = store.drone_samples("htx-dt", "dt-01", *ALL_TIME)
    assert [s.seq for s in got] == [0, 1, 2, 3, 4]


def test_timestamps_keep_millisecond_precision(store: TelemetryStore) -> None:
    samples = [full_sample(T0 + i, seq=i) for i in range(3)]
    store.write_samples(samples)
    assert store.drone_samples("htx-dt", "dt-01", T0 + 1, T0 + 2) == [samples[1]]
    assert store.drone_samples("htx-dt", "dt-01", *ALL_TIME) == samples


def test_other_drones_and_coops_are_excluded(store: TelemetryStore) -> None:
    mine = full_sample(drone="dt-01")
    store.write_samples(
        [
            mine,
            full_sample(drone="dt-02"),
            full_sample(coop="htx-other", drone="dt-01"),
            full_sample(coop="htx", drone="dt-01"),
            full_sample(drone="dt-0"),
        ]
    )
    assert store.drone_samples("htx-dt", "dt-01", *ALL_TIME) == [mine]


def test_area_query_keeps_samples_inside_the_box_edges_included(store: TelemetryStore) -> None:
    box = BBox(min_lon=106.50, min_lat=21.05, max_lon=106.55, max_lat=21.10)
    inside = [
        full_sample(T0 + 2, drone="dt-02", lat=21.07, lon=106.52),
        full_sample(T0 + 1, drone="dt-01", lat=21.05, lon=106.50),  # corner
        full_sample(T0 + 2, drone="dt-01", lat=21.10, lon=106.55),  # opposite corner
        full_sample(T0 + 2, coop="htx-a", drone="dt-09", lat=21.08, lon=106.53),
    ]
    outside = [
        full_sample(T0 + 3, drone="dt-01", lat=21.11, lon=106.52),
        full_sample(T0 + 4, drone="dt-01", lat=21.07, lon=106.4999),
        full_sample(T0 + 5, drone="dt-03", lat=21.04, lon=106.60),
    ]
    store.write_samples(inside + outside)
    got = store.samples_in_area(box, *ALL_TIME)
    assert got == sorted(inside, key=lambda s: (s.ts_ms, s.coop, s.drone))


def test_area_query_respects_the_time_window(store: TelemetryStore) -> None:
    box = BBox(106.0, 21.0, 107.0, 22.0)
    samples = [full_sample(T0 + i * 100, seq=i) for i in range(4)]
    store.write_samples(samples)
    assert store.samples_in_area(box, T0 + 100, T0 + 300) == samples[1:3]


def test_drones_lists_each_drone_with_its_latest_sample(store: TelemetryStore) -> None:
    store.write_samples(
        [
            full_sample(T0 + 5000, drone="dt-01", lat=21.2, lon=106.2, battery_pct=50.0),
            full_sample(T0, drone="dt-01", lat=21.1, lon=106.1, battery_pct=90.0),
            full_sample(T0 + 10, coop="htx-b", drone="dt-01", lat=21.3, lon=106.3),
        ]
    )
    store.write_samples([full_sample(T0 + 1000, drone="dt-01", lat=21.9, lon=106.9)])
    store.write_samples([full_sample(T0 + 7000, drone="dt-02", battery_pct=None)])
    assert store.drones() == [
        DroneLastSeen("htx-b", "dt-01", T0 + 10, 21.3, 106.3, 100.0),
        DroneLastSeen("htx-dt", "dt-01", T0 + 5000, 21.2, 106.2, 50.0),
        DroneLastSeen("htx-dt", "dt-02", T0 + 7000, 21.081234567890123, 106.52345678901234, None),
    ]


def test_drones_is_empty_before_any_sample(store: TelemetryStore) -> None:
    assert store.drones() == []


def test_events_round_trip_and_two_types_at_one_instant_both_stay(store: TelemetryStore) -> None:
    events = [
        Event("htx-dt", "dt-01", T0, "takeoff", {}),
        Event("htx-dt", "dt-01", T0, "spray_on", {"nozzles": 4, "rate": 1.25}),
        Event("htx-dt", "dt-01", T0 + 1, "refill", {"litres": 10.0, "note": None, "ok": True}),
        Event("htx-dt", "dt-02", T0, "takeoff", {}),
    ]
    store.write_events(events)
    got = store.drone_events("htx-dt", "dt-01", *ALL_TIME)
    assert got == sorted(events[:3], key=lambda e: (e.ts_ms, e.type))
    assert store.drone_events("htx-dt", "dt-01", T0 + 1, T0 + 2) == [events[2]]


def test_rewriting_an_event_replaces_it(store: TelemetryStore) -> None:
    store.write_events([Event("htx-dt", "dt-01", T0, "error", {"code": 1})])
    store.write_events([Event("htx-dt", "dt-01", T0, "error", {"code": 2})])
    assert store.drone_events("htx-dt", "dt-01", *ALL_TIME) == [
        Event("htx-dt", "dt-01", T0, "error", {"code": 2})
    ]


def test_more_than_ten_thousand_rows_read_back_complete(store: TelemetryStore) -> None:
    samples = [full_sample(T0 + i * 100, seq=i, lat=21.0 + i * 1e-6) for i in range(12_345)]
    store.write_samples(samples)
    assert store.drone_samples("htx-dt", "dt-01", *ALL_TIME) == samples
    assert len(store.samples_in_area(BBox(106.0, 20.0, 107.0, 22.0), *ALL_TIME)) == 12_345


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_a_data_error(store: TelemetryStore, bad: float) -> None:
    with pytest.raises(StoreDataError, match="alt_m"):
        store.write_samples([full_sample(alt_m=bad)])


def test_empty_writes_do_nothing(store: TelemetryStore) -> None:
    store.write_samples([])
    store.write_events([])
    assert store.drones() == []


def test_ping_answers(store: TelemetryStore) -> None:
    store.ping()


def test_a_replaced_sample_is_still_the_latest_in_drones(store: TelemetryStore) -> None:
    store.write_samples([full_sample(T0)])
    store.write_samples([replace(full_sample(T0), lat=21.5, lon=106.5)])
    [seen] = store.drones()
    assert (seen.ts_ms, seen.lat, seen.lon) == (T0, 21.5, 106.5)
