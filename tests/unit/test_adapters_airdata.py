"""Flight-record CSV (track layout and Airdata's export) to wire v1, with two real DJI flights."""

from __future__ import annotations

import csv
import io
import itertools
from collections import Counter
from pathlib import Path

import pytest
from pyproj import Geod

from adapters import FormatError, TrackRow, read_track_csv
from tests.realdata import needs_realdata, realdata, wire_accepts

HEADER = "ts,lat,lon,alt_m,speed_mps,heading_deg,satellites,gpslevel,flyc_state\n"


def rows(text: str, **kw: bool) -> list[TrackRow]:
    return list(read_track_csv(io.StringIO(text), **kw))


def test_a_track_row_becomes_a_sample_in_wire_units() -> None:
    (row,) = rows(HEADER + "1630895028.100,47.5726976,-122.6266233,12.5,3.2,-10.0,11,4,P-GPS\n")
    assert row.line == 2
    assert row.rejection is None
    assert row.sample == {
        "ts": 1630895028100,
        "lat": 47.5726976,
        "lon": -122.6266233,
        "spraying": False,
        "alt_m": 12.5,
        "speed_mps": 3.2,
        "heading_deg": 350.0,
    }


def test_spraying_is_stamped_from_the_caller() -> None:
    (row,) = rows(HEADER + "1630895028.1,47.5,-122.6,1,0,0,11,4,P-GPS\n", spraying=True)
    assert row.sample is not None
    assert row.sample["spraying"] is True


def test_a_fix_column_with_mavlink_fix_types_sets_fix_or_rejects_no_fix() -> None:
    out = rows(
        "ts,lat,lon,alt_m,fix\n1618986658.6,63.41,10.40,66.8,3\n1618986658.8,63.41,10.40,66.8,1\n"
    )
    assert out[0].sample is not None
    assert out[0].sample["fix"] == "3d"
    assert out[1].rejection is not None
    assert out[1].rejection.reason == "no_fix"


@pytest.mark.parametrize(
    ("line", "reason", "says"),
    [
        ("1630895028.1,0.0,0.0,0,0,0,0,0,P-GPS", "no_fix", "0,0"),
        ("1630895028.1,47.5,-122.6,0,0,0,10,0,P-GPS", "no_fix", "gpslevel 0"),
        ("1630895028.1,north,-122.6,0,0,0,10,4,P-GPS", "wrong_type", "lat 'north'"),
        ("1630895028.1,,-122.6,0,0,0,10,4,P-GPS", "missing_key", "lat is empty"),
        ("1630895028.1,95.0,-122.6,0,0,0,10,4,P-GPS", "out_of_range", "lat 95.0"),
        ("1630895028.1,47.5,-122.6,0,-3,0,10,4,P-GPS", "out_of_range", "speed"),
        ("1630895028.1,47.5,-122.6,0,nan,0,10,4,P-GPS", "out_of_range", "finite"),
        ("1630895.0281,47.5,-122.6,0,0,0,10,4,P-GPS", "bad_timestamp", "before 2000"),
        ("1630895028.1,47.5,-122.6", "bad_row", "3 cells where the header has 9"),
    ],
)
def test_a_bad_row_is_reported_with_its_line_and_reason_and_the_file_goes_on(
    line: str, reason: str, says: str
) -> None:
    out = rows(HEADER + line + "\n" + "1630895029.0,47.5,-122.6,1,0,0,10,4,P-GPS\n")
    bad, good = out
    assert bad.rejection is not None
    assert (bad.line, bad.rejection.reason, bad.rejection.line) == (2, reason, 2)
    assert bad.rejection.detail.startswith("line 2: ")
    assert says in bad.rejection.detail
    assert good.sample is not None
    assert good.line == 3


def test_a_duplicate_timestamp_is_kept_once_the_first() -> None:
    out = rows(
        HEADER + "1630895028.1,47.5,-122.6,1,0,0,10,4,A\n1630895028.1,47.6,-122.6,0,0,0,10,4,B\n"
    )
    assert out[0].sample is not None
    assert out[0].sample["lat"] == 47.5
    assert out[1].rejection is not None
    assert out[1].rejection.reason == "duplicate"


def test_a_byte_order_mark_before_the_header_is_ignored() -> None:
    (row,) = rows("\ufeff" + HEADER + "1630895028.1,47.5,-122.6,1,0,0,10,4,P-GPS\n")
    assert row.sample is not None


def test_an_unknown_header_is_refused_naming_the_layouts_read() -> None:
    with pytest.raises(FormatError, match=r"neither a track \(ts,lat,lon"):
        rows("time,x,y\n1,2,3\n")
    with pytest.raises(FormatError, match="empty"):
        rows("")


AIRDATA_HEADER = (
    "time(millisecond),datetime(utc),latitude,longitude,height_above_takeoff(feet),"
    "speed(mph),satellites,gpslevel,compass_heading(degrees),battery_percent\n"
)


