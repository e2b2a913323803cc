"""Reading a flown track (CSV or JSON Lines of wire-format samples) into ``SampleArrays``.

CSV: a header of wire keys; ``ts`` in epoch ms (an RFC 3339 string is accepted too),
booleans ``true``/``false`` or ``1``/``0``, an empty cell means absent. JSON Lines: one
wire-format sample per line, or a ``{"v":1,"samples":[...]}`` batch. Optional ``coop`` and
``drone`` keys keep passes of different drones apart.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from fields.coverage import SampleArrays, sample_arrays
from storage.records import FIX_QUALITIES

_TRUE = {"true": True, "1": True, "false": False, "0": False}
_FIX = {name: i for i, name in enumerate(FIX_QUALITIES)}


class TrackError(ValueError):
    """The track file cannot be read; the message names the file, line and value."""


def read_track(path: str | Path) -> SampleArrays:
    """Read a ``.csv`` or ``.jsonl``/``.ndjson``/``.json`` track (else sniffed from content)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise TrackError(f"{p}: cannot read the file: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise TrackError(f"{p}: not UTF-8 text ({exc.reason})") from exc
    suffix = p.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json") or (
        suffix != ".csv" and text.lstrip().startswith("{")
    ):
        return parse_jsonl(text, source=str(p))
    return parse_csv(text, source=str(p))


def parse_csv(text: str, *, source: str = "<csv>") -> SampleArrays:
    """Samples from CSV text with a header row of wire keys."""
    fast = _fast_csv(text)
    return _csv_rows(text, source) if fast is None else fast


def _csv_rows(text: str, source: str) -> SampleArrays:
    """The row-by-row CSV parser: any input the csv module reads, errors naming the line."""
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    missing = [k for k in ("ts", "lat", "lon", "spraying") if k not in header]
    if missing:
        raise TrackError(
            f"{source}: header lacks required column(s) {', '.join(missing)} "
            f"(has: {', '.join(header) or 'nothing'})"
        )

    def rows() -> Iterator[tuple[int, Mapping[str, Any]]]:
        for row in reader:
            if any(v not in (None, "") for v in row.values()):
                yield reader.line_num, {k: (None if v == "" else v) for k, v in row.items()}

    return _collect(rows(), source)


def parse_jsonl(text: str, *, source: str = "<jsonl>") -> SampleArrays:
    """Samples from JSON Lines: one sample object or one ``{"samples": [...]}`` batch a line."""
    fast = _fast_jsonl(text)
    return _jsonl_rows(text, source) if fast is None else fast


def _jsonl_rows(text: str, source: str) -> SampleArrays:
    """The row-by-row JSON Lines parser, errors naming the line."""

    def rows() -> Iterator[tuple[int, Mapping[str, Any]]]:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TrackError(f"{source} line {number}: not valid JSON ({exc.msg})") from exc
            if isinstance(obj, Mapping) and isinstance(obj.get("samples"), list):
                for item in obj["samples"]:
                    yield number, item
            else:
                yield number, obj

    return _collect(rows(), source)


def _collect(rows: Iterable[tuple[int, Any]], source: str) -> SampleArrays:
    cols: dict[str, list[Any]] = {
        k: [] for k in ("ts", "lat", "lon", "spraying", "flow", "swath", "drone", "fix")
    }
    drones: dict[tuple[str, str], int] = {}
    nan = math.nan
    for line, row in rows:
        where = f"{source} line {line}"
        if not isinstance(row, Mapping):
            raise TrackError(f"{where}: a sample must be a JSON object")
        cols["ts"].append(_ts(row.get("ts"), where))
        cols["lat"].append(_number(row, "lat", where, required=True))
        cols["lon"].append(_number(row, "lon", where, required=True))
        cols["spraying"].append(_bool(row.get("spraying"), where))
        flow = _number(row, "flow_lpm", where)
        swath = _number(row, "swath_m", where)
        cols["flow"].append(nan if flow is None else flow)
        cols["swath"].append(nan if swath is None else swath)
        key = (str(row.get("coop") or ""), str(row.get("drone") or ""))
        cols["drone"].append(drones.setdefault(key, len(drones)))
        fix = row.get("fix")
        if fix is not None and fix not in _FIX:
            raise TrackError(f"{where}: fix {fix!r} is not one of {', '.join(FIX_QUALITIES)}")
        cols["fix"].append(-1 if fix is None else _FIX[fix])
    if not cols["ts"]:
        raise TrackError(f"{source}: no samples")
    try:
        return sample_arrays(
            cols["ts"],
            cols["lat"],
            cols["lon"],
            cols["spraying"],
            flow_lpm=cols["flow"],
            swath_m=cols["swath"],
            drone=cols["drone"],
            fix=cols["fix"],
        )
    except ValueError as exc:
        raise TrackError(f"{source}: {exc}") from exc


