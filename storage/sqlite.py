"""``TelemetryStore`` in one SQLite file: the embedded default (``agridrone demo``).

Durability: WAL with ``synchronous=FULL``. In WAL mode ``NORMAL`` survives a process crash
but may lose the last commits on power loss or an OS crash (the WAL is not synced at
commit), which would break "acknowledge only after a durable write"; ``FULL`` syncs the WAL
at every commit (cost measured in ``bench/store.py``). One write call is one transaction.

Threads: one connection per thread (``threading.local``); WAL lets the API's readers run
while the ingest thread writes, and the busy timeout covers the rare checkpoint lock.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from math import isfinite
from pathlib import Path
from typing import Any, Final, Self

import orjson

from storage.contract import BBox, StoreDataError, StoreUnavailableError
from storage.records import DroneLastSeen, Event, Sample
from storage.thinning import TrackBucket, TrackPoint, TrackStats, thin_track

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS samples (
    coop        TEXT    NOT NULL,
    drone       TEXT    NOT NULL,
    ts_ms       INTEGER NOT NULL,
    lat         REAL    NOT NULL,
    lon         REAL    NOT NULL,
    spraying    INTEGER NOT NULL,
    seq         INTEGER,
    alt_m       REAL,
    speed_mps   REAL,
    heading_deg REAL,
    battery_pct REAL,
    flow_lpm    REAL,
    tank_l      REAL,
    swath_m     REAL,
    fix         TEXT,
    PRIMARY KEY (coop, drone, ts_ms)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS samples_by_time ON samples (ts_ms);
CREATE TABLE IF NOT EXISTS events (
    coop  TEXT    NOT NULL,
    drone TEXT    NOT NULL,
    ts_ms INTEGER NOT NULL,
    type  TEXT    NOT NULL,
    attrs TEXT    NOT NULL,
    PRIMARY KEY (coop, drone, ts_ms, type)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS last_seen (
    coop        TEXT    NOT NULL,
    drone       TEXT    NOT NULL,
    ts_ms       INTEGER NOT NULL,
    lat         REAL    NOT NULL,
    lon         REAL    NOT NULL,
    battery_pct REAL,
    PRIMARY KEY (coop, drone)
) WITHOUT ROWID;
"""

