"""The ingest worker's foreign edge without a broker: MAVProxy and DJI messages in, wire-v1
messages and rejection rows out, each drone's translator kept between batches."""

from __future__ import annotations

import itertools
from typing import Any, Final

import orjson
import pytest

from adapters import ConfigError
from ingest.foreign import ForeignConfig, ForeignTelemetry
from ingest.inbox import Received
from ingest.metrics import IngestMetrics
from ingest.worker import decode_batch
from storage.contract import StoreUnavailableError
from storage.drones import DroneRecord
from storage.metadata import RejectedMessage

T0: Final = 1_790_000_000_000  # receive time of the first message
BOOT_OFFSET: Final = T0 - 50_000  # UTC ms - time_boot_ms of the autopilot
_mids = itertools.count(1)


def record(drone: str, **settings: Any) -> DroneRecord:
    return DroneRecord("htx-a", drone, 5.0, 0, "$7$101$x$y", **settings)


def mav(drone: str, kind: str, received_ms: int, **fields: Any) -> Received:
    return Received(
        1, next(_mids), 0, f"agri/mavlink/htx-a/{drone}/{kind}", orjson.dumps(fields), received_ms
    )


def position(drone: str, boot_ms: int, received_ms: int, *, fix: bool = True) -> Received:
    lat, lon = (210800000 + boot_ms, 1065200000) if fix else (0, 0)
    return mav(
        drone,
        "GLOBAL_POSITION_INT",
        received_ms,
        time_boot_ms=boot_ms,
        lat=lat,
        lon=lon,
        alt=0,
        relative_alt=3000,
        vx=300,
        vy=400,
        vz=0,
        hdg=9000,
    )


def system_time(drone: str, boot_ms: int, received_ms: int) -> Received:
    unix_us = (boot_ms + BOOT_OFFSET) * 1000
    return mav(drone, "SYSTEM_TIME", received_ms, time_unix_usec=unix_us, time_boot_ms=boot_ms)


def osd(sn: str, ts_ms: int, **data: Any) -> Received:
    payload = orjson.dumps({"tid": "t", "bid": "b", "timestamp": ts_ms, "data": data})
    return Received(1, next(_mids), 0, f"thing/product/{sn}/osd", payload, ts_ms)


def edge(
    *records: DroneRecord, metrics: IngestMetrics | None = None, **config: Any
) -> ForeignTelemetry:
    return ForeignTelemetry(ForeignConfig(**config), lambda: list(records), metrics)


def total(rows: list[RejectedMessage], reason: str) -> int:
    return sum(r.reasons.get(reason, 0) for r in rows)


def test_wire_v1_passes_through_and_mavproxy_samples_are_timed_by_system_time() -> None:
    f = edge(record("d1"))
    wire_v1 = Received(1, 1, 1, "agri/v1/htx-a/d9/telemetry", b"{}", T0)
    batch = [position("d1", 1_000, T0), wire_v1, system_time("d1", 1_100, T0 + 5)]
    messages, rows = f.translate(batch)
    assert rows == []
    assert messages[0] is wire_v1  # untouched, in its place
    decoded = decode_batch(messages[1:])
    assert [s.ts_ms for s in decoded.samples] == [1_000 + BOOT_OFFSET]
    s = decoded.samples[0]
    assert (s.coop, s.drone, s.alt_m, s.speed_mps, s.heading_deg) == ("htx-a", "d1", 3.0, 5.0, 90.0)
    assert s.spraying is False  # no --mavlink-spray: never spraying


