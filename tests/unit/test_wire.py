"""Wire format v1, telemetry: what a sample or batch payload decodes to, and what is refused."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from ingest import wire
from ingest.wire import (
    EXCERPT_BYTES,
    MAX_BATCH_SAMPLES,
    MAX_PAYLOAD_BYTES,
    REJECTION_REASONS,
    Decoded,
    decode_message,
)
from storage.records import Sample

TOPIC = "agri/v1/htx-dongtrieu/d-07/telemetry"
#: Receive time: 2026-11-28T12:30:00Z (``date -u -d 2026-11-28T12:30:00Z +%s``).
NOW = 1_795_869_000_000
TS = NOW - 5_000
DAY_MS = 86_400_000


def minimal(**changes: Any) -> dict[str, Any]:
    """The smallest valid sample, with keys replaced (or removed when given ``...``)."""
    obj: dict[str, Any] = {"ts": TS, "lat": 21.08, "lon": 106.52, "spraying": True}
    obj.update(changes)
    return {k: v for k, v in obj.items() if v is not ...}


def decode(payload: object, topic: str = TOPIC, received_ms: int = NOW) -> Decoded:
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return decode_message(topic, raw, received_ms)


def only_rejection(decoded: Decoded) -> tuple[str, str]:
    assert decoded.samples == []
    assert decoded.events == []
    assert len(decoded.rejections) == 1
    r = decoded.rejections[0]
    assert r.reason in REJECTION_REASONS
    return r.reason, r.detail


# --- accepted


def test_a_single_sample_message_becomes_one_sample_with_ids_from_the_topic() -> None:
    decoded = decode(minimal())
    assert decoded == Decoded(
        [Sample("htx-dongtrieu", "d-07", TS, 21.08, 106.52, spraying=True)], [], []
    )


def test_every_sample_key_is_decoded() -> None:
    payload = minimal(
        seq=41,
        alt_m=2.5,
        speed_mps=5.0,
        heading_deg=359.5,
        battery_pct=63.0,
        flow_lpm=1.8,
        tank_l=12.25,
        swath_m=6.5,
        fix="rtk_fixed",
    )
    [sample] = decode(payload).samples
    assert sample == Sample(
        "htx-dongtrieu",
        "d-07",
        TS,
        21.08,
        106.52,
        spraying=True,
        seq=41,
        alt_m=2.5,
        speed_mps=5.0,
        heading_deg=359.5,
        battery_pct=63.0,
        flow_lpm=1.8,
        tank_l=12.25,
        swath_m=6.5,
        fix="rtk_fixed",
    )


def test_integer_coordinates_and_measurements_become_floats() -> None:
    [sample] = decode(minimal(lat=21, lon=106, battery_pct=80)).samples
    assert (sample.lat, sample.lon, sample.battery_pct) == (21.0, 106.0, 80.0)
    assert all(type(v) is float for v in (sample.lat, sample.lon, sample.battery_pct))


def test_range_boundaries_are_accepted() -> None:
    edges = [
        minimal(lat=-90, lon=-180, heading_deg=0, battery_pct=0, speed_mps=0, seq=0),
        minimal(lat=90, lon=180, heading_deg=359.999999, battery_pct=100, swath_m=50),
        minimal(flow_lpm=0, tank_l=0, alt_m=-3.5),
    ]
    decoded = decode({"v": 1, "samples": edges})
    assert decoded.rejections == []
    assert len(decoded.samples) == 3


def test_unknown_keys_are_ignored_for_forward_compatibility() -> None:
    decoded = decode(minimal(rssi_dbm=-71, payload_kg={"nested": [1, 2]}))
    assert decoded.rejections == []
    assert decoded.samples == decode(minimal()).samples


def test_a_null_optional_key_counts_as_absent() -> None:
    [sample] = decode(minimal(alt_m=None, seq=None, fix=None)).samples
    assert (sample.alt_m, sample.seq, sample.fix) == (None, None, None)


def test_a_sample_may_repeat_the_topics_coop_and_drone() -> None:
    decoded = decode(minimal(coop="htx-dongtrieu", drone="d-07"))
    assert decoded.rejections == []
    assert len(decoded.samples) == 1


def test_a_batch_yields_its_samples_in_order() -> None:
    items = [minimal(ts=TS + i * 100, seq=i) for i in range(10)]
    decoded = decode({"v": 1, "samples": items})
    assert [s.seq for s in decoded.samples] == list(range(10))
    assert [s.ts_ms for s in decoded.samples] == [TS + i * 100 for i in range(10)]


def test_duplicated_samples_in_a_batch_are_kept_because_the_store_is_idempotent() -> None:
    decoded = decode({"v": 1, "samples": [minimal(), minimal()]})
    assert len(decoded.samples) == 2
    assert decoded.samples[0] == decoded.samples[1]


def test_a_batch_of_the_maximum_size_is_accepted() -> None:
    items = [minimal(ts=TS - i) for i in range(MAX_BATCH_SAMPLES)]
    assert len(decode({"v": 1, "samples": items}).samples) == MAX_BATCH_SAMPLES


def test_an_empty_batch_yields_nothing_and_rejects_nothing() -> None:
    assert decode({"v": 1, "samples": []}) == Decoded([], [], [])


def test_a_batch_without_v_is_read_as_version_1() -> None:
    assert len(decode({"samples": [minimal()]}).samples) == 1


# --- the partial-batch rule


def test_invalid_samples_in_a_batch_are_rejected_one_by_one_and_the_valid_ones_kept() -> None:
    items = [
        minimal(seq=0),
        minimal(seq=1, lat=91.2),
        minimal(seq=2),
        minimal(seq=3, spraying=...),
        "not a sample",
        minimal(seq=5),
    ]
    decoded = decode({"v": 1, "samples": items})
    assert [s.seq for s in decoded.samples] == [0, 2, 5]
    assert [(r.reason, r.detail) for r in decoded.rejections] == [
        ("out_of_range", "sample 1: lat 91.2 outside [-90, 90]"),
        ("missing_key", "sample 3: missing required key 'spraying'"),
        ("not_an_object", "sample 4: sample is a string, expected an object"),
    ]


def test_each_rejection_carries_the_topic_and_the_first_kib_of_the_payload() -> None:
    items = [minimal(lat=95, note="x" * 2000)]
    raw = orjson.dumps({"v": 1, "samples": items})
    [r] = decode_message(TOPIC, raw, NOW).rejections
    assert r.topic == TOPIC
    assert len(r.payload_excerpt) == EXCERPT_BYTES
    assert raw.startswith(r.payload_excerpt)


# --- whole-message rejections


def test_a_payload_over_256_kib_is_rejected_without_parsing() -> None:
    raw = b"{" + b" " * MAX_PAYLOAD_BYTES + b"}"
    reason, detail = only_rejection(decode_message(TOPIC, raw, NOW))
    assert reason == "too_large"
    assert str(MAX_PAYLOAD_BYTES + 2) in detail
    assert decode_message(TOPIC, raw, NOW).rejections[0].payload_excerpt == raw[:EXCERPT_BYTES]


def test_a_payload_of_exactly_256_kib_is_parsed() -> None:
    body = orjson.dumps(minimal())
    raw = body + b" " * (MAX_PAYLOAD_BYTES - len(body))
    assert len(decode_message(TOPIC, raw, NOW).samples) == 1


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b'{"ts": 1,}', b"\xff\xfe{}", b'{"lat": NaN}', b'{"lat": Infinity}', b"1e999"],
    ids=["empty", "truncated", "trailing-comma", "not-utf8", "nan", "infinity", "overflow"],
)
def test_text_that_is_not_strict_json_is_bad_json(raw: bytes) -> None:
    assert only_rejection(decode_message(TOPIC, raw, NOW))[0] == "bad_json"


@pytest.mark.parametrize("payload", [[minimal()], "sample", 3, None, True])
def test_a_json_value_that_is_not_an_object_is_rejected(payload: object) -> None:
    assert only_rejection(decode(payload))[0] == "not_an_object"


@pytest.mark.parametrize("version", [2, 0, "1", 1.0, True, None])
def test_any_version_but_the_integer_1_is_unsupported(version: object) -> None:
    assert only_rejection(decode(minimal(v=version)))[0] == "unsupported_version"
    batch = {"v": version, "samples": [minimal()]}
    assert only_rejection(decode(batch))[0] == "unsupported_version"


def test_more_than_500_samples_reject_the_whole_message() -> None:
    items = [minimal(ts=TS - i) for i in range(MAX_BATCH_SAMPLES + 1)]
    reason, detail = only_rejection(decode({"v": 1, "samples": items}))
    assert reason == "too_many_samples"
    assert "501" in detail


def test_samples_that_are_not_a_list_are_a_wrong_type() -> None:
    assert only_rejection(decode({"v": 1, "samples": minimal()}))[0] == "wrong_type"


@pytest.mark.parametrize("key", ["drone", "coop"])
def test_a_payload_naming_another_drone_or_coop_is_a_mismatch(key: str) -> None:
    reason, detail = only_rejection(decode(minimal(**{key: "d-99"})))
    assert reason == "drone_mismatch"
    assert "'d-99'" in detail


def test_a_batch_envelope_naming_another_drone_is_a_mismatch() -> None:
    batch = {"v": 1, "drone": "d-99", "samples": [minimal()]}
    assert only_rejection(decode(batch))[0] == "drone_mismatch"


# --- per-key rules


@pytest.mark.parametrize("key", ["ts", "lat", "lon", "spraying"])
def test_each_required_key_is_required(key: str) -> None:
    reason, detail = only_rejection(decode(minimal(**{key: ...})))
    assert (reason, detail) == ("missing_key", f"missing required key {key!r}")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("lat", True),
        ("lat", "21.08"),
        ("lat", None),
        ("lon", [106.5]),
        ("spraying", 1),
        ("spraying", "true"),
        ("spraying", None),
        ("seq", 4.0),
        ("seq", False),
        ("seq", "4"),
        ("alt_m", "high"),
        ("battery_pct", False),
        ("fix", 3),
        ("ts", True),
        ("ts", [TS]),
    ],
)
def test_a_value_of_the_wrong_json_type_is_a_wrong_type(key: str, value: object) -> None:
    reason, detail = only_rejection(decode(minimal(**{key: value})))
    assert reason == "wrong_type"
    assert detail.startswith(f"{key} ")


@pytest.mark.parametrize(
    ("key", "value", "rule"),
    [
        ("lat", 90.0001, "[-90, 90]"),
        ("lat", -91, "[-90, 90]"),
        ("lon", 180.5, "[-180, 180]"),
        ("lon", -181, "[-180, 180]"),
        ("heading_deg", 360, "[0, 360)"),
        ("heading_deg", -0.1, "[0, 360)"),
        ("battery_pct", 100.5, "[0, 100]"),
        ("speed_mps", -1, "[0, inf)"),
        ("flow_lpm", -0.5, "[0, inf)"),
        ("tank_l", -2, "[0, inf)"),
        ("swath_m", 0, "(0, 50]"),
        ("swath_m", 51, "(0, 50]"),
        ("seq", -1, "[0, 2^63-1]"),
        ("seq", 2**63, "[0, 2^63-1]"),
        ("fix", "4d", "none, 2d, 3d, dgps, rtk_float, rtk_fixed"),
    ],
)
def test_a_value_outside_its_range_is_out_of_range(key: str, value: object, rule: str) -> None:
    reason, detail = only_rejection(decode(minimal(**{key: value})))
    assert reason == "out_of_range"
    assert detail.startswith(f"{key} ")
    assert rule in detail


@pytest.mark.parametrize(
    ("key", "literal", "reason"),
    [
        ("lat", "9" * 30, "out_of_range"),
        ("seq", str(2**64 - 1), "out_of_range"),
        ("ts", "9" * 25, "future_timestamp"),
    ],
)
def test_a_huge_integer_is_refused_by_its_range(key: str, literal: str, reason: str) -> None:
    raw = orjson.dumps(minimal(**{key: 0})).replace(
        f'"{key}":0'.encode(), f'"{key}":{literal}'.encode()
    )
    assert only_rejection(decode_message(TOPIC, raw, NOW))[0] == reason


def test_an_integer_beyond_any_double_is_bad_json() -> None:
    raw = orjson.dumps(minimal()).replace(b'"lat":21.08', b'"lat":' + b"9" * 400)
    assert only_rejection(decode_message(TOPIC, raw, NOW))[0] == "bad_json"


# --- timestamps


@pytest.mark.parametrize(
    ("text", "expected_ms"),
    [
        ("2026-11-28T19:30:00+07:00", 1_795_869_000_000),
        ("2026-11-28T12:30:00Z", 1_795_869_000_000),
        ("2026-11-28T12:30:00.123Z", 1_795_869_000_123),
        ("2026-11-28T12:30:00.5z", 1_795_869_000_500),
        ("2026-11-28t05:00:00.007-07:30", 1_795_869_000_007),
        ("2026-11-28 12:30:00-00:00", 1_795_869_000_000),
        ("2026-11-28T12:30:00.123999999Z", 1_795_869_000_123),
        ("2026-11-28T00:00:00+00:00", 1_795_824_000_000),
    ],
)
def test_rfc3339_timestamps_are_read_as_utc_milliseconds(text: str, expected_ms: int) -> None:
    [sample] = decode(minimal(ts=text)).samples
    assert sample.ts_ms == expected_ms


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-28T12:30:00",
        "2026-11-28",
        "2026-02-30T12:00:00Z",
        "2026-11-28T24:00:00Z",
        "2026-11-28T12:30:60Z",
        "2026-11-28T12:30:00+24:00",
        "28/11/2026 12:30",
        "1795869000000",
        "\u0662\u0660\u0662\u0666-11-28T12:30:00Z",
        "",
    ],
)
def test_a_timestamp_string_that_is_not_rfc3339_with_offset_is_a_bad_timestamp(text: str) -> None:
    reason, detail = only_rejection(decode(minimal(ts=text)))
    assert reason == "bad_timestamp"
    assert detail.startswith("ts ")


def test_a_whole_valued_float_timestamp_is_accepted() -> None:
    [sample] = decode(minimal(ts=float(TS))).samples
    assert sample.ts_ms == TS
    assert type(sample.ts_ms) is int


def test_a_fractional_millisecond_timestamp_is_a_bad_timestamp() -> None:
    assert only_rejection(decode(minimal(ts=TS + 0.5)))[0] == "bad_timestamp"


def test_a_timestamp_before_2000_is_a_bad_timestamp_with_a_hint_for_seconds() -> None:
    reason, detail = only_rejection(decode(minimal(ts=TS // 1000)))
    assert reason == "bad_timestamp"
    assert "seconds instead of milliseconds" in detail
    assert only_rejection(decode(minimal(ts=946_684_799_999)))[0] == "bad_timestamp"
    assert len(decode(minimal(ts=946_684_800_000)).samples) == 1


def test_a_timestamp_up_to_24_hours_ahead_of_receipt_is_accepted() -> None:
    assert len(decode(minimal(ts=NOW + DAY_MS)).samples) == 1


def test_a_timestamp_more_than_24_hours_ahead_of_receipt_is_a_future_timestamp() -> None:
    reason, detail = only_rejection(decode(minimal(ts=NOW + DAY_MS + 1)))
    assert reason == "future_timestamp"
    assert str(NOW) in detail
    assert only_rejection(decode(minimal(ts="2026-11-30T00:00:00Z")))[0] == "future_timestamp"


def test_a_decoder_bug_becomes_an_internal_error_rejection_not_an_exception(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*_args: object) -> Sample:
        raise KeyError("boom")

    monkeypatch.setattr(wire, "_sample", broken)
    reason, detail = only_rejection(decode(minimal()))
    assert reason == "internal_error"
    assert "KeyError" in detail