def test_an_airdata_export_is_converted_from_feet_and_mph() -> None:
    text = (
        AIRDATA_HEADER
        + "0,2021-09-06 02:23:48,47.5726976,-122.6266233,0,0,11,4,79.2,98\n"
        + "100,2021-09-06 02:23:48,47.5726977,-122.6266234,10,10,11,4,-80.8,98\n"
    )
    out = rows(text)
    assert [r.rejection for r in out] == [None, None]
    second = out[1].sample
    assert second is not None
    assert second["ts"] == 1630895028100  # 2021-09-06 02:23:48 UTC + 100 ms
    assert second["alt_m"] == pytest.approx(3.048)
    assert second["speed_mps"] == pytest.approx(4.4704)
    assert second["heading_deg"] == pytest.approx(279.2)
    assert second["battery_pct"] == 98.0


def test_the_reader_streams_without_reading_ahead() -> None:
    stream = io.StringIO(
        HEADER + "".join(f"{1630895028 + i},47.5,-122.6,1,0,0,10,4,P\n" for i in range(1000))
    )
    reader = read_track_csv(stream)
    first = next(reader)
    assert first.line == 2
    assert stream.tell() < len(stream.getvalue())


# --- two real DJI flights


def _read(name: str) -> list[TrackRow]:
    with realdata("tracks", name).open(newline="", encoding="utf-8") as f:
        return list(read_track_csv(f))


def _raw(name: str) -> list[dict[str, str]]:
    with realdata("tracks", name).open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _length_m(points: list[tuple[float, float]]) -> float:
    lats = [p[0] for p in points]
    lons = [p[1] for p in points]
    _a, _b, dists = Geod(ellps="WGS84").inv(lons[:-1], lats[:-1], lons[1:], lats[1:])
    return float(sum(dists))


def _gaps_s(ts_ms: list[int], over_s: float) -> list[float]:
    return [round((b - a) / 1000, 1) for a, b in itertools.pairwise(ts_ms) if b - a > over_s * 1000]


@needs_realdata
def test_the_air_2s_flight_drops_116_zero_rows_and_7_gpslevel_0_rows() -> None:
    out = _read("dji_air2s_2021-09-06_airdata.csv")
    samples = [r.sample for r in out if r.sample is not None]
    rejected = [r.rejection for r in out if r.rejection is not None]
    assert len(out) == 11614
    assert len(samples) == 11491
    assert Counter(r.reason for r in rejected) == {"no_fix": 123}
    assert sum("0,0" in r.detail for r in rejected) == 116
    assert sum("gpslevel 0" in r.detail for r in rejected) == 7
    assert [r.line for r in rejected] == list(range(2, 125))  # the first 123 data lines
    assert _gaps_s([s["ts"] for s in samples], over_s=5) == [12.6]
    stored, _ = wire_accepts("dji", "air2s", samples)
    assert len(stored) == 11491


@needs_realdata
def test_the_mini_2_flight_stores_its_duplicate_timestamp_once_and_keeps_its_gaps() -> None:
    name = "dji_mini2_2021-09-06_airdata.csv"
    out = _read(name)
    samples = [r.sample for r in out if r.sample is not None]
    rejected = [r.rejection for r in out if r.rejection is not None]
    assert len(out) == 11609
    assert len(samples) == 11608
    assert [(r.reason, r.line) for r in rejected] == [("duplicate", 11610)]
    ts = [s["ts"] for s in samples]
    assert len(set(ts)) == len(ts)
    assert _gaps_s(ts, over_s=5) == [34.7, 31.4, 27.6]
    assert (ts[-1] - ts[0]) / 1000 == pytest.approx(1254.4, abs=0.1)
    raw = _raw(name)
    independent = _length_m([(float(r["lat"]), float(r["lon"])) for r in raw])
    assert _length_m([(s["lat"], s["lon"]) for s in samples]) == pytest.approx(
        independent, rel=0.01
    )
    stored, _ = wire_accepts("dji", "mini2", samples)
    assert len(stored) == 11608


@needs_realdata
@pytest.mark.parametrize(
    ("name", "samples", "no_fix"),
    [
        ("phoenix_ubc_2018-09-17_tlog.csv", 772, 10),
        ("phoenix_ubc_2018-09-25_tlog.csv", 1616, 0),
        ("px4_cubeorange_sample_log_small_ulg.csv", 32, 0),
    ],
)
def test_the_decoded_track_files_read_too(name: str, samples: int, no_fix: int) -> None:
    out = _read(name)
    good = [r.sample for r in out if r.sample is not None]
    assert len(good) == samples
    assert Counter(r.rejection.reason for r in out if r.rejection is not None) == (
        {"no_fix": no_fix} if no_fix else {}
    )
    wire_accepts("ubc", "track", good)


def test_realdata_path_is_outside_the_project_tree() -> None:
    from tests.realdata import PROJECT_ROOT, REALDATA

    assert PROJECT_ROOT not in REALDATA.parents
    assert Path(PROJECT_ROOT / "pyproject.toml").is_file()
