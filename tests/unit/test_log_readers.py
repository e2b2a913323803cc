"""Flight-log readers (adapters/flightlog.py, tlog.py, dataflash.py, ulog.py) without servers:
kinds by content, real tlogs against pymavlink's own reader, synthetic .bin/.ulg against
pymavlink's DFReader and pyulog, damaged files, and memory that stays flat."""

from __future__ import annotations

import io
import itertools
import math
import struct
import tracemalloc
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from pymavlink import DFReader, mavutil

from adapters._common import ConfigError, FormatError, Translation
from adapters.dataflash import DataflashReader
from adapters.flightlog import ACCEPTED, LogKind, UnsupportedLogError, open_reader, sniff
from adapters.tlog import TlogReader
from simulators.logfiles import LogTruth, tlog_file, write_dataflash, write_tlog, write_ulog
from tests.realdata import needs_realdata, realdata

T0 = 1_700_000_000_000
CHUNK = 4 * 1024
TLOGS = ("phoenix_ubc_2018-09-17.tlog", "phoenix_ubc_2018-09-25.tlog")


def drain(kind: LogKind, data: bytes, spray: str | None = None) -> tuple[Any, list[Translation]]:
    reader = open_reader(kind, io.BytesIO(data), coop="c", drone="d", spray=spray)
    return reader, list(reader)


def samples_of(out: Iterable[Translation]) -> list[dict[str, Any]]:
    return [s for t in out for s in t.samples]


def events_of(out: Iterable[Translation]) -> list[dict[str, Any]]:
    return [e for t in out for e in t.events]


def reasons_of(out: Iterable[Translation]) -> Counter[str]:
    return Counter(r.reason for t in out for r in t.rejections)


def independent_tlog(path: Path) -> dict[str, Any]:  # noqa: PLR0912 - one branch per type
    """What a .tlog holds, read with pymavlink's own connection (no code of ours): vehicle
    positions with their UTC time from the log's SYSTEM_TIME anchor, no-fix positions,
    positions repeating a time, and the arm/disarm times of the autopilot's heartbeats.
    The autopilot's clock stepping back (a reboot: the 2018-09-17 log has one, confirmed
    by the ground station's record times) drops the anchor until the next SYSTEM_TIME."""
    conn = mavutil.mavlink_connection(str(path))
    offset: int | None = None
    fix_type: int | None = None
    armed: bool | None = None
    last_boot = 0
    seen: set[tuple[int, int | None]] = set()
    pending: list[tuple[int, float, float]] = []
    fixes: list[tuple[int, float, float]] = []
    out: dict[str, Any] = {"no_fix": 0, "duplicates": 0, "arms": [], "disarms": []}
    while (msg := conn.recv_match()) is not None:
        if msg.get_srcSystem() == 255:
            continue
        kind = msg.get_type()
        boot = getattr(msg, "time_boot_ms", None)
        if kind in ("SYSTEM_TIME", "GLOBAL_POSITION_INT") and boot is not None:
            if boot + 5_000 < last_boot:
                offset = None  # rebooted
            last_boot = boot
        if kind == "SYSTEM_TIME" and msg.time_unix_usec > 0:
            offset = msg.time_unix_usec // 1000 - msg.time_boot_ms
            fixes += [(b + offset, la, lo) for b, la, lo in pending]
            pending = []
        elif kind == "GPS_RAW_INT":
            fix_type = msg.fix_type
        elif kind == "HEARTBEAT" and msg.autopilot != 8 and msg.type != 6:
            now = bool(msg.base_mode & 128)
            if armed is not None and now != armed:
                out["arms" if now else "disarms"].append(last_boot + (offset or 0))
            armed = now
        elif kind == "GLOBAL_POSITION_INT":
            if (msg.lat == 0 and msg.lon == 0) or (fix_type is not None and fix_type < 2):
                out["no_fix"] += 1
            elif (msg.time_boot_ms, offset) in seen:
                out["duplicates"] += 1
            else:
                seen.add((msg.time_boot_ms, offset))
                item = (msg.time_boot_ms, msg.lat / 1e7, msg.lon / 1e7)
                if offset is None:
                    pending.append(item)
                else:
                    fixes.append((item[0] + offset, item[1], item[2]))
    conn.close()
    out["fixes"] = fixes
    return out


# --- kinds by content


