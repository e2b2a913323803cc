"""Metadata store benchmark: the embedded SQLite default beside PostgreSQL, same operations.

Run: ``.venv/bin/python -m bench.metadata [--fields 10000] [--runs 3]``. Starts its own
PostgreSQL (tests.servers, on a free port, with its default durability: fsync on, as SQLite
runs ``synchronous=FULL``) in a temp folder; the client and server share this machine.
Timed on each store, medians of ``--runs``: registering the fields in 1,000-field saves,
reading one field by id, ``fields_version`` (what every cache checks), reading every
current field, storing one flight with two per-field states, and listing a day's flights.
SQLite is the baseline; the ratio is PostgreSQL's time over SQLite's.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from storage.metadata import FlightFieldState, MetadataDB, StoredField, StoredFlight
from tests.servers import running_postgres

T0 = 1_764_000_000_000
DAY = 86_400_000


def feature(i: int) -> str:
    """A GeoJSON Feature of about the size of a real plot's (a 12-vertex ring)."""
    rnd = random.Random(i)
    x, y = 106.5 + rnd.random() / 10, 21.05 + rnd.random() / 10
    ring = [[x + 0.0005 * rnd.random(), y + 0.0005 * rnd.random()] for _ in range(11)]
    ring.append(ring[0])
    return orjson.dumps(
        {"type": "Feature", "id": f"f{i}", "properties": {"name": f"plot {i}"},
         "geometry": {"type": "Polygon", "coordinates": [ring]}}
    ).decode()  # fmt: skip


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_once(db: MetadataDB, n_fields: int) -> dict[str, float]:
    """Seconds (or seconds per call) of each operation on one fresh database."""
    fields = [
        StoredField(f"f{i}", "field", "htx-a", f"nd-{i % 500}", feature(i)) for i in range(n_fields)
    ]
    out: dict[str, float] = {}
    out["register fields (1,000 per save), total s"] = timed(
        lambda: [db.save_fields(fields[i : i + 1000], at_ms=T0) for i in range(0, n_fields, 1000)]
    )
    ids = [f"f{random.randrange(n_fields)}" for _ in range(1000)]
    out["one field by id, ms"] = timed(lambda: [db.stored_field(i) for i in ids]) * 1000 / len(ids)
    out["fields_version, ms"] = timed(lambda: [db.fields_version() for _ in ids]) * 1000 / len(ids)
    out["every current field, s"] = timed(db.stored_fields)
    state = bytes(random.Random(1).randbytes(2000))

    def flight(k: int) -> None:
        start = T0 + k * 600_000
        db.save_flight(
            StoredFlight(f"c.d{k % 20}.{start}", "htx-a", f"d{k % 20}", start, start + 500_000,
                         open=False, summary='{"summary": true}', computed_ms=start),
            [FlightFieldState(f"f{k % n_fields}", 0.1, 2.0, state),
             FlightFieldState(f"f{(k + 1) % n_fields}", 0.1, 2.0, state)],
        )  # fmt: skip

    n_flights = 300
    out["store one flight (2 field states), ms"] = (
        timed(lambda: list(map(flight, range(n_flights)))) * 1000 / n_flights
    )
    out["a day's flights (144), ms"] = (
        timed(lambda: [db.flights(T0, T0 + DAY) for _ in range(50)]) * 1000 / 50
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fields", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, dict[str, list[float]]] = {"sqlite": {}, "postgres": {}}
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_postgres(Path(tmp) / "pg", durable=True) as pg,
    ):
        for run in range(args.runs):
            for kind in ("sqlite", "postgres"):
                where = (
                    str(Path(tmp) / f"m{run}.db")
                    if kind == "sqlite"
                    else pg.create_database(f"m{run}")
                )
                db = MetadataDB(where)
                try:
                    for name, value in run_once(db, args.fields).items():
                        results[kind].setdefault(name, []).append(value)
                finally:
                    db.close()
    print(f"metadata store, {args.fields:,} fields, median of {args.runs} runs "
          "(PostgreSQL 15 on this machine, fsync on; SQLite WAL synchronous=FULL):")  # fmt: skip
    print(f"  {'operation':<44} {'SQLite':>10} {'PostgreSQL':>11} {'PG/SQLite':>10}")
    for name, values in results["sqlite"].items():
        lite, post = statistics.median(values), statistics.median(results["postgres"][name])
        print(f"  {name:<44} {lite:>10.3f} {post:>11.3f} {post / lite:>9.2f}x")


if __name__ == "__main__":
    main()
