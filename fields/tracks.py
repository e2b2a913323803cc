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
