"""``TelemetryStore`` on InfluxDB through the v1 HTTP API (``/write``, ``/query``).

The one API served by InfluxDB 1.x natively and by 2.x and 3.x through their
v1-compatibility endpoints. Authentication is a Basic header (username and password; on
3.x the token is the password), which all three accept. ``ensure_database`` creates the
database on 1.x; on 2.x/3.x the operator creates the bucket/database and, on 2.x, the DBRP
mapping for it.

Writes are idempotent (same measurement + tag set + timestamp overwrites the fields it
carries); InfluxDB merges fields, so a rewrite that omits an optional field keeps the earlier
value, where SQLite replaces the whole row. Reads use InfluxQL with user values bound
through ``params`` and ``chunked=true`` so no ``max-row-limit`` truncates them. InfluxDB's
JSON writes ``-0.0`` as ``-0``, so negative zero reads back as ``0.0``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, NoReturn, Self, TypeVar
from urllib.parse import unquote

import httpx
import orjson

from storage.contract import BBox, StoreDataError, StoreUnavailableError
from storage.lineprotocol import (
    MIN_TS_MS,
    LineProtocolError,
    event_line,
    row_lines,
    samples_body,
)
from storage.records import SAMPLE_VALUE_KEYS, DroneLastSeen, Event, Sample
from storage.secrets import without_userinfo
from storage.thinning import TrackBucket, TrackPoint, TrackStats, thin_track

#: Sample fields in the order they are selected.
SAMPLE_FIELDS: Final = SAMPLE_VALUE_KEYS
T = TypeVar("T")

_RETRY_STATUSES: Final = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded retries with exponential backoff for 5xx, 429 and connection errors."""

    attempts: int = 4
    initial_s: float = 0.1
    max_s: float = 2.0

    def delays(self) -> Iterator[float]:
        """The waits between attempts: ``attempts - 1`` of them."""
        delay = self.initial_s
        for _ in range(self.attempts - 1):
            yield delay
            delay = min(delay * 2, self.max_s)


def quote_identifier(name: str) -> str:
    """An InfluxQL double-quoted identifier (database, measurement, tag or field name)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _window(start_ms: int, end_ms: int) -> dict[str, int]:
    """Bound ``$start``/``$end`` in ns, clamped to InfluxDB's time range."""
    lo, hi = MIN_TS_MS * 1_000_000, 2**63 - 1
    start = min(max(int(start_ms) * 1_000_000, lo), hi)
    end = min(max(int(end_ms) * 1_000_000, lo), hi)
    return {"start": start, "end": end}


