"""The worker's row path: common samples decoded as rows and encoded without ``Sample``
objects give the same samples, order, rejections and late ranges as the full decoder."""

from __future__ import annotations

import dataclasses

import orjson

from ingest.inbox import Received
from ingest.late import late_ranges
from ingest.registry import RegisteredDrones
from ingest.wire import encode_sample, encode_samples
from ingest.worker import UNKNOWN_DRONE, decode_batch
from storage.drones import DroneRecord
from storage.records import Sample
from tests.integration.mqtt_helpers import sample_series

NOW = 1_764_300_100_000


def message(s: Sample | list[Sample], mid: int, topic: str | None = None) -> Received:
    first = s if isinstance(s, Sample) else s[0]
    payload = encode_sample(s) if isinstance(s, Sample) else encode_samples(s)
    topic = topic or f"agri/v1/{first.coop}/{first.drone}/telemetry"
    return Received(1, mid, 1, topic, payload, NOW)


def test_common_samples_become_rows_holding_exactly_the_decoded_samples() -> None:
    a, b = sample_series("htx-a", "dt-01", 30), sample_series("htx-a", "dt-02", 3)
    messages = [message(a[:10], 1), message(b[0], 2), message(a[10:], 3)]
    fast = decode_batch(messages, rows=True)
    assert fast.samples == []
    assert [len(group.rows) for group in fast.rows] == [10, 1, 20]
    assert fast.sample_count() == 31
    assert fast.max_ts_ms() == a[-1].ts_ms
    fast.materialize()
    assert fast.samples == decode_batch(messages).samples
    assert fast.rows == []


def test_a_sample_needing_the_full_decoder_turns_the_batch_into_samples_in_order() -> None:
    a = sample_series("htx-a", "dt-01", 6)
    unusual = orjson.loads(encode_sample(a[3]))
    unusual["alt_m"] = 3  # an int: valid, but not a common sample
    odd = Received(1, 2, 1, "agri/v1/htx-a/dt-01/telemetry", orjson.dumps(unusual), NOW)
    messages = [message(a[:3], 1), odd, message(a[4:], 3)]
    decoded = decode_batch(messages, rows=True)
    assert decoded.rows == []
    assert decoded.samples == [*a[:3], dataclasses.replace(a[3], alt_m=3.0), *a[4:]]


def test_events_and_rejected_messages_leave_the_rows_as_they_are() -> None:
    a = sample_series("htx-a", "dt-01", 4)
    takeoff = orjson.dumps({"type": "takeoff", "ts": NOW})
    event = Received(1, 2, 1, "agri/v1/htx-a/dt-01/event", takeoff, NOW)
    bad = Received(1, 3, 1, "agri/v1/htx-a/dt-01/telemetry", b"{not json", NOW)
    decoded = decode_batch([message(a[:2], 1), event, bad, message(a[2:], 4)], rows=True)
    assert [s for group in decoded.rows for s in group.samples()] == a
    assert [e.type for e in decoded.events] == ["takeoff"]
    assert [r.reason for r in decoded.rejected] == ["bad_json"]


def test_rows_of_an_unknown_drone_are_rejected_as_the_full_decoder_rejects_them() -> None:
    known, stranger = sample_series("htx-a", "dt-01", 2), sample_series("htx-a", "dt-02", 5)
    admit = RegisteredDrones(lambda: [DroneRecord("htx-a", "dt-01", None, 0, "$7$101$x$y")])
    messages = [message(known, 1), message(stranger, 2)]
    fast, full = decode_batch(messages, admit, rows=True), decode_batch(messages, admit)
    assert [s for group in fast.rows for s in group.samples()] == known
    assert [r.reason for r in fast.rejected] == [UNKNOWN_DRONE]
    assert fast.rejected == full.rejected
    assert fast.rejected[0].count == 5


def test_late_ranges_of_rows_are_those_of_the_same_samples() -> None:
    a = sample_series("htx-a", "dt-01", 40, t0_ms=NOW - 3_000)  # the first 10 are late
    b = sample_series("htx-b", "dt-01", 5, t0_ms=NOW - 60_000)
    decoded = decode_batch([message(a[:20], 1), message(b, 2), message(a[20:], 3)], rows=True)
    from_rows = late_ranges([], NOW + 8_000, 10_000, rows=decoded.rows)
    assert from_rows == late_ranges([*a, *b], NOW + 8_000, 10_000)
    assert [(r.coop, r.start_ms, r.end_ms) for r in from_rows] == [
        ("htx-a", a[0].ts_ms, a[9].ts_ms),
        ("htx-b", b[0].ts_ms, b[-1].ts_ms),
    ]
