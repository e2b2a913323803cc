"""The flown track as CSV, for ``agridrone coverage --track FILE``, and the intended answer.

Columns are the wire keys (``ts`` in epoch ms, booleans ``true``/``false``, empty = absent)
followed by ``coop`` and ``drone``, so a multi-drone track keeps passes of different drones
apart. Rows are in job order, each job's rows in time order.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Final

import orjson

from simulators.fleet import Intended
from storage.records import SAMPLE_VALUE_KEYS, Sample

TRACK_COLUMNS: Final = ("ts", *SAMPLE_VALUE_KEYS, "coop", "drone")


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def track_row(s: Sample) -> list[str]:
    """One sample as CSV cells in ``TRACK_COLUMNS`` order."""
    values = (
        s.ts_ms,
        s.lat,
        s.lon,
        s.spraying,
        s.seq,
        s.alt_m,
        s.speed_mps,
        s.heading_deg,
        s.battery_pct,
        s.flow_lpm,
        s.tank_l,
        s.swath_m,
        s.fix,
        s.coop,
        s.drone,
    )
    return [_cell(v) for v in values]


class TrackWriter:
    """Appends samples to a CSV track file as jobs are flown."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[str] = path.open("w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._fh, lineterminator="\n")
        self._csv.writerow(TRACK_COLUMNS)
        self.rows = 0

    def write(self, samples: Iterable[Sample]) -> None:
        """Append samples."""
        for s in samples:
            self._csv.writerow(track_row(s))
            self.rows += 1

    def close(self) -> None:
        """Flush and close the file."""
        self._fh.close()


def write_track(path: Path, samples: Iterable[Sample]) -> int:
    """Write a whole track file; the number of rows written."""
    writer = TrackWriter(path)
    try:
        writer.write(samples)
    finally:
        writer.close()
    return writer.rows


def intended_path(track: Path) -> Path:
    """Where the intended answer goes beside a track: ``day.csv`` → ``day.intended.json``."""
    return track.with_name(track.stem + ".intended.json")


def write_intended(path: Path, answers: Sequence[Intended]) -> None:
    """The intended answer per field as a JSON array (see docs/simulator.md)."""
    path.write_bytes(
        orjson.dumps([a.as_dict() for a in answers], option=orjson.OPT_INDENT_2) + b"\n"
    )