def test_each_kind_is_recognised_by_its_content_not_its_name() -> None:
    tlog, dataflash, ulog = io.BytesIO(), io.BytesIO(), io.BytesIO()
    write_tlog(tlog, start_ms=T0, seconds=3)
    write_dataflash(dataflash, start_ms=T0, seconds=3)
    write_ulog(ulog, start_ms=T0, seconds=3)
    assert sniff(tlog.getvalue()[:4096]) == LogKind.TLOG
    assert sniff(dataflash.getvalue()[:4096]) == LogKind.DATAFLASH
    assert sniff(ulog.getvalue()[:4096]) == LogKind.ULOG
    assert sniff(b"ts,lat,lon,alt_m\n1,2,3,4\n") == LogKind.CSV
    assert sniff("\ufefftime(millisecond),datetime(utc),latitude,longitude\n".encode()) == (
        LogKind.CSV
    )


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"%PDF-1.7\n",
        b'{"type": "FeatureCollection"}',
        b"\x89PNG\r\n\x1a\n" + bytes(32),
        b"name,value\nx,1\n",
        bytes(range(256)),
    ],
)
def test_other_files_are_refused_naming_the_accepted_kinds(head: bytes) -> None:
    with pytest.raises(UnsupportedLogError) as caught:
        sniff(head)
    assert ACCEPTED in str(caught.value)
    for word in (".tlog", ".bin", ".ulg", "Airdata"):
        assert word in str(caught.value)


def test_a_spray_rule_for_a_csv_or_a_bad_rule_is_refused() -> None:
    with pytest.raises(FormatError, match="needs a MAVLink log"):
        open_reader(LogKind.CSV, io.BytesIO(b""), coop="c", drone="d", spray="rc7>1500")
    with pytest.raises(ConfigError):
        open_reader(LogKind.TLOG, io.BytesIO(b""), coop="c", drone="d", spray="rc7")


# --- real tlogs


@needs_realdata
@pytest.mark.parametrize("name", TLOGS)
def test_real_tlog_gives_pymavlinks_positions_times_and_sorties(name: str) -> None:
    path = realdata("raw", name)
    truth = independent_tlog(path)
    reader, out = drain(LogKind.TLOG, path.read_bytes())
    got = samples_of(out)
    assert len(got) == len(truth["fixes"])
    assert reasons_of(out) == Counter(
        {k: v for k, v in (("no_fix", truth["no_fix"]), ("duplicate", truth["duplicates"])) if v}
    )
    for sample, (ts, lat, lon) in zip(got, truth["fixes"], strict=True):
        assert abs(sample["ts"] - ts) <= 1_000  # the log's own SYSTEM_TIME clock
        assert (sample["lat"], sample["lon"]) == (lat, lon)
    events = events_of(out)
    takeoffs = [e["ts"] for e in events if e["type"] == "takeoff"]
    landings = [e["ts"] for e in events if e["type"] == "landing"]
    assert len(takeoffs) == len(truth["arms"]) == len(truth["disarms"]) == len(landings) == 6
    for got_ts, want in zip(takeoffs + landings, truth["arms"] + truth["disarms"], strict=True):
        assert abs(got_ts - want) <= 1_000
    assert reader.state.bytes_read == path.stat().st_size
    assert reader.state.stopped is None
    assert reader.state.skipped_count == 0


def record_starts(data: bytes) -> list[int]:
    """Offsets of the records of an undamaged tlog (8-byte time, then a v1/v2 packet)."""
    starts, i = [], 0
    while i < len(data):
        starts.append(i)
        magic, length = data[i + 8], data[i + 9]
        if magic == 0xFE:
            i += 8 + 6 + length + 2
        else:
            i += 8 + 10 + length + 2 + (13 if data[i + 10] & 1 else 0)
    return starts


@needs_realdata
def test_a_truncated_tlog_imports_what_is_whole_and_says_where_it_stopped() -> None:
    data = realdata("raw", TLOGS[0]).read_bytes()
    cut = 500_000
    starts = record_starts(data)
    last_whole = max(k for k, s in enumerate(starts) if s + _record_len(data, s) <= cut)
    reader, out = drain(LogKind.TLOG, data[:cut])
    assert reader.state.stopped is not None
    assert reader.state.stopped.offset == starts[last_whole + 1]
    assert reader.state.stopped.message == last_whole + 2
    assert "truncated" in reader.state.stopped.reason
    full = samples_of(drain(LogKind.TLOG, data)[1])
    got = samples_of(out)
    assert got == full[: len(got)]
    assert len(got) >= 0.9 * sum(1 for s in full if s["ts"] <= got[-1]["ts"])


def _record_len(data: bytes, i: int) -> int:
    if data[i + 8] == 0xFE:
        return 8 + 6 + data[i + 9] + 2
    return 8 + 10 + data[i + 9] + 2 + (13 if data[i + 10] & 1 else 0)


