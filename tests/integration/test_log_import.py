"""Flight-log import (ingest/logimport.py) into both real telemetry stores, with the real
tlogs and Airdata tracks of ../shared/realdata: exact counts computed independently (the
tlogs with pymavlink's own reader, the CSVs with the csv module), no-fix rows rejected and
logged, duplicate times stored once, one flight per arm-to-disarm sortie, times on the
log's own clock, track lengths within 1 % of a haversine sum, a second upload storing
nothing, and the flight watcher finding 2018 flights by itself."""

from __future__ import annotations

import csv
import itertools
import math
import time
from pathlib import Path
from typing import Any

import pytest

from flights.service import FlightWatcher
from ingest.logimport import IMPORT_TOPIC, import_log
from storage.contract import TelemetryStore
from storage.metadata import MetadataDB
from tests.realdata import needs_realdata, realdata
from tests.unit.test_log_readers import independent_tlog

pytestmark = needs_realdata

COOP, DRONE = "htx-dong-trieu", "px-01"
ALL = (0, 2**62)


def haversine_length(points: list[tuple[float, float]]) -> float:
    total = 0.0
    for (la1, lo1), (la2, lo2) in itertools.pairwise(points):
        p1, p2 = math.radians(la1), math.radians(la2)
        a = (
            math.sin((p2 - p1) / 2) ** 2
            + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lo2 - lo1) / 2) ** 2
        )
        total += 2 * 6_371_008.8 * math.asin(math.sqrt(a))
    return total


@pytest.fixture
def metadata(tmp_path: Path) -> Any:
    db = MetadataDB(tmp_path / "agridrone.db")
    yield db
    db.close()


@pytest.mark.parametrize("name", ["phoenix_ubc_2018-09-17.tlog", "phoenix_ubc_2018-09-25.tlog"])
def test_real_tlog_import_stores_exactly_what_the_log_holds(
    name: str, store: TelemetryStore, metadata: MetadataDB
) -> None:
    path = realdata("raw", name)
    truth = independent_tlog(path)
    result = import_log(path, coop=COOP, drone=DRONE, store=store, metadata=metadata)

    assert result.complete
    assert result.samples_stored == len(truth["fixes"])
    want_rejected = {"no_fix": truth["no_fix"]} if truth["no_fix"] else {}
    assert result.rejected == want_rejected
    stored = store.drone_samples(COOP, DRONE, *ALL)
    assert len(stored) == len(truth["fixes"])
    assert not any(s.lat == 0 and s.lon == 0 for s in stored)
    for s, (ts, lat, lon) in zip(stored, sorted(truth["fixes"]), strict=True):
        assert abs(s.ts_ms - ts) <= 1_000  # the log's own SYSTEM_TIME clock
        assert (s.lat, s.lon) == pytest.approx((lat, lon), abs=1e-9)
    want_m = haversine_length([(lat, lon) for _, lat, lon in sorted(truth["fixes"])])
    assert haversine_length([(s.lat, s.lon) for s in stored]) == pytest.approx(want_m, rel=0.01)

    # One flight per sortie between arm and disarm, each starting and ending within a
    # second of the autopilot's own arm and disarm, summarized although from 2018.
    sorties = list(zip(truth["arms"], truth["disarms"], strict=True))
    assert len(result.flights) == len(sorties) == 6
    for flight, (armed, disarmed) in zip(result.flights, sorties, strict=True):
        assert abs(flight.start_ms - armed) <= 1_000
        assert abs(flight.end_ms - disarmed) <= 1_000
        assert not flight.open
    kept = metadata.flights(*ALL, coop=COOP, drone=DRONE)
    assert [f.id for f in kept] == [f.id for f in result.flights]
    assert all(f.summary_dict()["samples_received"] > 0 for f in kept)
    assert all(f.summary_dict()["distance_flown_m"] > 0 for f in kept)

    # No-fix rows: one rejected-log row with their count, not one per sample.
    rows = [r for r in metadata.rejected_messages(*ALL) if r.topic.startswith("log-import/")]
    if truth["no_fix"]:
        assert [(r.topic, r.reason, r.count) for r in rows] == [
            (IMPORT_TOPIC.format(coop=COOP, drone=DRONE), "no_fix", truth["no_fix"])
        ]
    else:
        assert rows == []

    # The same log again: recognised by content, nothing stored, the first answer recalled.
    again = import_log(path, coop=COOP, drone=DRONE, store=store, metadata=metadata)
    assert again.already_imported
    assert (again.samples_stored, again.events_stored, again.rejected) == (0, 0, {})
    assert [f.id for f in again.flights] == [f.id for f in result.flights]
    assert len(store.drone_samples(COOP, DRONE, *ALL)) == len(truth["fixes"])
    assert len(metadata.rejected_messages(*ALL)) == len(rows)