def test_a_run_of_no_fix_positions_is_one_row_then_one_counting_the_rest() -> None:
    f = edge(record("d1"))
    f.translate([system_time("d1", 0, T0)])
    nofix = [position("d1", 100 * i, T0 + 100 * i, fix=False) for i in range(1, 4)]
    _, rows = f.translate(nofix)
    assert [(r.reason, r.count) for r in rows] == [("no_fix", 1)]
    _, rows = f.translate([position("d1", 400, T0 + 400)])  # a fix: the run ends
    assert [(r.reason, r.count) for r in rows] == [("no_fix", 2)]
    _, rows = f.translate([position("d1", 500 + i, T0 + 500, fix=False) for i in range(2)])
    assert [(r.reason, r.count) for r in rows] == [("no_fix", 1)]
    assert [(r.reason, r.count) for r in f.flush(T0 + 600).rejected] == [("no_fix", 1)]


def test_an_unknown_dji_serial_is_one_row_per_hour_and_the_count_stays_exact() -> None:
    f = edge(unknown_window_ms=3_600_000)
    rows: list[RejectedMessage] = []
    for i in range(5):
        rows += f.translate([osd("NOPE", T0 + i * 2000, latitude=21.0, longitude=106.5)])[1]
    assert [(r.reason, r.count) for r in rows] == [("unknown_device", 1)]
    assert "DJI serial NOPE is not registered" in rows[0].detail
    later = f.translate([osd("NOPE", T0 + 3_600_000, latitude=21.0, longitude=106.5)])[1]
    assert [(r.reason, r.count) for r in later] == [("unknown_device", 4), ("unknown_device", 1)]
    assert f.flush().rejected == []


def test_a_dji_serial_registered_later_is_picked_up_and_stamped_with_its_spraying() -> None:
    registry: list[DroneRecord] = []
    f = ForeignTelemetry(ForeignConfig(miss_refresh_s=0.0), lambda: list(registry))
    assert f.translate([osd("SN1", T0, latitude=21.0, longitude=106.5)])[1][0].reason == (
        "unknown_device"
    )
    registry.append(record("dji", dji_sn="SN1", dji_spraying=True))
    messages, rows = f.translate([osd("SN1", T0 + 2000, latitude=21.0, longitude=106.5)])
    assert rows == []
    [sample] = decode_batch(messages).samples
    assert (sample.drone, sample.ts_ms, sample.spraying) == ("dji", T0 + 2000, True)


def test_unregistered_mavproxy_drones_are_refused_only_when_registration_is_required() -> None:
    strict = edge(require_registered=True)
    rows = strict.translate([position("ghost", 100 * i, T0) for i in range(3)])[1]
    assert [(r.reason, r.count) for r in rows] == [("unknown_drone", 1)]
    assert [(r.reason, r.count) for r in strict.flush().rejected] == [("unknown_drone", 2)]
    lenient = edge()
    messages, rows = lenient.translate([system_time("ghost", 0, T0), position("ghost", 10, T0)])
    assert rows == []
    assert len(decode_batch(messages).samples) == 1


def test_a_changed_spray_rule_applies_to_the_running_stream() -> None:
    registry = [record("d1", mavlink_spray="rc7>1500")]
    f = ForeignTelemetry(ForeignConfig(refresh_s=0.0), lambda: list(registry))
    rc = {f"chan{n}_raw": 1000 for n in range(1, 19)}
    f.translate([system_time("d1", 0, T0), mav("d1", "RC_CHANNELS", T0, time_boot_ms=0, **rc)])
    assert decode_batch(f.translate([position("d1", 100, T0)])[0]).samples[0].spraying is False
    registry[0] = record("d1", mavlink_spray="rc7>900")
    assert decode_batch(f.translate([position("d1", 200, T0)])[0]).samples[0].spraying is True


