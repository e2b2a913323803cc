"""Wire format v1 invariants: no payload crashes the decoder, and encoding round-trips."""

from __future__ import annotations

import calendar
import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from ingest.wire import (
    EXCERPT_BYTES,
    INTERNAL_ERROR,
    MAX_FUTURE_MS,
    MIN_TS_MS,
    REJECTION_REASONS,
    WIRE_EVENT_TYPES,
    Decoded,
    Topic,
    _Invalid,
    _sample,
    _sample_checked,
    decode_message,
    decode_rows,
    encode_event,
    encode_sample,
    encode_samples,
    event_topic,
    parse_rfc3339_ms,
    telemetry_topic,
)
from storage.records import FIX_QUALITIES, Event, Sample

NOW = 1_795_869_000_000
TOPICS = [
    "agri/v1/c/d/telemetry",
    "agri/v1/c/d/event",
    "agri/v1/c/d/status",
    "agri/v1/c/+/telemetry",
    "agri/v1/c/d",
]
SAMPLE_KEYS = [
    "v",
    "samples",
    "ts",
    "lat",
    "lon",
    "spraying",
    "seq",
    "alt_m",
    "speed_mps",
    "heading_deg",
    "battery_pct",
    "flow_lpm",
    "tank_l",
    "swath_m",
    "fix",
    "drone",
    "coop",
    "type",
    "state",
]

ids = st.text("abcXYZ019_-", min_size=1, max_size=64)
finite = st.floats(allow_nan=False, allow_infinity=False)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | finite
    | st.text(max_size=30)
    | st.sampled_from(["online", "refill", "rtk_fixed", "2026-11-28T19:30:00+07:00"])
    | st.integers(MIN_TS_MS - 10, NOW + MAX_FUTURE_MS + 10)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.sampled_from(SAMPLE_KEYS) | st.text(max_size=8), inner, max_size=8)
    ),
    max_leaves=40,
)


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


samples = st.builds(
    Sample,
    coop=ids,
    drone=ids,
    ts_ms=st.integers(MIN_TS_MS, NOW + MAX_FUTURE_MS),
    lat=st.floats(-90, 90),
    lon=st.floats(-180, 180),
    spraying=st.booleans(),
    seq=optional(st.integers(0, 2**63 - 1)),
    alt_m=optional(finite),
    speed_mps=optional(st.floats(0, allow_infinity=False)),
    heading_deg=optional(st.floats(0, 360, exclude_max=True)),
    battery_pct=optional(st.floats(0, 100)),
    flow_lpm=optional(st.floats(0, allow_infinity=False)),
    tank_l=optional(st.floats(0, allow_infinity=False)),
    swath_m=optional(st.floats(0, 50, exclude_min=True)),
    fix=optional(st.sampled_from(FIX_QUALITIES)),
)


def assert_well_formed(decoded: Decoded, payload: bytes) -> None:
    """Every rejection has a known reason, a detail and a prefix of the payload."""
    for r in decoded.rejections:
        assert r.reason in REJECTION_REASONS
        assert r.reason != INTERNAL_ERROR, r.detail
        assert r.detail
        assert len(r.payload_excerpt) <= EXCERPT_BYTES
        assert payload.startswith(r.payload_excerpt)