def independent_track(path: Path) -> tuple[list[tuple[int, float, float]], int, int]:
    """(ts ms, lat, lon) of each row with a fix, first of its time; no-fix rows; repeats."""
    seen: set[int] = set()
    fixes, no_fix, repeats = [], 0, 0
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            ts = round(float(row["ts"]) * 1000)
            lat, lon = float(row["lat"]), float(row["lon"])
            if (lat == 0 and lon == 0) or float(row["gpslevel"]) <= 0:
                no_fix += 1
            elif ts in seen:
                repeats += 1
            else:
                seen.add(ts)
                fixes.append((ts, lat, lon))
    return fixes, no_fix, repeats


@pytest.mark.parametrize(
    "name", ["dji_mini2_2021-09-06_airdata.csv", "dji_air2s_2021-09-06_airdata.csv"]
)
def test_real_airdata_track_import(name: str, store: TelemetryStore, metadata: MetadataDB) -> None:
    path = realdata("tracks", name)
    fixes, no_fix, repeats = independent_track(path)
    result = import_log(path, coop=COOP, drone=DRONE, store=store, metadata=metadata)
    assert result.kind == "csv"
    assert result.samples_stored == len(fixes)
    want = {k: v for k, v in (("no_fix", no_fix), ("duplicate", repeats)) if v}
    assert result.rejected == want
    assert sum(want.values()) in (1, 123)  # the Mini 2's repeated time, the Air 2S's 0,0 rows
    stored = store.drone_samples(COOP, DRONE, *ALL)
    assert [(s.ts_ms, s.lat, s.lon) for s in stored] == sorted(fixes)  # the export's own clock
    want_m = haversine_length([(lat, lon) for _, lat, lon in sorted(fixes)])
    assert haversine_length([(s.lat, s.lon) for s in stored]) == pytest.approx(want_m, rel=0.01)
    assert len(result.flights) == 1  # one take-off to landing, its gaps under a minute
    assert (result.flights[0].start_ms, result.flights[0].end_ms) == (fixes[0][0], fixes[-1][0])


def test_the_flight_watcher_alone_finds_flights_of_an_old_log(
    store: TelemetryStore, metadata: MetadataDB
) -> None:
    """Without the import's own summarizing, the late-data ranges the ingest writer records
    lead the worker's watcher to the 2018 flights (its normal window only looks back a day)."""
    path = realdata("raw", "phoenix_ubc_2018-09-25.tlog")
    result = import_log(
        path, coop=COOP, drone=DRONE, store=store, metadata=metadata, summarize=False
    )
    assert result.flights == []
    assert metadata.late_ranges()
    outcomes = FlightWatcher().poll(store, metadata, int(time.time() * 1000))
    found = metadata.flights(*ALL, coop=COOP, drone=DRONE)
    assert len(found) == 6
    assert sorted(i for o in outcomes for i in o.saved) == [f.id for f in found]
    assert metadata.late_ranges() == []
    # A second round finds nothing new, and the import's summaries would be the same.
    assert FlightWatcher().poll(store, metadata, int(time.time() * 1000)) == []


def test_finished_imports_are_recorded_once_on_both_metadata_stores(metadata_url: str) -> None:
    from storage.metadata import LogImportRecord

    db = MetadataDB(metadata_url)
    try:
        first = LogImportRecord(COOP, DRONE, "ab" * 32, "tlog", "a.tlog", 1_700_000_000_000, "{}")
        assert db.log_import(COOP, DRONE, first.sha256) is None
        assert db.record_log_import(first)
        second = LogImportRecord(
            COOP, DRONE, first.sha256, "tlog", "b.tlog", 1_800_000_000_000, "{}"
        )
        assert not db.record_log_import(second)  # the first record stays
        assert db.log_import(COOP, DRONE, first.sha256) == first
        assert db.log_import(COOP, "other", first.sha256) is None  # per drone
    finally:
        db.close()
