"""What the simulated drones put on the wire: payloads, batching, faults, the track file."""

from __future__ import annotations

import argparse
import csv
import itertools
import re
from pathlib import Path

import numpy as np
import orjson
import pytest

from simulators import cli
from simulators.faults import Faults, OutMessage, WireFaultCounts, apply_wire_faults, parse_faults
from simulators.fleet import DroneState, FlightConfig, plan_job
from simulators.geo import load_fields
from simulators.track import TRACK_COLUMNS, intended_path, write_track
from simulators.wire_out import encode_event, encode_status, job_messages
from storage.records import Event, Sample

T0 = 1_764_300_000_000
WIRE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def sample(i: int = 0, **kw: object) -> Sample:
    base: dict[str, object] = {
        "coop": "htx-hong-phong",
        "drone": "dt-01",
        "ts_ms": T0 + 100 * i,
        "lat": 21.08,
        "lon": 106.52,
        "spraying": i % 2 == 0,
        "seq": i,
        "alt_m": 3.0,
        "flow_lpm": 6.0,
        "swath_m": 5.0,
        "fix": "rtk_fixed",
    }
    base.update(kw)
    return Sample(**base)  # type: ignore[arg-type]


def messages(n: int) -> list[OutMessage]:
    return [OutMessage(T0 + 100 * i, "t", str(i).encode(), 1) for i in range(n)]


def test_single_sample_message_is_a_bare_wire_object() -> None:
    (m,) = job_messages([sample()], [], batch=1)
    body = orjson.loads(m.payload)
    assert body == {
        "ts": T0,
        "lat": 21.08,
        "lon": 106.52,
        "spraying": True,
        "seq": 0,
        "alt_m": 3.0,
        "flow_lpm": 6.0,
        "swath_m": 5.0,
        "fix": "rtk_fixed",
    }
    assert m.topic == "agri/v1/htx-hong-phong/dt-01/telemetry"


def test_batches_carry_k_samples_and_leave_with_their_last_sample() -> None:
    out = job_messages([sample(i) for i in range(25)], [], batch=10)
    assert [m.samples for m in out] == [10, 10, 5]
    first = orjson.loads(out[0].payload)
    assert first["v"] == 1
    assert [s["seq"] for s in first["samples"]] == list(range(10))
    assert out[0].release_ms == T0 + 900


def test_absent_optional_keys_are_left_out() -> None:
    (m,) = job_messages([sample(alt_m=None, fix=None, seq=None)], [], batch=1)
    assert set(orjson.loads(m.payload)) == {"ts", "lat", "lon", "spraying", "flow_lpm", "swath_m"}


def test_batch_size_is_bounded_by_the_wire_limit() -> None:
    with pytest.raises(ValueError, match="--batch 501"):
        job_messages([sample()], [], batch=501)


def test_event_payload_has_version_ts_type_and_attributes() -> None:
    e = Event("htx-yen-tho", "dt-02", T0, "refill", {"added_l": 30.5, "field": "dt-yt-001"})
    assert orjson.loads(encode_event(e)) == {
        "v": 1,
        "ts": T0,
        "type": "refill",
        "added_l": 30.5,
        "field": "dt-yt-001",
    }


def test_status_payload_and_the_will_without_ts() -> None:
    assert orjson.loads(encode_status("online", T0)) == {"v": 1, "state": "online", "ts": T0}
    assert orjson.loads(encode_status("offline", None)) == {"v": 1, "state": "offline"}


def test_a_flown_job_is_all_valid_wire_samples_in_order() -> None:
    f = load_fields().fields[0]
    job = plan_job(f, DroneState(f.coop, "dt-01", T0), FlightConfig(), np.random.default_rng(0))
    out = job_messages(job.samples, job.events, batch=10)
    releases = [m.release_ms for m in out]
    assert releases == sorted(releases)
    assert sum(m.samples for m in out) == len(job.samples)
    for m in out:
        coop, drone = m.topic.split("/")[2:4]
        assert WIRE_ID.fullmatch(coop)
        assert WIRE_ID.fullmatch(drone)
        body = orjson.loads(m.payload)
        for s in body.get("samples", []):
            assert isinstance(s["ts"], int)
            assert isinstance(s["spraying"], bool)
            assert -90 <= s["lat"] <= 90
            assert 0 <= s["heading_deg"] < 360


def test_drop_removes_about_the_given_share() -> None:
    counts = WireFaultCounts()
    out = apply_wire_faults(messages(10_000), Faults(drop=0.2), np.random.default_rng(1), counts)
    assert len(out) == 10_000 - counts.dropped
    assert counts.dropped == pytest.approx(2_000, rel=0.1)
    assert {m.payload for m in out} <= {m.payload for m in messages(10_000)}


