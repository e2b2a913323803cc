"""Flight-record CSV (Airdata export, or the ``ts,lat,lon,alt_m,...`` track layout) to wire v1.

Streams: ``read_track_csv`` takes a text stream and yields one result per data line, so a
100 MB export is never held in memory. A bad line is reported with its line number and
reason and the file goes on. Pure: the caller opens the file and stores the samples.

Two layouts are recognised from the header:

* **track** — ``ts,lat,lon,alt_m[,speed_mps,heading_deg,fix,gpslevel,battery_pct,...]``:
  ``ts`` in UTC unix seconds (decimals allowed), metres and m/s (agridrone's decoded tracks).
* **airdata** — Airdata's own export: ``time(millisecond)``, ``datetime(utc)``,
  ``latitude``, ``longitude``, ``height_above_takeoff(feet)``, ``speed(mph)``,
  ``compass_heading(degrees)``, ``battery_percent``, ``gpslevel``; feet and mph converted.
"""

from __future__ import annotations

import csv
import math
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, TextIO

from adapters._common import (
    BAD_ROW,
    BAD_TIMESTAMP,
    DUPLICATE,
    MISSING_KEY,
    NO_FIX,
    OUT_OF_RANGE,
    WRONG_TYPE,
    AdapterRejection,
    FormatError,
    Invalid,
    WireObject,
    check_position,
    check_ts,
    heading_0_360,
    rejection,
    show,
)

FEET_M: Final = 0.3048
MPH_MPS: Final = 0.44704
#: How many recent timestamps are remembered for dropping duplicates (rows come in time
#: order; a duplicate is next to its twin, so a short memory is enough and stays bounded).
DEDUPE_WINDOW: Final = 4096
#: GNSS fix codes a track's ``fix`` column may carry (MAVLink fix_type numbers or wire words).
_TRACK_FIX: Final[dict[str, str | None]] = {
    "0": None,
    "1": None,
    "2": "2d",
    "3": "3d",
    "4": "dgps",
    "5": "rtk_float",
    "6": "rtk_fixed",
    "none": None,
    "2d": "2d",
    "3d": "3d",
    "dgps": "dgps",
    "rtk_float": "rtk_float",
    "rtk_fixed": "rtk_fixed",
}

TRACK: Final = "track"
AIRDATA: Final = "airdata"
_AIRDATA_REQUIRED: Final = ("time(millisecond)", "datetime(utc)", "latitude", "longitude")
_FAR_FUTURE_MS: Final = 4_102_444_800_000  # 2100-01-01: a file has no receive time


@dataclass(frozen=True, slots=True)
class TrackRow:
    """One data line's outcome: a wire-v1 sample, or why the line gave none."""

    line: int
    sample: WireObject | None
    rejection: AdapterRejection | None


def detect_layout(header: list[str]) -> str:
    """``TRACK`` or ``AIRDATA`` for a header row; FormatError naming both otherwise."""
    names = [h.strip() for h in header]
    if names[:3] == ["ts", "lat", "lon"]:
        return TRACK
    if all(n in names for n in _AIRDATA_REQUIRED):
        return AIRDATA
    raise FormatError(
        f"CSV header {show(','.join(names))[:120]} is neither a track (ts,lat,lon,alt_m,...) "
        "nor an Airdata export (time(millisecond),datetime(utc),latitude,longitude,...)"
    )


def read_track_csv(stream: TextIO, *, spraying: bool = False) -> Iterator[TrackRow]:
    """Each data line of a flight-record CSV as a sample or a rejection, in file order.

    Rows without a fix (0,0, ``gpslevel`` 0, ``fix`` 0/1) are rejected ``no_fix``; a second
    row at a millisecond already produced is rejected ``duplicate`` (the first is kept);
    gaps are kept as they are (nothing is interpolated). ``spraying`` stamps every sample
    (flight records carry no spray state). Raises FormatError if the header is unknown.
    """
    reader = csv.reader(stream)
    try:
        header = next(reader)
    except StopIteration:
        raise FormatError("CSV is empty: no header row") from None
    except csv.Error as exc:
        raise FormatError(f"CSV header unreadable: {exc}") from None
    if header:
        header[0] = header[0].removeprefix("\ufeff")  # spreadsheet exports often start with a BOM
    layout = detect_layout(header)
    names = [h.strip() for h in header]
    index = {n: i for i, n in enumerate(names)}
    seen: deque[int] = deque(maxlen=DEDUPE_WINDOW)
    seen_set: set[int] = set()
    anchor: list[int] = []  # Airdata: epoch ms of time(millisecond) == 0, from the 1st row
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            line = reader.line_num
            yield TrackRow(line, None, AdapterRejection(BAD_ROW, f"line {line}: {exc}", b"", line))
            continue
        line = reader.line_num
        if not cells or all(not c.strip() for c in cells):
            continue
        try:
            sample = _row(cells, len(names), index, layout, spraying=spraying, anchor=anchor)
            _first_at(sample["ts"], seen, seen_set)
        except Invalid as exc:
            exc.detail = f"line {line}: {exc.detail}"
            yield TrackRow(line, None, rejection(exc, ",".join(cells), line))
            continue
        yield TrackRow(line, sample, None)