_INSERT_SAMPLE: Final = (
    "INSERT OR REPLACE INTO samples (coop, drone, ts_ms, lat, lon, spraying, seq, alt_m, "
    "speed_mps, heading_deg, battery_pct, flow_lpm, tank_l, swath_m, fix) "
    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
_UPSERT_LAST_SEEN: Final = """
INSERT INTO last_seen (coop, drone, ts_ms, lat, lon, battery_pct) VALUES (?,?,?,?,?,?)
ON CONFLICT (coop, drone) DO UPDATE SET
    ts_ms = excluded.ts_ms, lat = excluded.lat, lon = excluded.lon,
    battery_pct = excluded.battery_pct
WHERE excluded.ts_ms >= last_seen.ts_ms
"""
_INSERT_EVENT: Final = (
    "INSERT OR REPLACE INTO events (coop, drone, ts_ms, type, attrs) VALUES (?,?,?,?,?)"
)
_SELECT_DRONE: Final = (
    "SELECT coop, drone, ts_ms, lat, lon, spraying, seq, alt_m, speed_mps, heading_deg, "
    "battery_pct, flow_lpm, tank_l, swath_m, fix FROM samples "
    "WHERE coop = ? AND drone = ? AND ts_ms >= ? AND ts_ms < ? ORDER BY ts_ms"
)
_SELECT_AREA: Final = (
    "SELECT coop, drone, ts_ms, lat, lon, spraying, seq, alt_m, speed_mps, heading_deg, "
    "battery_pct, flow_lpm, tank_l, swath_m, fix FROM samples WHERE ts_ms >= ? AND ts_ms < ? "
    "AND lat BETWEEN ? AND ? AND lon BETWEEN ? AND ? ORDER BY ts_ms, coop, drone"
)
_SELECT_EVENTS: Final = (
    "SELECT ts_ms, type, attrs FROM events WHERE coop = ? AND drone = ? "
    "AND ts_ms >= ? AND ts_ms < ? ORDER BY ts_ms, type"
)
_SELECT_LAST_SEEN: Final = (
    "SELECT coop, drone, ts_ms, lat, lon, battery_pct FROM last_seen ORDER BY coop, drone"
)
_TRACK_ENDS: Final = (
    "SELECT (SELECT ts_ms FROM samples WHERE coop = ? AND drone = ? AND ts_ms >= ?"
    " AND ts_ms < ? ORDER BY ts_ms LIMIT 1),"
    " (SELECT ts_ms FROM samples WHERE coop = ? AND drone = ? AND ts_ms >= ? AND ts_ms < ?"
    " ORDER BY ts_ms DESC LIMIT 1)"
)
#: Counted to a cap (``LIMIT -1``: no cap): the scan stops there.
_TRACK_COUNT_TO: Final = (
    "SELECT count(*) FROM (SELECT 1 FROM samples"
    " WHERE coop = ? AND drone = ? AND ts_ms >= ? AND ts_ms < ? LIMIT ?)"
)
_TRACK_POINTS: Final = (
    "SELECT ts_ms, lat, lon, spraying FROM samples"
    " WHERE coop = ? AND drone = ? AND ts_ms >= ? AND ts_ms < ? ORDER BY ts_ms"
)
#: A walk along the primary key, in SQL: from each sample jump to the last one within
#: ``gap`` ms; when there is none, the next sample ends a gap. One or two index seeks per
#: ``gap`` ms of track (measured: 8x faster than ``lag() OVER``, which reads every row).
_TRACK_GAPS: Final = """
WITH RECURSIVE walk(t, prev) AS (
    SELECT (SELECT ts_ms FROM samples WHERE coop = ?1 AND drone = ?2 AND ts_ms >= ?3
            AND ts_ms < ?4 ORDER BY ts_ms LIMIT 1), NULL
    UNION ALL
    SELECT coalesce(
        (SELECT ts_ms FROM samples WHERE coop = ?1 AND drone = ?2 AND ts_ms > walk.t
         AND ts_ms <= walk.t + ?5 AND ts_ms < ?4 ORDER BY ts_ms DESC LIMIT 1),
        (SELECT ts_ms FROM samples WHERE coop = ?1 AND drone = ?2 AND ts_ms > walk.t
         AND ts_ms < ?4 ORDER BY ts_ms LIMIT 1)),
        walk.t
    FROM walk WHERE walk.t IS NOT NULL
)
SELECT t, prev FROM walk WHERE t - prev > ?5 LIMIT ?6
"""
_TRACK_AT: Final = (
    "SELECT ts_ms, lat, lon, spraying FROM samples WHERE coop = ? AND drone = ?"
    " AND ts_ms IN (SELECT value FROM json_each(?)) ORDER BY ts_ms"
)
#: The buckets [b, b + w) inside one piece, b from ?3 while b + w <= ?4: each bucket's
#: first and last sample found by an index seek, so no row between them is read.
_TRACK_BUCKETS: Final = """
WITH RECURSIVE k(b) AS (
    SELECT ?3 WHERE ?3 + ?5 <= ?4
    UNION ALL
    SELECT b + ?5 FROM k WHERE b + 2 * ?5 <= ?4
),
ends(b, t0, t1) AS (
    SELECT b,
        (SELECT ts_ms FROM samples WHERE coop = ?1 AND drone = ?2 AND ts_ms >= b
         AND ts_ms < b + ?5 ORDER BY ts_ms LIMIT 1),
        (SELECT ts_ms FROM samples WHERE coop = ?1 AND drone = ?2 AND ts_ms >= b
         AND ts_ms < b + ?5 ORDER BY ts_ms DESC LIMIT 1)
    FROM k
)
SELECT ends.b, ends.t0 = ends.t1, f.lat, f.lon, f.spraying, l.lat, l.lon, l.spraying
FROM ends
JOIN samples f ON f.coop = ?1 AND f.drone = ?2 AND f.ts_ms = ends.t0
JOIN samples l ON l.coop = ?1 AND l.drone = ?2 AND l.ts_ms = ends.t1
ORDER BY ends.b
"""
_INT64: Final = (-(2**63), 2**63 - 1)


class SqliteStore:
    """Telemetry in a SQLite file: one row per (coop, drone, ts_ms); a rewrite replaces it."""

    def __init__(self, path: Path | str, *, synchronous: str = "FULL") -> None:
        if synchronous not in {"FULL", "NORMAL", "EXTRA"}:
            raise ValueError(f"SqliteStore: synchronous={synchronous!r} (FULL, NORMAL, EXTRA)")
        self.path = Path(path)
        self.synchronous = synchronous
        self._local = threading.local()
        self._lock = threading.Lock()
        self._conns: list[sqlite3.Connection] = []
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailableError(f"SQLite store {self.path}: {exc}") from exc
        with self._guard("create schema"):
            self._conn().executescript(SCHEMA)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        return conn

    def _guard(self, what: str) -> AbstractContextManager[None]:
        return _errors(f"SQLite store {self.path}: {what}")

    # --- writes ---------------------------------------------------------------------------

    def write_samples(self, samples: Sequence[Sample]) -> None:
        """Insert or replace the samples and advance each drone's last-seen, one transaction."""
        if not samples:
            return
        rows = [_sample_row(s) for s in samples]
        latest: dict[tuple[str, str], Sample] = {}
        for s in samples:
            seen = latest.get((s.coop, s.drone))
            if seen is None or s.ts_ms >= seen.ts_ms:
                latest[(s.coop, s.drone)] = s
        last = [(s.coop, s.drone, s.ts_ms, s.lat, s.lon, s.battery_pct) for s in latest.values()]
        with self._guard(f"write {len(rows)} samples"):
            self._transaction(((_INSERT_SAMPLE, rows), (_UPSERT_LAST_SEEN, last)))

    def write_events(self, events: Sequence[Event]) -> None:
        """Insert or replace the events (keyed by coop, drone, ts, type), one transaction."""
        if not events:
            return
        rows = [_event_row(e) for e in events]
        with self._guard(f"write {len(rows)} events"):
            self._transaction(((_INSERT_EVENT, rows),))

    def _transaction(self, statements: Iterable[tuple[str, list[tuple[Any, ...]]]]) -> None:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for sql, rows in statements:
                conn.executemany(sql, rows)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # --- reads ----------------------------------------------------------------------------

    def drone_samples(self, coop: str, drone: str, start_ms: int, end_ms: int) -> list[Sample]:
        """One drone's samples with start <= ts < end, oldest first."""
        with self._guard(f"read {coop}/{drone}"):
            cur = self._conn().execute(_SELECT_DRONE, (coop, drone, start_ms, end_ms))
            return [_sample(row) for row in cur]

    def samples_in_area(self, bbox: BBox, start_ms: int, end_ms: int) -> list[Sample]:
        """Every drone's samples inside ``bbox`` with start <= ts < end, by (ts, coop, drone)."""
        params = (start_ms, end_ms, bbox.min_lat, bbox.max_lat, bbox.min_lon, bbox.max_lon)
        with self._guard("read area"):
            return [_sample(row) for row in self._conn().execute(_SELECT_AREA, params)]

    def drone_events(self, coop: str, drone: str, start_ms: int, end_ms: int) -> list[Event]:
        """One drone's events with start <= ts < end, oldest first (ties by type)."""
        with self._guard(f"read events {coop}/{drone}"):
            cur = self._conn().execute(_SELECT_EVENTS, (coop, drone, start_ms, end_ms))
            return [Event(coop, drone, ts, typ, orjson.loads(attrs)) for ts, typ, attrs in cur]

    #: ``TelemetryStore.drone_track``: ``thin_track`` over the ``track_*`` queries below, thinned
    #: in SQL (buckets by integer division of ts, ``lag`` for gaps): no more than
    #: ``max_points`` rows leave SQLite.
    drone_track = thin_track

    def track_stats(
        self, coop: str, drone: str, start_ms: int, end_ms: int, *, count_to: int | None
    ) -> TrackStats:
        """First and last sample and the count (to ``count_to``), from the primary key."""
        key = (coop, drone, start_ms, end_ms)
        with self._guard(f"track stats {coop}/{drone}"):
            conn = self._conn()
            first, last = conn.execute(_TRACK_ENDS, key * 2).fetchone()
            if first is None:
                return TrackStats(0, None, None)
            cap = -1 if count_to is None else count_to
            (count,) = conn.execute(_TRACK_COUNT_TO, (*key, cap)).fetchone()
            ends = {
                _track_point(r).ts_ms: _track_point(r)
                for r in conn.execute(
                    _TRACK_AT, (coop, drone, orjson.dumps([first, last]).decode())
                )
            }
        return TrackStats(int(count), ends[first], ends[last])

    def track_points(
        self, coop: str, drone: str, start_ms: int, end_ms: int
    ) -> Iterator[TrackPoint]:
        """Every sample, oldest first, read row by row."""
        with self._guard(f"read track {coop}/{drone}"):
            cur = self._conn().execute(_TRACK_POINTS, (coop, drone, start_ms, end_ms))
            rows = cur.fetchmany(1000)
            while rows:
                yield from (_track_point(r) for r in rows)
                rows = cur.fetchmany(1000)

    def track_gaps(
        self, coop: str, drone: str, start_ms: int, end_ms: int, *, gap_ms: int, limit: int
    ) -> list[tuple[int, int]]:
        """(ts, previous ts) after each gap longer than ``gap_ms``, oldest first."""
        with self._guard(f"track gaps {coop}/{drone}"):
            cur = self._conn().execute(_TRACK_GAPS, (coop, drone, start_ms, end_ms, gap_ms, limit))
            return [(int(t), int(prev)) for t, prev in cur]

    def track_gap_ends(
        self, coop: str, drone: str, gaps: Sequence[tuple[int, int]]
    ) -> list[TrackPoint]:
        """The samples on both sides of each gap, oldest first."""
        times = orjson.dumps(sorted({int(t) for gap in gaps for t in gap})).decode()
        with self._guard(f"read track ends {coop}/{drone}"):
            cur = self._conn().execute(_TRACK_AT, (coop, drone, times))
            return [_track_point(r) for r in cur]

    def track_buckets(
        self,
        coop: str,
        drone: str,
        start_ms: int,
        end_ms: int,
        *,
        origin_ms: int,
        width_ms: int,
        spans: Sequence[tuple[int, int]],
    ) -> tuple[list[TrackBucket], int | None]:
        """First and last sample of each bucket strictly inside a span (all ``thin_track``
        uses), found by seeks; uncounted (``None``) unless one sample, no total. Times are the
        bucket's start, as InfluxDB gives them, so both stores thin to the same answer."""
        out: list[TrackBucket] = []
        with self._guard(f"track buckets {coop}/{drone}"):
            conn = self._conn()
            for first_ms, last_ms in spans:
                lo = origin_ms + ((first_ms - origin_ms) // width_ms + 1) * width_ms
                hi = min(last_ms + 1, end_ms)
                params = (coop, drone, max(lo, start_ms), hi, width_ms)
                for b, single, lat0, lon0, on0, lat1, lon1, on1 in conn.execute(
                    _TRACK_BUCKETS, params
                ):
                    first = TrackPoint(b, lat0, lon0, bool(on0))
                    last = TrackPoint(b, lat1, lon1, bool(on1))
                    out.append(TrackBucket(b, 1 if single else None, first, last))
        return out, None

    def drones(self) -> list[DroneLastSeen]:
        """Every drone with a stored sample and its latest sample's time and position."""
        with self._guard("read drones"):
            return [DroneLastSeen(*row) for row in self._conn().execute(_SELECT_LAST_SEEN)]

    def ping(self) -> None:
        """Raise ``StoreUnavailableError`` unless the database file answers a query."""
        with self._guard("ping"):
            self._conn().execute("SELECT count(*) FROM sqlite_master").fetchone()

    def close(self) -> None:
        """Close every thread's connection (call once no thread uses the store any more)."""
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            conn.close()
        self._local = threading.local()


@contextmanager
def _errors(where: str) -> Iterator[None]:
    """Turn sqlite3 errors into store errors that say which file and what operation."""
    try:
        yield
    except (sqlite3.IntegrityError, OverflowError) as exc:
        raise StoreDataError(f"{where}: {exc}") from exc
    except sqlite3.Error as exc:
        raise StoreUnavailableError(f"{where}: {exc}") from exc


def _finite(value: float | None, name: str, s: Sample) -> float | None:
    if value is None or (value.__class__ is float and value - value == 0.0):
        return value
    if isinstance(value, float | int) and not isinstance(value, bool) and isfinite(value):
        return float(value)
    raise StoreDataError(f"sample {s.coop}/{s.drone} ts={s.ts_ms}: {name}={value!r} is not finite")


def _sample_row(s: Sample) -> tuple[Any, ...]:
    if s.seq is not None and not _INT64[0] <= s.seq <= _INT64[1]:
        raise StoreDataError(f"sample {s.coop}/{s.drone} ts={s.ts_ms}: seq={s.seq} overflows")
    return (
        s.coop,
        s.drone,
        s.ts_ms,
        _finite(s.lat, "lat", s),
        _finite(s.lon, "lon", s),
        bool(s.spraying),
        s.seq,
        _finite(s.alt_m, "alt_m", s),
        _finite(s.speed_mps, "speed_mps", s),
        _finite(s.heading_deg, "heading_deg", s),
        _finite(s.battery_pct, "battery_pct", s),
        _finite(s.flow_lpm, "flow_lpm", s),
        _finite(s.tank_l, "tank_l", s),
        _finite(s.swath_m, "swath_m", s),
        s.fix,
    )


def _event_row(e: Event) -> tuple[Any, ...]:
    try:
        attrs = orjson.dumps(e.attrs, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError as exc:
        raise StoreDataError(f"event {e.coop}/{e.drone} ts={e.ts_ms}: attrs: {exc}") from exc
    return (e.coop, e.drone, e.ts_ms, e.type, attrs)


def _track_point(row: tuple[Any, ...]) -> TrackPoint:
    ts, lat, lon, spraying = row
    return TrackPoint(ts, lat, lon, bool(spraying))


def _sample(row: tuple[Any, ...]) -> Sample:
    coop, drone, ts, lat, lon, spraying, *rest = row
    return Sample(coop, drone, ts, lat, lon, bool(spraying), *rest)