def test_duplicate_sends_messages_twice() -> None:
    out = apply_wire_faults(messages(100), Faults(duplicate=1.0), np.random.default_rng(1))
    assert [m.payload for m in out] == [m.payload for m in messages(100) for _ in range(2)]


def test_reorder_swaps_neighbours_but_keeps_release_times_increasing() -> None:
    counts = WireFaultCounts()
    out = apply_wire_faults(messages(1_000), Faults(reorder=0.1), np.random.default_rng(1), counts)
    order = [int(m.payload) for m in out]
    assert sorted(order) == list(range(1_000))
    assert counts.reordered > 0
    assert sum(a > b for a, b in itertools.pairwise(order)) == counts.reordered
    assert [m.release_ms for m in out] == sorted(m.release_ms for m in out)


def test_delay_holds_an_outage_window_then_sends_it_in_order() -> None:
    counts = WireFaultCounts()
    out = apply_wire_faults(messages(1_000), Faults(delay_s=5.0), np.random.default_rng(1), counts)
    assert counts.delayed == 50
    held = [m for m in out if m.release_ms != T0 + 100 * int(m.payload)]
    assert len(held) == 50
    assert len({m.release_ms for m in held}) == 1
    assert [int(m.payload) for m in out] == list(range(1_000))


def test_faults_parse_with_defaults_and_values() -> None:
    faults = parse_faults(["missed-strip", "drop=0.05", "wind-drift=2.5", "delay=30"])
    assert faults == Faults(missed_strips=1, drop=0.05, wind_drift_m=2.5, delay_s=30.0)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("hail", "unknown fault"),
        ("drop=1.5", "probability"),
        ("drop=x", "not a number"),
        ("missed-strip=1.5", "whole number"),
        ("delay=-1", ">= 0"),
    ],
)
def test_bad_fault_specs_are_refused_with_the_reason(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_faults([spec])


def test_track_csv_has_wire_keys_and_true_false(tmp_path: Path) -> None:
    rows = [sample(0), sample(1, alt_m=None)]
    path = tmp_path / "track.csv"
    assert write_track(path, rows) == 2
    with path.open(newline="") as fh:
        read = list(csv.DictReader(fh))
    assert tuple(read[0]) == TRACK_COLUMNS
    assert read[0]["ts"] == str(T0)
    assert [r["spraying"] for r in read] == ["true", "false"]
    assert read[1]["alt_m"] == ""
    assert read[1]["drone"] == "dt-01"


def test_intended_answer_sits_beside_the_track() -> None:
    assert intended_path(Path("out/day.csv")) == Path("out/day.intended.json")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    cli.register(p.add_subparsers())
    return p


def test_simulate_options_parse() -> None:
    args = parser().parse_args(
        [
            "simulate",
            "--mqtt-url",
            "mqtt://127.0.0.1:1999",
            "--drones",
            "3",
            "--batch",
            "1",
            "--flights",
            "2",
            "--speedup",
            "max",
            "--fault",
            "drop=0.1",
            "--fault",
            "missed-strip",
            "--mqtt-protocol",
            "3.1.1",
            "--start",
            "2026-11-28T07:00:00+07:00",
        ]
    )
    assert args.handler is cli.run
    assert args.speedup == float("inf")
    assert args.fault == ["drop=0.1", "missed-strip"]
    assert args.start == 1_795_824_000_000
    assert args.mqtt_protocol == "3.1.1"


def test_duration_and_flights_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["simulate", "--duration", "60", "--flights", "1"])
    assert "not allowed with" in capsys.readouterr().err


def test_start_without_offset_is_refused() -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["simulate", "--start", "2026-11-28T07:00:00"])


@pytest.mark.parametrize("batch", [1, 10])
def test_ingest_decodes_every_simulated_message_back_to_the_same_records(batch: int) -> None:
    from ingest.wire import decode_message

    f = load_fields().fields[3]
    job = plan_job(f, DroneState(f.coop, "dt-01", T0), FlightConfig(), np.random.default_rng(2))
    decoded_samples: list[Sample] = []
    decoded_events: list[Event] = []
    for m in job_messages(job.samples, job.events, batch):
        out = decode_message(m.topic, m.payload, m.release_ms)
        assert out.rejections == []
        decoded_samples += out.samples
        decoded_events += out.events
    assert decoded_samples == job.samples
    assert [(e.ts_ms, e.type) for e in decoded_events] == [(e.ts_ms, e.type) for e in job.events]


def test_ingest_reads_the_status_and_the_will() -> None:
    from ingest.wire import decode_message

    topic = "agri/v1/htx-yen-tho/dt-02/status"
    online = decode_message(topic, encode_status("online", T0), T0)
    will = decode_message(topic, encode_status("offline", None), T0 + 5)
    assert [(e.ts_ms, e.attrs) for e in online.events] == [(T0, {"state": "online"})]
    assert [(e.ts_ms, e.attrs) for e in will.events] == [(T0 + 5, {"state": "offline"})]