# Every query is a constant: user values only ever travel as bound ``params``.
Q_DRONE_SAMPLES: Final = (
    'SELECT "lat", "lon", "spraying", "seq", "alt_m", "speed_mps", "heading_deg", '
    '"battery_pct", "flow_lpm", "tank_l", "swath_m", "fix" FROM "telemetry" '
    'WHERE "coop" = $coop AND "drone" = $drone AND time >= $start AND time < $end'
)
Q_SAMPLES_IN_AREA: Final = (
    'SELECT "lat", "lon", "spraying", "seq", "alt_m", "speed_mps", "heading_deg", '
    '"battery_pct", "flow_lpm", "tank_l", "swath_m", "fix" FROM "telemetry" '
    'WHERE "lat" >= $min_lat AND "lat" <= $max_lat AND "lon" >= $min_lon '
    'AND "lon" <= $max_lon AND time >= $start AND time < $end GROUP BY "coop", "drone"'
)
Q_DRONE_EVENTS: Final = (
    'SELECT "attrs" FROM "events" WHERE "coop" = $coop AND "drone" = $drone '
    'AND time >= $start AND time < $end GROUP BY "type"'
)
#: First and last sample, and how many (counted to a cap: the subquery reads no further).
Q_TRACK_ENDS: Final = (
    'SELECT first("lat") AS "lat", "lon", "spraying" FROM "telemetry" WHERE "coop" = $coop '
    'AND "drone" = $drone AND time >= $start AND time < $end; '
    'SELECT last("lat") AS "lat", "lon", "spraying" FROM "telemetry" WHERE "coop" = $coop '
    'AND "drone" = $drone AND time >= $start AND time < $end'
)
Q_TRACK_COUNT: Final = (
    'SELECT count("lat") FROM "telemetry" WHERE "coop" = $coop AND "drone" = $drone '
    "AND time >= $start AND time < $end"
)
Q_TRACK_COUNT_TO: Final = (
    'SELECT count("lat") FROM (SELECT "lat" FROM "telemetry" WHERE "coop" = $coop '
    'AND "drone" = $drone AND time >= $start AND time < $end LIMIT {limit:d})'
)
Q_TRACK_POINTS: Final = (
    'SELECT "lat", "lon", "spraying" FROM "telemetry" WHERE "coop" = $coop '
    'AND "drone" = $drone AND time >= $start AND time < $end'
)
#: ``elapsed`` runs inside influxd: only the samples after a gap leave it (over the boolean
#: ``spraying``, which every sample has and which decodes fastest).
Q_TRACK_GAPS: Final = (
    'SELECT "elapsed" FROM (SELECT elapsed("spraying", 1ms) FROM "telemetry" WHERE "coop" = $coop '
    'AND "drone" = $drone AND time >= $start AND time < $end) '
    'WHERE "elapsed" > $gap LIMIT {limit:d}'
)
#: Both samples around one gap: nothing lies between them, so the range holds just two.
Q_TRACK_GAP_ENDS: Final = (
    'SELECT "lat", "lon", "spraying" FROM "telemetry" '
    'WHERE "coop" = $coop AND "drone" = $drone AND time >= $a{i:d} AND time <= $b{i:d}'
)
#: Bucket width and offset are integers the store computes, never user text. A selector
#: with other fields takes them from its own point, so each bucket's first and last sample
#: cost one statement each (measured: faster than six selectors in one).
Q_TRACK_BUCKETS: Final = (
    'SELECT first("lat") AS "lat", "lon", "spraying" FROM "telemetry" WHERE "coop" = $coop '
    'AND "drone" = $drone AND time >= $start AND time < $end '
    "GROUP BY time({width:d}ms, {offset:d}ms) fill(none); "
    'SELECT last("lat") AS "lat", "lon", "spraying" FROM "telemetry" WHERE "coop" = $coop '
    'AND "drone" = $drone AND time >= $start AND time < $end '
    "GROUP BY time({width:d}ms, {offset:d}ms) fill(none); "
    'SELECT count("spraying") FROM "telemetry" WHERE "coop" = $coop AND "drone" = $drone '
    "AND time >= $start AND time < $end GROUP BY time({width:d}ms, {offset:d}ms) fill(none)"
)
#: Gaps whose ends are read per request (a statement each: InfluxQL has no ``time IN``).
_GAPS_PER_REQUEST: Final = 250

Q_DRONES: Final = (
    'SELECT last("lat") AS "lat", "lon", "battery_pct" FROM "telemetry" GROUP BY "coop", "drone"'
)


