"""``implausible_jump``: the per-drone filter (pure) and the worker's decoder using it."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.inbox import Received
from ingest.jumps import (
    CONFIRM_SAMPLES,
    IMPLAUSIBLE_JUMP,
    MAX_SPEED_MPS,
    SLACK_M,
    JumpFilter,
    distance_m,
)
from ingest.wire import telemetry_topic
from ingest.worker import decode_batch
from storage.records import DroneLastSeen

LAT0, LON0 = 21.08, 106.52
T0 = 1_795_869_000_000
M_PER_DEG_LAT = 111_320.0


def north(metres: float) -> float:
    return LAT0 + metres / M_PER_DEG_LAT


def test_distance_matches_a_known_degree() -> None:
    assert distance_m(LAT0, LON0, north(1000.0), LON0) == pytest.approx(1000.0, rel=1e-9)
    assert MAX_SPEED_MPS == 40.0


def test_a_one_off_glitch_is_refused_and_the_samples_around_it_kept() -> None:
    f = JumpFilter()
    assert f.check("c", "d", T0, LAT0, LON0) is None
    assert f.check("c", "d", T0 + 100, north(0.5), LON0) is None
    glitch = f.check("c", "d", T0 + 200, north(900.0), LON0)
    assert glitch is not None
    assert "900 m from the drone's previous sample (ts=1795869000100, +0.1 s)" in glitch.detail
    assert "8995 m/s, over the 40 m/s limit" in glitch.detail
    # The next good sample is compared with the last good one, not with the glitch.
    assert f.check("c", "d", T0 + 300, north(1.5), LON0) is None


def test_the_limit_is_speed_times_time_plus_the_noise_slack() -> None:
    f = JumpFilter()
    f.check("c", "d", T0, LAT0, LON0)
    limit = MAX_SPEED_MPS * 2.0 + SLACK_M  # 85 m in 2 s
    assert f.check("c", "d", T0 + 2000, north(limit + 0.5), LON0) is not None
    assert f.check("c", "d", T0 + 2000, north(limit - 0.5), LON0) is None


def test_drones_are_checked_apart() -> None:
    f = JumpFilter()
    f.check("c", "a", T0, LAT0, LON0)
    assert f.check("c", "b", T0 + 100, north(5000.0), LON0) is None  # b's first sample
    assert f.check("c", "a", T0 + 200, north(1.0), LON0) is None


def test_two_places_at_the_same_instant_are_a_jump_one_place_a_duplicate() -> None:
    f = JumpFilter()
    f.check("c", "d", T0, LAT0, LON0)
    assert f.check("c", "d", T0, LAT0, LON0) is None
    jump = f.check("c", "d", T0, north(50.0), LON0)
    assert jump is not None
    assert "at the same instant" in jump.detail


def test_a_wrong_anchor_is_given_up_after_confirm_samples_that_agree() -> None:
    """The first sample after a restart was the glitch: the flight goes on after CONFIRM."""
    f = JumpFilter()
    f.check("c", "d", T0, north(-3000.0), LON0)  # the glitch became the anchor
    outcomes = [f.check("c", "d", T0 + 100 * i, north(0.5 * i), LON0) for i in range(1, 12)]
    refused = [o is not None for o in outcomes]
    assert refused == [True] * CONFIRM_SAMPLES + [False] * (11 - CONFIRM_SAMPLES)


def test_a_seeded_anchor_checks_the_first_sample_after_a_restart() -> None:
    f = JumpFilter()
    f.seed([DroneLastSeen("c", "d", T0, LAT0, LON0)])
    assert f.check("c", "d", T0 + 1000, north(2000.0), LON0) is not None
    assert f.check("c", "d", T0 + 1100, north(10.0), LON0) is None


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="max_speed_mps > 0"):
        JumpFilter(max_speed_mps=0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(50, 3000), st.floats(0, 39.0)), min_size=1, max_size=60),
    st.lists(st.integers(0, 59), max_size=5, unique=True),
)
def test_a_flyable_track_loses_only_its_glitches(
    legs: list[tuple[int, float]], glitch_at: list[int]
) -> None:
    """Any track flown under the speed limit is kept whole, and isolated glitches (never two
    in a row) are each refused while every good sample is kept."""
    glitches = {i for i in glitch_at if i < len(legs) and i - 1 not in glitch_at}
    f = JumpFilter()
    f.check("c", "d", T0, LAT0, LON0)
    t, y = T0, 0.0
    for i, (dt_ms, speed) in enumerate(legs):
        t += dt_ms
        if i in glitches:
            assert f.check("c", "d", t, north(y + 10_000.0), LON0) is not None
            continue
        y += speed * dt_ms / 1000.0
        assert f.check("c", "d", t, north(y), LON0) is None


# --- the decoder ------------------------------------------------------------------------------


def received(samples: list[dict[str, object]], drone: str = "d1") -> Received:
    payload = orjson.dumps({"v": 1, "samples": samples})
    return Received(0, 0, 1, telemetry_topic("htx", drone), payload, T0 + 60_000)


def sample(i: int, metres: float) -> dict[str, object]:
    return {"ts": T0 + 100 * i, "lat": north(metres), "lon": LON0, "spraying": True}


@pytest.mark.parametrize("rows", [True, False])
def test_the_decoder_refuses_jumps_across_batches_with_one_record_per_message(rows: bool) -> None:
    jumps = JumpFilter()
    first = decode_batch([received([sample(0, 0.0), sample(1, 0.5)])], rows=rows, jumps=jumps)
    assert first.sample_count() == 2
    second = decode_batch(
        [received([sample(2, 1.0), sample(3, 5000.0), sample(4, 6000.0), sample(5, 1.5)])],
        rows=rows,
        jumps=jumps,
    )
    assert second.sample_count() == 2
    kept = [s.ts_ms for s in second.samples] + [r[0] for g in second.rows for r in g.rows]
    assert kept == [T0 + 200, T0 + 500]
    (record,) = second.rejected
    assert (record.reason, record.count) == (IMPLAUSIBLE_JUMP, 2)
    assert "(and 1 more)" in record.detail


def test_a_jump_beside_a_bad_sample_counts_both_reasons() -> None:
    jumps = JumpFilter()
    decode_batch([received([sample(0, 0.0)])], jumps=jumps)
    bad: dict[str, object] = {"ts": T0 + 100, "lat": 95.0, "lon": LON0, "spraying": True}
    out = decode_batch([received([bad, sample(2, 9000.0), sample(3, 1.0)])], jumps=jumps)
    (record,) = out.rejected
    assert record.reasons == {"out_of_range": 1, IMPLAUSIBLE_JUMP: 1}
    assert [s.ts_ms for s in out.samples] == [T0 + 300]


def test_without_a_filter_nothing_is_checked() -> None:
    out = decode_batch([received([sample(0, 0.0), sample(1, 9000.0)])])
    assert out.sample_count() == 2
    assert out.rejected == []


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 3000), st.floats(-3000, 3000), st.floats(-3000, 3000)),
        min_size=1,
        max_size=40,
    ),
    st.lists(st.integers(1, 10), min_size=1, max_size=40),
)
def test_scanning_in_messages_refuses_exactly_what_one_at_a_time_refuses(
    steps: list[tuple[int, float, float]], sizes: list[int]
) -> None:
    """Random tracks (glitches, bursts, far re-anchors), scanned message by message in any
    split, refuse the same samples as checking them one by one."""
    points, t = [], T0
    for dt_ms, dy, dx in steps:
        t += dt_ms
        points.append((t, north(dy), LON0 + dx / 103_900.0))
    one = JumpFilter()
    want = [i for i, p in enumerate(points) if one.check("c", "d", *p) is not None]
    many, got, at = JumpFilter(), list[int](), 0
    for size in sizes * len(points):
        if at >= len(points):
            break
        chunk = points[at : at + size]
        got.extend(at + i for i, _ in many.scan("c", "d", chunk))
        at += len(chunk)
    assert got == want