def _ts(value: Any, where: str) -> int:
    if value is None:
        raise TrackError(f"{where}: missing ts")
    if isinstance(value, bool):
        raise TrackError(f"{where}: ts {value!r} is not epoch milliseconds")
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise TrackError(
            f"{where}: ts {value!r} is neither epoch milliseconds nor RFC 3339"
        ) from None
    if parsed.tzinfo is None:
        raise TrackError(f"{where}: ts {value!r} has no time zone (use Z for UTC)")
    return round(parsed.timestamp() * 1000)


def _number(row: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> Any:
    value = row.get(key)
    if value is None:
        if required:
            raise TrackError(f"{where}: missing {key}")
        return None
    if isinstance(value, bool):
        raise TrackError(f"{where}: {key} {value!r} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TrackError(f"{where}: {key} {value!r} is not a number") from None
    if not math.isfinite(number):
        raise TrackError(f"{where}: {key} {value!r} is not finite")
    return number


def _bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE:
        return _TRUE[value.strip().lower()]
    raise TrackError(f"{where}: spraying {value!r} is not true/false/1/0")


# --- Fast paths -----------------------------------------------------------------------------
# A flight is tens of thousands of rows, and the row-by-row parsers above cost ~30 µs a row in
# Python: most of an ``agridrone coverage`` run. The fast paths read whole columns at once
# (str.split, map(float) into numpy, orjson per line) and accept only input they read exactly
# as the row-by-row parsers would. Anything else (quotes, ragged rows, blank lines in CSV,
# RFC 3339 times, a bad or missing value, a batch line) makes them return None, and the caller
# parses row by row, which gives the same samples or the error naming the line. So the fast
# paths change the speed, never a result or a message (tests/unit/test_tracks_fast.py).

_COLUMNS = ("ts", "lat", "lon", "spraying", "flow_lpm", "swath_m", "coop", "drone", "fix")
_REQUIRED = ("ts", "lat", "lon", "spraying")


def _fast_csv(text: str) -> SampleArrays | None:
    """Column-wise parse of plain, regular CSV; None when the row-by-row parser is needed."""
    if '"' in text or "\x00" in text:
        return None
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        if "\r" in text:
            return None
    head, _, body = text.partition("\n")
    body = body.rstrip("\n")
    header = head.split(",")
    k = len(header)
    if not body or len(set(header)) != k or not all(c in header for c in _REQUIRED):
        return None
    lines = body.split("\n")
    if set(map(_commas, lines)) != {k - 1}:
        return None  # ragged rows or blank lines
    cells = body.replace("\n", ",").split(",")
    cols = {name: cells[header.index(name) :: k] for name in _COLUMNS if name in header}
    return _fast_columns(cols, len(lines), csv=True)


def _commas(line: str) -> int:
    return line.count(",")


def _fast_jsonl(text: str) -> SampleArrays | None:
    """orjson on each non-blank line; None when the row-by-row parser is needed."""
    try:
        rows = [orjson.loads(line) for line in text.splitlines() if line.strip()]
    except orjson.JSONDecodeError:
        return None  # json's own message names the line
    if not rows or not all(type(r) is dict and "samples" not in r for r in rows):
        return None  # batches, non-objects
    cols = {name: [r.get(name) for r in rows] for name in _COLUMNS}
    return _fast_columns(cols, len(rows), csv=False)


def _fast_columns(cols: Mapping[str, list[Any]], n: int, *, csv: bool) -> SampleArrays | None:
    """Arrays from columns of cells: CSV strings (empty = absent) or JSON values (None = absent)."""
    ts_cells = cols["ts"]
    kinds = set(map(type, ts_cells))
    if csv:
        joined = "".join(ts_cells)
        if not (all(ts_cells) and joined.isascii() and joined.isdigit()):
            return None  # negative, RFC 3339, empty or odd
        ts: list[int] = list(map(int, ts_cells))
    elif kinds == {int}:
        ts = ts_cells
    else:
        return None
    lat = _fast_floats(cols["lat"], n, csv=csv, required=True)
    lon = _fast_floats(cols["lon"], n, csv=csv, required=True)
    flow = _fast_floats(cols.get("flow_lpm"), n, csv=csv, required=False)
    swath = _fast_floats(cols.get("swath_m"), n, csv=csv, required=False)
    spraying = _fast_spraying(cols["spraying"], csv=csv)
    fix = _fast_fix(cols.get("fix"), n, csv=csv)
    if lat is None or lon is None or flow is None or swath is None:
        return None
    if spraying is None or fix is None:
        return None
    empty = "" if csv else None
    coop = cols.get("coop") or [empty] * n
    drone = cols.get("drone") or [empty] * n
    codes: dict[tuple[str, str], int] = {}
    drones = [
        codes.setdefault((str(c or ""), str(d or "")), len(codes))
        for c, d in zip(coop, drone, strict=True)
    ]
    try:
        return sample_arrays(
            ts, lat, lon, spraying, flow_lpm=flow, swath_m=swath, drone=drones, fix=fix
        )
    except ValueError:
        return None


def _fast_floats(cells: list[Any] | None, n: int, *, csv: bool, required: bool) -> Any:
    """A float64 column, NaN where absent (optional columns only); None: look row by row."""
    if cells is None:
        return np.full(n, np.nan)
    absent = "" if csv else None
    values = _present_or_nan(cells, absent, csv=csv, required=required)
    if values is None:
        return None
    try:
        out = np.fromiter(map(float, values), np.float64, n)
    except (ValueError, OverflowError):
        return None
    bad = ~np.isfinite(out)
    if bad.any() and (required or any(cells[i] != absent for i in np.flatnonzero(bad))):
        return None  # a written nan/inf: the row-by-row parser names it
    return out


def _present_or_nan(
    cells: list[Any], absent: Any, *, csv: bool, required: bool
) -> list[Any] | None:
    """Cells with the absent ones as NaN; None if absent cells are not allowed or types odd."""
    if not csv and not set(map(type, cells)) <= {int, float, type(None)}:
        return None  # strings, booleans, lists: the row-by-row parser decides
    if absent not in cells:
        return cells
    if required:
        return None
    return [math.nan if v == absent else v for v in cells]


def _fast_spraying(cells: list[Any], *, csv: bool) -> list[bool] | None:
    if not csv:
        return cells if set(map(type, cells)) == {bool} else None
    table: dict[str, bool] = {}
    for value in set(cells):
        word = value.strip().lower()
        if word not in _TRUE:
            return None
        table[value] = _TRUE[word]
    return list(map(table.__getitem__, cells))


def _fast_fix(cells: list[Any] | None, n: int, *, csv: bool) -> list[int] | None:
    if cells is None:
        return [-1] * n
    if not csv and not set(map(type, cells)) <= {str, type(None)}:
        return None
    absent = "" if csv else None
    table: dict[Any, int] = {absent: -1}
    for value in set(cells):
        if value != absent:
            if value not in _FIX:
                return None
            table[value] = _FIX[value]
    return list(map(table.__getitem__, cells))