def test_lost_positions_are_counted_as_gaps_in_the_metrics() -> None:
    metrics = IngestMetrics()
    f = edge(record("d1"), metrics=metrics)
    # Two lost, then four, at QoS 0 between MAVProxy and us. (A gap is an interval over twice
    # the usual one, so that a jittery 1 Hz autopilot is not a loss: one lost is not counted.)
    dropped = {20, 21, 50, 51, 52, 53}
    batch = [system_time("d1", 0, T0)]
    batch += [position("d1", 100 * i, T0 + 100 * i) for i in range(1, 80) if i not in dropped]
    messages, _ = f.translate(batch)
    assert len(decode_batch(messages).samples) == 79 - len(dropped)
    assert metrics.value("agridrone_ingest_mavlink_position_gaps_total") == 2
    assert metrics.value("agridrone_ingest_mavlink_positions_missing_total") == len(dropped)
    assert metrics.value("agridrone_ingest_foreign_messages_total", source="mavproxy") == 74


def test_samples_waiting_for_system_time_are_released_by_receive_time_when_the_stream_stops() -> (
    None
):
    metrics = IngestMetrics()
    f = edge(record("d1"), metrics=metrics)
    messages, _ = f.translate([position("d1", 100, T0), position("d1", 200, T0 + 100)])
    assert messages == []  # held for a SYSTEM_TIME
    assert not f.tick(T0 + 1_000)  # not yet: they may wait 5 s
    released = f.tick(T0 + 5_000)
    assert [s.ts_ms for s in decode_batch(released.messages).samples] == [T0, T0 + 100]
    assert metrics.value("agridrone_ingest_mavlink_timed_by_receive_total") == 2


def test_malformed_json_and_bad_topics_are_rejected_with_reasons() -> None:
    f = edge(record("d1"))
    bad_json = Received(1, 1, 0, "agri/mavlink/htx-a/d1/HEARTBEAT", b"{nope", T0)
    bad_topic = Received(1, 2, 0, "agri/mavlink/htx-a/HEARTBEAT", b"{}", T0)
    bad_dji = Received(1, 3, 0, "thing/product/SN1/osd", b"[1]", T0)
    _, rows = f.translate([bad_json, bad_topic, bad_dji])
    assert [r.reason for r in rows] == ["bad_json", "bad_topic", "unknown_device"]
    assert rows[0].payload_excerpt == b"{nope"


def test_the_subscriptions_follow_the_settings() -> None:
    assert ForeignConfig().subscriptions() == ["agri/mavlink/+/+/+", "thing/product/+/osd"]
    assert ForeignConfig(coops=frozenset({"b", "a"}), dji_topic=None).subscriptions() == [
        "agri/mavlink/a/+/+",
        "agri/mavlink/b/+/+",
    ]
    assert ForeignConfig("gcs/{drone}/{coop}", None).subscriptions() == ["gcs/+/+/+"]
    with pytest.raises(ConfigError, match="wire v1's agri/v1/ tree"):
        ForeignConfig("agri/v1/{coop}/{drone}")
    with pytest.raises(ConfigError, match="not thing/product"):
        ForeignConfig(dji_topic="dji/#")


def test_an_unreachable_registry_keeps_the_drones_known_and_ingest_going() -> None:
    registry = [record("d1", mavlink_spray="rc7>1")]
    down = False

    def load() -> list[DroneRecord]:
        if down:
            raise StoreUnavailableError("metadata database postgresql://db: connection refused")
        return list(registry)

    f = ForeignTelemetry(ForeignConfig(refresh_s=0.0, miss_refresh_s=0.0), load)
    f.translate([system_time("d1", 0, T0)])
    down = True
    messages, rows = f.translate([position("d1", 100, T0)])
    assert rows == []
    samples = decode_batch(messages).samples
    assert [(s.drone, s.ts_ms) for s in samples] == [("d1", 100 + BOOT_OFFSET)]


def test_unusable_stored_settings_never_stop_translation() -> None:
    f = edge(
        record("d1", mavlink_spray="rc7=1500", dji_sn="bad/sn"),  # as edited by hand
        DroneRecord("htx-a", "bad.id", None, 0, "$7$101$x$y"),
    )
    messages, rows = f.translate([system_time("d1", 0, T0), position("d1", 100, T0)])
    assert rows == []
    assert [s.spraying for s in decode_batch(messages).samples] == [False]