@needs_realdata
def test_a_corrupt_stretch_is_skipped_reported_and_the_rest_imported() -> None:
    data = bytearray(realdata("raw", TLOGS[1]).read_bytes())
    lo, hi = 900_000, 900_400
    starts = record_starts(bytes(data))
    data[lo:hi] = b"\x55" * (hi - lo)
    first_bad = max(s for s in starts if s <= lo)
    resume = min(s for s in starts if s >= hi)
    reader, out = drain(LogKind.TLOG, bytes(data))
    state = reader.state
    assert state.stopped is None
    assert state.skipped_count >= 1
    first = state.skipped[0]
    assert first_bad <= first.offset < hi
    assert "skipped" in first.reason
    assert first.offset + state.skipped_bytes >= resume - 300  # a damaged packet or two
    got = samples_of(out)
    whole = samples_of(drain(LogKind.TLOG, realdata("raw", TLOGS[1]).read_bytes())[1])
    # Every position outside the damaged records is there, the last one included.
    assert got[-1] == whole[-1]
    missing = {s["ts"] for s in whole} - {s["ts"] for s in got}
    assert 1 <= len(missing) <= 2  # ~400 bytes at ~37 bytes/message: one or two positions


# --- synthetic logs of each kind


def _check_against_truth(out: list[Translation], truth: LogTruth) -> None:
    got = samples_of(out)
    assert [(s["ts"], s["lat"], s["lon"]) for s in got] == [
        (ts, pytest.approx(lat, abs=1e-7), pytest.approx(lon, abs=1e-7))
        for ts, lat, lon in truth.fixes
    ]
    assert reasons_of(out) == Counter({"no_fix": truth.no_fix})
    events = events_of(out)
    assert [e["ts"] for e in events if e["type"] == "takeoff"] == pytest.approx(
        truth.arms, abs=1_000
    )
    assert [e["ts"] for e in events if e["type"] == "landing"] == pytest.approx(
        truth.disarms, abs=1_000
    )


def test_synthetic_tlog_in_mavlink_2_matches_its_truth() -> None:
    buf = io.BytesIO()
    truth = write_tlog(buf, start_ms=T0, seconds=400, sorties=3, rate_hz=5)
    assert len(truth.arms) == 3
    reader, out = drain(LogKind.TLOG, buf.getvalue())
    _check_against_truth(out, truth)
    assert reader.state.messages == truth.messages


def test_dataflash_log_matches_its_truth_and_pymavlinks_dfreader(tmp_path: Path) -> None:
    path = tmp_path / "flight.bin"
    with path.open("wb") as f:
        truth = write_dataflash(f, start_ms=T0, seconds=120)
    reader, out = drain(LogKind.DATAFLASH, path.read_bytes())
    _check_against_truth(out, truth)
    assert reader.state.messages == truth.messages
    # pymavlink's own DataFlash reader sees the same fixes at the same UTC times.
    df = DFReader.DFReader_binary(str(path))
    theirs = []
    try:
        while (m := df.recv_msg()) is not None:
            if m.get_type() == "GPS" and m.Status >= 2:
                theirs.append((round(m._timestamp * 1000), m.Lat, m.Lng))
    finally:
        df.close()
    mine = [(s["ts"], s["lat"], s["lon"]) for s in samples_of(out)]
    assert len(theirs) == len(mine)
    for (t1, la1, lo1), (t2, la2, lo2) in zip(theirs, mine, strict=True):
        assert abs(t1 - t2) <= 1_000
        assert la1 == pytest.approx(la2, abs=1e-7)
        assert lo1 == pytest.approx(lo2, abs=1e-7)


def test_dataflash_spray_rule_reads_the_servo_output() -> None:
    buf = io.BytesIO()
    write_dataflash(buf, start_ms=T0, seconds=10)
    _, out = drain(LogKind.DATAFLASH, buf.getvalue(), spray="all")
    assert all(s["spraying"] for s in samples_of(out))
    _, out = drain(LogKind.DATAFLASH, buf.getvalue(), spray="servo9>1600")
    assert not any(s["spraying"] for s in samples_of(out))  # no RCOU in the log