class InfluxStore:
    """Telemetry in InfluxDB: measurement ``telemetry`` (tags coop, drone) and ``events``.

    One keep-alive ``httpx.Client`` (its pool is thread-safe), so the ingest writer and API
    readers can share a store.
    """

    def __init__(
        self,
        url: str,
        database: str,
        username: str | None = None,
        password: str | None = None,
        *,
        batch_lines: int = 5_000,
        timeout: float = 30.0,
        retry: RetryPolicy = RetryPolicy(),
        chunk_size: int = 10_000,
        compress_responses: bool = False,
        create_database: bool = False,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not database:
            raise ValueError("InfluxStore: database name is empty")
        # Credentials in the URL become the Basic header, so ``url`` (shown in every
        # error message) never holds a password.
        bare, url_user, url_password = without_userinfo(url)
        if username is None and url_user is not None:
            username, password = unquote(url_user), unquote(url_password or "")
        self.url = bare.rstrip("/")
        self.database = database
        self.batch_lines = batch_lines
        self.retry = retry
        self.chunk_size = chunk_size
        #: Create the database (1.x) when a write finds it missing, e.g. when InfluxDB was
        #: down as the worker started, or the database was dropped under it.
        self.create_database = create_database
        # gzip costs influxd more CPU than it saves on a LAN (drone-hour read: 0.50 s with,
        # 0.19 s without); turn it on for a server across a slow link.
        self._accept = {"Accept-Encoding": "gzip" if compress_responses else "identity"}
        auth = httpx.BasicAuth(username, password or "") if username is not None else None
        self._client = httpx.Client(
            base_url=self.url,
            auth=auth,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            transport=transport,
        )

    @classmethod
    def open(
        cls,
        url: str,
        database: str,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Self:
        """A store whose database exists: created if missing (1.x; see ``ensure_database``)."""
        store = cls(url, database, username, password, **kwargs)
        try:
            store.ensure_database()
        except BaseException:
            store.close()
            raise
        return store

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"InfluxStore({self.url!r}, {self.database!r})"

    # --- administration -------------------------------------------------------------------

    def ensure_database(self) -> None:
        """``CREATE DATABASE`` (a no-op when it exists). 1.x only: on 2.x/3.x the operator
        creates the bucket/database (and on 2.x its DBRP mapping) beforehand."""
        self._command(f"CREATE DATABASE {quote_identifier(self.database)}")

    def drop_database(self) -> None:
        """``DROP DATABASE``: deletes every point. For tests and operators, never ingest."""
        self._command(f"DROP DATABASE {quote_identifier(self.database)}")

    def ping(self) -> None:
        """One ``GET /ping``; anything but 204 raises ``StoreUnavailableError``."""
        try:
            response = self._client.get("/ping")
        except httpx.HTTPError as exc:
            raise StoreUnavailableError(f"InfluxDB {self.url}: ping failed: {exc!r}") from exc
        if response.status_code != 204:
            raise StoreUnavailableError(
                f"InfluxDB {self.url}: ping answered {response.status_code}: {response.text[:200]}"
            )

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    # --- writes ---------------------------------------------------------------------------

    def write_samples(self, samples: Sequence[Sample]) -> None:
        """Write samples in batches of ``batch_lines``; 204 from InfluxDB means durable (WAL)."""
        self.write_encoded(self.encode_samples(samples))

    def write_events(self, events: Sequence[Event]) -> None:
        """Write events in batches of ``batch_lines``."""
        self._write_lines(events, event_line)

    def encode_samples(self, samples: Sequence[Sample]) -> list[tuple[bytes, int]]:
        """The ``/write`` bodies for ``samples`` (with their line counts), for
        ``write_encoded``: the ingest worker encodes a batch in its decoder thread while the
        writer thread waits on InfluxDB for the previous one. StoreDataError as ``write_samples``.
        """
        out = []
        for start in range(0, len(samples), self.batch_lines):
            chunk = samples[start : start + self.batch_lines]
            try:
                body = samples_body(chunk)
            except LineProtocolError as exc:
                raise StoreDataError(f"InfluxDB {self.database}: {exc}") from exc
            out.append((body, len(chunk)))
        return out

    def encode_rows(
        self, groups: Sequence[tuple[str, str, Sequence[tuple[Any, ...]]]]
    ) -> list[tuple[bytes, int]]:
        """The ``/write`` bodies for (coop, drone, rows) groups of validated sample values
        (``lineprotocol.row_lines``), for ``write_encoded``: the ingest worker's common
        samples, encoded without ``Sample`` objects. StoreDataError if a row is not valid."""
        out = []
        lines: list[str] = []
        try:
            for coop, drone, rows in groups:
                lines += row_lines(coop, drone, rows)
                if len(lines) >= self.batch_lines:
                    out.append(("\n".join(lines).encode(), len(lines)))
                    lines = []
        except LineProtocolError as exc:
            raise StoreDataError(f"InfluxDB {self.database}: {exc}") from exc
        if lines:
            out.append(("\n".join(lines).encode(), len(lines)))
        return out

    def write_encoded(self, bodies: Sequence[tuple[bytes, int]]) -> None:
        """Write bodies made by ``encode_samples``; the same outcomes as ``write_samples``."""
        for body, lines in bodies:
            self._write_body(body, lines)

    def _encode(self, items: Sequence[T], encode: Callable[[T], str]) -> list[tuple[bytes, int]]:
        out = []
        for start in range(0, len(items), self.batch_lines):
            chunk = items[start : start + self.batch_lines]
            try:
                body = "\n".join([encode(item) for item in chunk]).encode()
            except LineProtocolError as exc:
                raise StoreDataError(f"InfluxDB {self.database}: {exc}") from exc
            out.append((body, len(chunk)))
        return out

    def _write_lines(self, items: Sequence[T], encode: Callable[[T], str]) -> None:
        for start in range(0, len(items), self.batch_lines):
            for body, lines in self._encode(items[start : start + self.batch_lines], encode):
                self._write_body(body, lines)

    def _write_body(self, body: bytes, lines: int) -> None:
        params = {"db": self.database, "precision": "ms"}
        response = self._request("POST", "/write", params=params, content=body)
        if response.status_code == 404 and self.create_database:
            self.ensure_database()
            response = self._request("POST", "/write", params=params, content=body)
        if response.status_code in {200, 204}:
            return
        detail = _error_text(response)
        where = f"InfluxDB {self.url} db={self.database}: write of {lines} lines"
        if response.status_code == 400:
            raise StoreDataError(f"{where} refused: {detail}")
        if response.status_code == 404:
            raise StoreUnavailableError(
                f"{where}: {detail} (create it: 1.x ensure_database(); 2.x/3.x the operator)"
            )
        raise StoreUnavailableError(f"{where} failed with {response.status_code}: {detail}")

    # --- reads ----------------------------------------------------------------------------

    def drone_samples(self, coop: str, drone: str, start_ms: int, end_ms: int) -> list[Sample]:
        """One drone's samples with start <= ts < end, oldest first."""
        params = {"coop": coop, "drone": drone, **_window(start_ms, end_ms)}
        out: list[Sample] = []
        for _, columns, values in self._series(Q_DRONE_SAMPLES, params):
            out += _samples(coop, drone, columns, values)
        return out

    def samples_in_area(self, bbox: BBox, start_ms: int, end_ms: int) -> list[Sample]:
        """Every drone's samples inside ``bbox`` with start <= ts < end, by (ts, coop, drone)."""
        params: dict[str, float] = {
            "min_lat": float(bbox.min_lat),
            "max_lat": float(bbox.max_lat),
            "min_lon": float(bbox.min_lon),
            "max_lon": float(bbox.max_lon),
            **_window(start_ms, end_ms),
        }
        out: list[Sample] = []
        for tags, columns, values in self._series(Q_SAMPLES_IN_AREA, params):
            out += _samples(tags["coop"], tags["drone"], columns, values)
        out.sort(key=lambda s: (s.ts_ms, s.coop, s.drone))
        return out

    def drone_events(self, coop: str, drone: str, start_ms: int, end_ms: int) -> list[Event]:
        """One drone's events with start <= ts < end, oldest first (ties by type)."""
        params = {"coop": coop, "drone": drone, **_window(start_ms, end_ms)}
        out = [
            Event(coop, drone, int(row["time"]), tags["type"], orjson.loads(row["attrs"]))
            for tags, row in self._select(Q_DRONE_EVENTS, params)
        ]
        out.sort(key=lambda e: (e.ts_ms, e.type))
        return out

    #: ``TelemetryStore.drone_track``: ``thin_track`` over the ``track_*`` queries below, thinned
    #: by influxd (``GROUP BY time()``, ``elapsed()``): no more than ``max_points`` rows cross
    #: the wire.
    drone_track = thin_track

    def track_stats(
        self, coop: str, drone: str, start_ms: int, end_ms: int, *, count_to: int | None
    ) -> TrackStats:
        """First and last sample and the count (to ``count_to``): three statements, one
        request."""
        params = {"coop": coop, "drone": drone, **_window(start_ms, end_ms)}
        count_q = Q_TRACK_COUNT if count_to is None else Q_TRACK_COUNT_TO.format(limit=count_to)
        found: dict[int, list[Any]] = {}
        for sid, _, _, values in self._statements(f"{Q_TRACK_ENDS}; {count_q}", params):
            found.setdefault(sid, []).extend(values)
        first, last = (_track_point(found[i][0]) if found.get(i) else None for i in (0, 1))
        count = int(found[2][0][1]) if found.get(2) else 0
        return TrackStats(count, first, last)

    def track_points(
        self, coop: str, drone: str, start_ms: int, end_ms: int
    ) -> Iterator[TrackPoint]:
        """Every sample, oldest first, streamed chunk by chunk."""
        params = {"coop": coop, "drone": drone, **_window(start_ms, end_ms)}
        for _, _, values in self._stream(Q_TRACK_POINTS, params):
            for row in values:
                if not _partial(row):  # a point still being written (see ``_samples``)
                    yield _track_point(row)

    def track_gaps(
        self, coop: str, drone: str, start_ms: int, end_ms: int, *, gap_ms: int, limit: int
    ) -> list[tuple[int, int]]:
        """(ts, previous ts) after each gap longer than ``gap_ms``, computed by influxd."""
        params = {"coop": coop, "drone": drone, "gap": int(gap_ms), **_window(start_ms, end_ms)}
        q = Q_TRACK_GAPS.format(limit=int(limit))
        return [
            (int(t), int(t) - int(elapsed))
            for _, _, values in self._series(q, params)
            for t, elapsed in values
        ]

    def track_gap_ends(
        self, coop: str, drone: str, gaps: Sequence[tuple[int, int]]
    ) -> list[TrackPoint]:
        """The samples around each gap, a few hundred statements per request."""
        wanted = {t for gap in gaps for t in gap}
        out: list[TrackPoint] = []
        for at in range(0, len(gaps), _GAPS_PER_REQUEST):
            chunk = gaps[at : at + _GAPS_PER_REQUEST]
            q = "; ".join(Q_TRACK_GAP_ENDS.format(i=i) for i in range(len(chunk)))
            params: dict[str, Any] = {"coop": coop, "drone": drone}
            for i, (ts, prev) in enumerate(chunk):
                params[f"a{i}"], params[f"b{i}"] = int(prev) * 1_000_000, int(ts) * 1_000_000
            rows = (_track_point(r) for _, _, _, v in self._statements(q, params) for r in v)
            out += [p for p in rows if p.ts_ms in wanted]
        out.sort(key=lambda p: p.ts_ms)
        return out

    def track_buckets(
        self,
        coop: str,
        drone: str,
        start_ms: int,
        end_ms: int,
        *,
        origin_ms: int,
        width_ms: int,
        spans: Sequence[tuple[int, int]] = (),  # noqa: ARG002 -- one scan reads all buckets
    ) -> tuple[list[TrackBucket], int | None]:
        """First and last sample of each non-empty bucket, by ``GROUP BY time()`` in influxd
        (every bucket of the range: one scan costs the same whatever ``spans`` says).

        influxd reports each bucket's start as the time of both; the stored positions and
        spray states are those of the bucket's first and last sample.
        """
        params = {"coop": coop, "drone": drone, **_window(start_ms, end_ms)}
        q = Q_TRACK_BUCKETS.format(width=int(width_ms), offset=int(origin_ms) % int(width_ms))
        found: dict[int, dict[int, list[Any]]] = {0: {}, 1: {}, 2: {}}
        for sid, _, _, values in self._statements(q, params):
            found[sid].update((int(row[0]), row) for row in values)
        firsts, lasts, counts = found[0], found[1], found[2]
        buckets = [
            TrackBucket(
                t,
                int(counts[t][1]),
                _track_point(firsts[t]),
                _track_point(lasts[t]),
            )
            for t in sorted(firsts)
        ]
        return buckets, sum(int(row[1]) for row in counts.values())

    def drones(self) -> list[DroneLastSeen]:
        """Each drone's latest sample: ``last(lat)`` carries its point's time, lon, battery."""
        out = [
            DroneLastSeen(
                tags["coop"],
                tags["drone"],
                int(row["time"]),
                float(row["lat"]),
                float(row["lon"]),
                _opt_float(row.get("battery_pct")),
            )
            for tags, row in self._select(Q_DRONES, {})
        ]
        out.sort(key=lambda d: (d.coop, d.drone))
        return out

    def query(self, q: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Rows (column → value, plus ``tags``) of one InfluxQL SELECT with bound params."""
        return [{**row, "tags": tags} for tags, row in self._select(q, params or {})]

    def _select(
        self, q: str, params: Mapping[str, Any]
    ) -> Iterator[tuple[dict[str, str], dict[str, Any]]]:
        """Run a SELECT, yielding (tags, column → value) for every row of every series."""
        for tags, columns, values in self._series(q, params):
            for row in values:
                yield tags, dict(zip(columns, row, strict=True))

    def _series(
        self, q: str, params: Mapping[str, Any]
    ) -> Iterator[tuple[dict[str, str], list[str], list[list[Any]]]]:
        """Run a SELECT chunked, yielding (tags, columns, rows) of each series in each chunk."""
        for _, tags, columns, values in self._statements(q, params):
            yield tags, columns, values

    def _query_params(self, q: str, params: Mapping[str, Any]) -> dict[str, str]:
        return {
            "db": self.database,
            "q": q,
            "epoch": "ms",
            "chunked": "true",
            "chunk_size": str(self.chunk_size),
            "params": orjson.dumps(params).decode(),
        }

    def _statements(
        self, q: str, params: Mapping[str, Any]
    ) -> Iterator[tuple[int, dict[str, str], list[str], list[list[Any]]]]:
        """Run one or more SELECTs chunked: (statement id, tags, columns, rows) per series."""
        query = self._query_params(q, params)
        response = self._request("GET", "/query", params=query, headers=self._accept)
        if response.status_code != 200:
            self._query_failed(q, response.status_code, _error_text(response))
        for line in response.content.splitlines():
            yield from self._chunk(q, response.status_code, line)

    def _stream(
        self, q: str, params: Mapping[str, Any]
    ) -> Iterator[tuple[dict[str, str], list[str], list[list[Any]]]]:
        """Run a SELECT chunked and parse each chunk as it arrives (memory: one chunk)."""
        query = self._query_params(q, params)
        try:
            with self._client.stream(
                "GET", "/query", params=query, headers=self._accept
            ) as response:
                if response.status_code != 200:
                    response.read()
                    self._query_failed(q, response.status_code, _error_text(response))
                for line in response.iter_lines():
                    for _, tags, columns, values in self._chunk(q, 200, line.encode()):
                        yield tags, columns, values
        except httpx.HTTPError as exc:
            raise StoreUnavailableError(f"InfluxDB {self.url}: query failed: {exc!r}") from exc

    def _chunk(
        self, q: str, status: int, line: bytes
    ) -> Iterator[tuple[int, dict[str, str], list[str], list[list[Any]]]]:
        """The series of one chunk (one line of a chunked answer); errors raise."""
        if not line.strip():
            return
        chunk = orjson.loads(line)
        if "error" in chunk:
            self._query_failed(q, status, chunk["error"])
        for result in chunk.get("results", ()):
            if "error" in result:
                self._query_failed(q, status, result["error"])
            sid = int(result.get("statement_id", 0))
            for series in result.get("series", ()):
                yield sid, series.get("tags", {}), series["columns"], series.get("values", [])

    def _query_failed(self, q: str, status: int, detail: str) -> NoReturn:
        where = f"InfluxDB {self.url} db={self.database}"
        if status in {401, 403} or "database not found" in detail:
            raise StoreUnavailableError(f"{where}: {detail}")
        raise StoreDataError(f"{where}: query failed ({status}): {detail}; query: {q}")

    def _command(self, q: str) -> None:
        response = self._request("POST", "/query", params={"q": q})
        detail = _error_text(response) if response.status_code != 200 else ""
        if not detail:
            results = orjson.loads(response.content).get("results", [])
            detail = next((r["error"] for r in results if "error" in r), "")
        if detail:
            raise StoreUnavailableError(f"InfluxDB {self.url}: {q} failed: {detail}")

    # --- transport ------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request with bounded retries; httpx errors become ``StoreUnavailableError``."""
        delays = self.retry.delays()
        while True:
            try:
                response = self._client.request(method, path, **kwargs)
            except httpx.HTTPError as exc:
                delay = next(delays, None)
                if delay is None:
                    raise StoreUnavailableError(
                        f"InfluxDB {self.url} {method} {path}: {exc!r} "
                        f"(after {self.retry.attempts} attempts)"
                    ) from exc
            else:
                if response.status_code not in _RETRY_STATUSES:
                    return response
                delay = next(delays, None)
                if delay is None:
                    raise StoreUnavailableError(
                        f"InfluxDB {self.url} {method} {path}: {response.status_code} "
                        f"{_error_text(response)} (after {self.retry.attempts} attempts)"
                    )
                delay = max(delay, _retry_after(response))
            time.sleep(delay)


def _error_text(response: httpx.Response) -> str:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.text.strip()[:500]
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])
    return response.text.strip()[:500]


def _retry_after(response: httpx.Response) -> float:
    try:
        return min(float(response.headers.get("Retry-After", 0)), 30.0)
    except ValueError:
        return 0.0


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


_SAMPLE_COLUMNS: Final = ["time", *SAMPLE_FIELDS]


def _partial(row: list[Any]) -> bool:
    """Whether a (time, lat, lon, spraying, ...) row lacks one of its first four values."""
    return any(v is None for v in row[:4])


def _track_point(row: list[Any]) -> TrackPoint:
    """A (time, lat, lon, spraying) row."""
    t, lat, lon, spraying = row[:4]
    return TrackPoint(int(t), float(lat), float(lon), bool(spraying))


def _samples(coop: str, drone: str, columns: list[str], rows: list[list[Any]]) -> list[Sample]:
    """Samples from one series' rows (InfluxDB writes whole floats as ints: 5.0 → 5).

    A row without its time, position or spray state is a point influxd is still writing
    (it stores each field on its own, so a read beside a write may see some fields of a
    point and not yet the others): it is left for the next read, never a crash."""
    if columns != _SAMPLE_COLUMNS:
        pos = [columns.index(c) if c in columns else None for c in _SAMPLE_COLUMNS]
        rows = [[None if i is None else row[i] for i in pos] for row in rows]
    rows = [row for row in rows if not _partial(row)]
    return [
        Sample(
            coop,
            drone,
            int(t),
            float(lat),
            float(lon),
            bool(spraying),
            None if seq is None else int(seq),
            None if alt is None else float(alt),
            None if speed is None else float(speed),
            None if heading is None else float(heading),
            None if battery is None else float(battery),
            None if flow is None else float(flow),
            None if tank is None else float(tank),
            None if swath is None else float(swath),
            fix,
        )
        for t, lat, lon, spraying, seq, alt, speed, heading, battery, flow, tank, swath, fix in rows
    ]