@given(topic=st.sampled_from(TOPICS) | st.text(max_size=80), payload=st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(topic: str, payload: bytes) -> None:
    assert_well_formed(decode_message(topic, payload, NOW), payload)


@given(topic=st.sampled_from(TOPICS), value=json_values)
def test_arbitrary_json_values_never_raise(topic: str, value: object) -> None:
    payload = orjson.dumps(value)
    assert_well_formed(decode_message(topic, payload, NOW), payload)


@given(sample=samples, key=st.sampled_from(SAMPLE_KEYS), value=json_values)
def test_any_key_of_a_valid_sample_set_to_any_json_value_gives_a_sample_or_a_reason(
    sample: Sample, key: str, value: object
) -> None:
    obj = orjson.loads(encode_sample(sample))
    obj[key] = value
    payload = orjson.dumps(obj)
    decoded = decode_message(telemetry_topic(sample.coop, sample.drone), payload, NOW)
    assert len(decoded.samples) + len(decoded.rejections) == (
        len(value) if key == "samples" and isinstance(value, list) and len(value) <= 500 else 1
    )
    assert_well_formed(decoded, payload)


@given(items=st.lists(json_values, max_size=12))
def test_a_batch_splits_into_accepted_samples_and_one_rejection_per_other_item(
    items: list[Any],
) -> None:
    payload = orjson.dumps({"v": 1, "samples": items})
    decoded = decode_message("agri/v1/c/d/telemetry", payload, NOW)
    assert len(decoded.samples) + len(decoded.rejections) == len(items)
    assert_well_formed(decoded, payload)


@given(depth=st.integers(1, 1100), opener=st.sampled_from([b"[", b'{"lat":']))
def test_deeply_nested_json_never_raises(depth: int, opener: bytes) -> None:
    closer = b"]" if opener == b"[" else b"}"
    payload = b'{"ts":1795869000000,"lat":' + opener * depth + b"1" + closer * depth + b"}"
    decoded = decode_message("agri/v1/c/d/telemetry", payload, NOW)
    assert len(decoded.rejections) == 1
    assert_well_formed(decoded, payload)


@given(sample=samples)
def test_a_valid_sample_round_trips(sample: Sample) -> None:
    topic = telemetry_topic(sample.coop, sample.drone)
    assert decode_message(topic, encode_sample(sample), NOW) == Decoded([sample], [], [])


@given(batch=st.lists(samples, max_size=30))
def test_a_valid_batch_round_trips(batch: list[Sample]) -> None:
    moved = [dataclasses.replace(s, coop="c", drone="d") for s in batch]
    decoded = decode_message(telemetry_topic("c", "d"), encode_samples(moved), NOW)
    assert decoded == Decoded(moved, [], [])


@given(
    coop=ids,
    drone=ids,
    ts=st.integers(MIN_TS_MS, NOW),
    kind=st.sampled_from(WIRE_EVENT_TYPES),
    attrs=st.dictionaries(
        st.text(max_size=8).filter(lambda k: k not in SAMPLE_KEYS), json_values, max_size=4
    ),
)
def test_a_valid_event_round_trips(
    coop: str, drone: str, ts: int, kind: str, attrs: dict[str, Any]
) -> None:
    event = Event(coop, drone, ts, kind, attrs)
    decoded = decode_message(event_topic(coop, drone), encode_event(event), NOW)
    assert decoded == Decoded([], [event], [])


@given(
    moment=st.datetimes(
        min_value=datetime(2000, 1, 2),  # noqa: DTZ001 - made aware below
        max_value=datetime(9998, 12, 30),  # noqa: DTZ001
    ),
    offset_min=st.integers(-(23 * 60 + 59), 23 * 60 + 59),
)
def test_rfc3339_text_reads_back_as_the_same_utc_millisecond(
    moment: datetime, offset_min: int
) -> None:
    local = moment.replace(microsecond=moment.microsecond // 1000 * 1000).replace(
        tzinfo=timezone(timedelta(minutes=offset_min))
    )
    utc = local.astimezone(UTC)
    expected = calendar.timegm(utc.timetuple()) * 1000 + utc.microsecond // 1000
    assert parse_rfc3339_ms(local.isoformat(timespec="milliseconds")) == expected


@given(
    st.fixed_dictionaries(
        {
            "ts": st.integers(MIN_TS_MS - 10, NOW + MAX_FUTURE_MS + 10) | scalars,
            "lat": finite | scalars,
            "lon": finite | scalars,
            "spraying": st.booleans() | scalars,
            "seq": st.integers(-1, 2**64) | scalars,
            "alt_m": finite | scalars,
            "speed_mps": finite | scalars,
            "heading_deg": st.floats(-1.0, 400.0) | st.sampled_from([360.0, 359.99]) | scalars,
            "battery_pct": finite | st.floats(-1.0, 101.0),
            "flow_lpm": finite | scalars,
            "tank_l": finite | scalars,
            "swath_m": st.floats(0.0, 60.0) | st.sampled_from([0.0, 5e-324, 50.0]) | scalars,
            "fix": st.sampled_from([*FIX_QUALITIES, "rtk"]) | scalars,
        },
        optional={"drone": st.sampled_from(["d", "e"]), "coop": st.sampled_from(["c", "x"])},
    )
)
def test_the_fast_sample_check_decides_exactly_as_the_key_by_key_check(
    obj: dict[str, Any],
) -> None:
    topic = Topic("c", "d", "telemetry")
    outcomes: list[object] = []
    for check in (_sample, _sample_checked):
        try:
            outcomes.append(check(obj, topic, NOW))
        except _Invalid as exc:
            outcomes.append((exc.reason, exc.detail))
    assert outcomes[0] == outcomes[1]


def assert_rows_agree(topic: str, payload: bytes) -> None:
    """``decode_rows`` takes a message only when ``decode_message`` gives the same samples
    and nothing else."""
    rows = decode_rows(topic, payload, NOW)
    if rows is not None:
        assert decode_message(topic, payload, NOW) == Decoded(rows.samples(), [], [])


@given(batch=st.lists(samples, max_size=12), single=st.booleans())
def test_rows_are_the_samples_decode_message_gives(batch: list[Sample], single: bool) -> None:
    moved = [dataclasses.replace(s, coop="c", drone="d") for s in batch]
    payload = encode_sample(moved[0]) if single and moved else encode_samples(moved)
    assert_rows_agree(telemetry_topic("c", "d"), payload)


@given(sample=samples, key=st.sampled_from(SAMPLE_KEYS), value=json_values)
def test_a_message_decode_rows_takes_is_one_decode_message_accepts_whole(
    sample: Sample, key: str, value: object
) -> None:
    obj = orjson.loads(encode_sample(sample))
    obj[key] = value
    assert_rows_agree(telemetry_topic(sample.coop, sample.drone), orjson.dumps(obj))


@given(topic=st.sampled_from(TOPICS), value=json_values)
def test_decode_rows_never_takes_what_decode_message_refuses(topic: str, value: object) -> None:
    assert_rows_agree(topic, orjson.dumps(value))


def test_a_full_batch_of_common_samples_decodes_to_rows() -> None:
    full = Sample(
        "c",
        "d",
        NOW,
        21.0,
        106.0,
        spraying=True,
        seq=1,
        alt_m=3.0,
        speed_mps=5.0,
        heading_deg=90.0,
        battery_pct=80.0,
        flow_lpm=1.5,
        tank_l=9.0,
        swath_m=5.0,
        fix="3d",
    )
    payload = encode_samples([full, dataclasses.replace(full, ts_ms=NOW - 100)])
    rows = decode_rows(telemetry_topic("c", "d"), payload, NOW)
    assert rows is not None
    assert rows.samples() == [full, dataclasses.replace(full, ts_ms=NOW - 100)]