def test_truncated_and_corrupt_dataflash_say_where() -> None:
    buf = io.BytesIO()
    write_dataflash(buf, start_ms=T0, seconds=60)
    data = buf.getvalue()
    reader, out = drain(LogKind.DATAFLASH, data[:-7])
    assert reader.state.stopped is not None
    last = 3 + struct.calcsize("<QBffffff")  # the log ends with an IMU message
    assert reader.state.stopped.offset == len(data) - last
    assert len(samples_of(out)) == len(samples_of(drain(LogKind.DATAFLASH, data)[1]))
    bad = bytearray(data)
    bad[20_000:20_050] = bytes(50)
    reader, out = drain(LogKind.DATAFLASH, bytes(bad))
    assert reader.state.stopped is None
    assert reader.state.skipped_count == 1
    skipped = reader.state.skipped[0]
    assert 19_900 < skipped.offset <= 20_050  # the first message the zeros broke
    assert skipped.offset + reader.state.skipped_bytes >= 20_050  # resumed past them
    whole = samples_of(drain(LogKind.DATAFLASH, data)[1])
    got = samples_of(out)
    assert got[-1] == whole[-1]
    assert len(whole) - 2 <= len(got) <= len(whole)  # 50 bytes: IMU/POS, maybe a GPS


def test_ulog_matches_its_truth_and_pyulog(tmp_path: Path) -> None:
    from pyulog import ULog

    path = tmp_path / "flight.ulg"
    with path.open("wb") as f:
        truth = write_ulog(f, start_ms=T0, seconds=90)
    _, out = drain(LogKind.ULOG, path.read_bytes())
    _check_against_truth(out, truth)
    gps = ULog(str(path)).get_dataset("vehicle_gps_position").data
    assert sum(1 for fix in gps["fix_type"] if fix >= 2) == len(samples_of(out))


# --- memory


def _peak_reading(data: bytes, kind: LogKind) -> tuple[int, int]:
    tracemalloc.start()
    try:
        reader = open_reader(kind, io.BytesIO(data), coop="c", drone="d")
        assert isinstance(reader, (TlogReader, DataflashReader))
        reader.chunk_bytes = CHUNK
        tracemalloc.reset_peak()
        baseline = tracemalloc.get_traced_memory()[0]
        n = 0
        for t in reader:
            n += len(t.samples)
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()
    return peak, n


@pytest.mark.parametrize("kind", [LogKind.TLOG, LogKind.DATAFLASH])
def test_memory_stays_flat_as_the_log_grows_tenfold(kind: LogKind) -> None:
    """The readers stream: reading a log ten times longer needs no more memory (the file
    is handed over as a stream; only the read buffer, here 4 KiB, and one message are
    held). Both logs are many buffers long; bench/logs_import.py measures a 100 MB import."""
    sizes = []
    for seconds in (20, 200):
        buf = io.BytesIO()
        if kind == LogKind.TLOG:
            write_tlog(buf, start_ms=T0, seconds=seconds)
        else:
            write_dataflash(buf, start_ms=T0, seconds=seconds, rate_hz=10)
        data = buf.getvalue()
        peak, n = _peak_reading(data, kind)
        assert n > seconds * 4
        assert len(data) > 4 * CHUNK
        sizes.append((len(data), peak))
    (small_bytes, small_peak), (big_bytes, big_peak) = sizes
    assert big_bytes > 9 * small_bytes
    assert big_peak < 256 * 1024, sizes  # the read buffer, one message, the translator
    assert big_peak < small_peak * 1.25 + 16 * 1024, sizes


def test_track_length_of_a_synthetic_tlog_is_the_flown_distance(tmp_path: Path) -> None:
    path = tmp_path / "f.tlog"
    truth = tlog_file(path, start_ms=T0, seconds=200)
    _, out = drain(LogKind.TLOG, path.read_bytes())
    got = samples_of(out)
    want = _length([(lat, lon) for _, lat, lon in truth.fixes])
    assert _length([(s["lat"], s["lon"]) for s in got]) == pytest.approx(want, rel=1e-4)
    flown = 5.0 * (200 - 5 - 2)  # 5 m/s while armed, plus a 5 m step at each of 4 turns
    assert want == pytest.approx(flown + 5.0 * (flown // 200), rel=0.01)


def _length(points: list[tuple[float, float]]) -> float:
    total = 0.0
    for (la1, lo1), (la2, lo2) in itertools.pairwise(points):
        p1, p2 = math.radians(la1), math.radians(la2)
        a = (
            math.sin((p2 - p1) / 2) ** 2
            + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lo2 - lo1) / 2) ** 2
        )
        total += 2 * 6_371_008.8 * math.asin(math.sqrt(a))
    return total


def test_struct_layout_of_the_synthetic_ulog_header() -> None:
    buf = io.BytesIO()
    write_ulog(buf, start_ms=T0, seconds=2)
    head = buf.getvalue()[:16]
    assert head[:7] == b"ULog\x01\x12\x35"
    assert struct.unpack("<Q", head[8:16])[0] > 0