def _row(
    cells: list[str],
    width: int,
    index: dict[str, int],
    layout: str,
    *,
    spraying: bool,
    anchor: list[int],
) -> WireObject:
    """One data line as a sample of ``layout``; raises Invalid with the first problem."""
    if len(cells) != width:
        raise Invalid(BAD_ROW, f"{len(cells)} cells where the header has {width} columns")
    if layout == TRACK:
        return _track_row(cells, index, spraying)
    return _airdata_row(cells, index, spraying, anchor)


def _first_at(ts: int, seen: deque[int], seen_set: set[int]) -> None:
    """Remember ``ts``; raise ``duplicate`` if a recent row already had it."""
    if ts in seen_set:
        raise Invalid(DUPLICATE, f"ts {ts} repeats an earlier row (kept the first)")
    if len(seen) == seen.maxlen:
        seen_set.discard(seen[0])
    seen.append(ts)
    seen_set.add(ts)


def _cell(cells: list[str], index: dict[str, int], key: str) -> str | None:
    i = index.get(key)
    if i is None:
        return None
    text = cells[i].strip()
    return text or None


def _float(
    cells: list[str], index: dict[str, int], key: str, *, required: bool = False
) -> float | None:
    text = _cell(cells, index, key)
    if text is None:
        if required:
            raise Invalid(MISSING_KEY, f"{key} is empty")
        return None
    try:
        value = float(text)
    except ValueError:
        raise Invalid(WRONG_TYPE, f"{key} {show(text)} is not a number") from None
    if not math.isfinite(value):
        raise Invalid(OUT_OF_RANGE, f"{key} {text} is not a finite number")
    return value


def _position(
    cells: list[str], index: dict[str, int], lat_key: str, lon_key: str
) -> tuple[float, float]:
    lat = _float(cells, index, lat_key, required=True)
    lon = _float(cells, index, lon_key, required=True)
    assert lat is not None
    assert lon is not None
    check_position(lat, lon)
    level = _float(cells, index, "gpslevel")
    if level is not None and level <= 0:
        raise Invalid(NO_FIX, f"gpslevel {level:g}: no GNSS fix")
    return lat, lon


def _common(sample: WireObject, speed: float | None, heading: float | None) -> None:
    if speed is not None:
        if speed < 0:
            raise Invalid(OUT_OF_RANGE, f"speed {speed!r} is negative")
        sample["speed_mps"] = speed
    if heading is not None:
        sample["heading_deg"] = heading_0_360(heading)


def _track_row(cells: list[str], index: dict[str, int], spraying: bool) -> WireObject:
    seconds = _float(cells, index, "ts", required=True)
    assert seconds is not None
    ts = check_ts(round(seconds * 1000), _FAR_FUTURE_MS)
    lat, lon = _position(cells, index, "lat", "lon")
    sample: WireObject = {"ts": ts, "lat": lat, "lon": lon, "spraying": spraying}
    fix_text = _cell(cells, index, "fix")
    if fix_text is not None:
        if fix_text.lower() not in _TRACK_FIX:
            raise Invalid(OUT_OF_RANGE, f"fix {show(fix_text)} is not a known fix code")
        fix = _TRACK_FIX[fix_text.lower()]
        if fix is None:
            raise Invalid(NO_FIX, f"fix {fix_text}: no GNSS fix")
        sample["fix"] = fix
    alt = _float(cells, index, "alt_m")
    if alt is not None:
        sample["alt_m"] = alt
    _common(sample, _float(cells, index, "speed_mps"), _float(cells, index, "heading_deg"))
    battery = _float(cells, index, "battery_pct")
    if battery is not None and 0 <= battery <= 100:
        sample["battery_pct"] = battery
    return sample


def _airdata_row(
    cells: list[str], index: dict[str, int], spraying: bool, anchor: list[int]
) -> WireObject:
    offset = _float(cells, index, "time(millisecond)", required=True)
    assert offset is not None
    if not anchor:
        text = _cell(cells, index, "datetime(utc)")
        if text is None:
            raise Invalid(MISSING_KEY, "datetime(utc) is empty on the first row")
        try:
            start = datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        except ValueError:
            raise Invalid(
                BAD_TIMESTAMP, f"datetime(utc) {show(text)} is not YYYY-MM-DD HH:MM:SS"
            ) from None
        anchor.append(round(start.timestamp() * 1000) - round(offset))
    ts = check_ts(anchor[0] + round(offset), _FAR_FUTURE_MS, "time")
    lat, lon = _position(cells, index, "latitude", "longitude")
    sample: WireObject = {"ts": ts, "lat": lat, "lon": lon, "spraying": spraying}
    height_ft = _float(cells, index, "height_above_takeoff(feet)")
    if height_ft is not None:
        sample["alt_m"] = height_ft * FEET_M
    speed_mph = _float(cells, index, "speed(mph)")
    _common(
        sample,
        None if speed_mph is None else speed_mph * MPH_MPS,
        _float(cells, index, "compass_heading(degrees)"),
    )
    battery = _float(cells, index, "battery_percent")
    if battery is not None and 0 <= battery <= 100:
        sample["battery_pct"] = battery
    return sample
