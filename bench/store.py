"""Telemetry store benchmark: encoder cost, write rate and drone-hour read time per store.

Run: ``.venv/bin/python -m bench.store [--samples 200000] [--runs 3]``. Starts its own influxd
(tests.servers) in a temp folder. Prints medians, each beside its baseline from the same run:
our line-protocol encoder beside a plain f-string that neither escapes nor checks, SQLite
``synchronous=FULL`` (what we ship) beside ``NORMAL``, and the two ways to ask InfluxDB for
every drone's last sample.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from storage.influx import Q_DRONES, InfluxStore
from storage.lineprotocol import sample_line
from storage.records import Sample
from storage.sqlite import SqliteStore
from tests.servers import running_influxd

T0 = 1_700_000_000_000
HZ = 10
HOUR_ROWS = 3600 * HZ
BATCH = 5_000
FIXES = ("3d", "dgps", "rtk_float", "rtk_fixed")


def make_samples(n: int, drones: int) -> list[Sample]:
    """``n`` full samples at 10 Hz, spread round-robin over ``drones`` drones."""
    rng = random.Random(7)
    out = []
    for i in range(n):
        d, k = i % drones, i // drones
        out.append(
            Sample(
                "htx-dongtrieu",
                f"dt-{d:02d}",
                T0 + k * (1000 // HZ),
                21.08 + rng.random() * 0.01,
                106.52 + rng.random() * 0.01,
                spraying=rng.random() < 0.7,
                seq=k,
                alt_m=round(2.5 + rng.random(), 2),
                speed_mps=rng.random() * 6,
                heading_deg=rng.random() * 360,
                battery_pct=100.0 - k * 0.001,
                flow_lpm=1.6 + rng.random() * 0.4,
                tank_l=max(0.0, 10.0 - k * 0.0004),
                swath_m=5.0,
                fix=FIXES[k % len(FIXES)],
            )
        )
    return out


def naive_line(s: Sample) -> str:
    """Baseline: one f-string, no escaping, no checks, every field assumed present."""
    return (
        f"telemetry,coop={s.coop},drone={s.drone} lat={s.lat},lon={s.lon},"
        f"spraying={'true' if s.spraying else 'false'},seq={s.seq}i,alt_m={s.alt_m},"
        f"speed_mps={s.speed_mps},heading_deg={s.heading_deg},battery_pct={s.battery_pct},"
        f'flow_lpm={s.flow_lpm},tank_l={s.tank_l},swath_m={s.swath_m},fix="{s.fix}" {s.ts_ms}'
    )


def median_s(
    fn: Callable[[], object], runs: int, setup: Callable[[], object] | None = None
) -> float:
    """Median wall time of ``fn`` over ``runs`` runs (``setup`` untimed before each)."""
    times = []
    for _ in range(runs):
        if setup is not None:
            setup()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def write_all(
    write: Callable[[Sequence[Sample]], None], samples: list[Sample], batch: int = BATCH
) -> None:
    for i in range(0, len(samples), batch):
        write(samples[i : i + batch])


def row(label: str, value: float, unit: str, baseline: float | None = None) -> None:
    ratio = f"   x{value / baseline:.2f} of baseline" if baseline else ""
    print(f"  {label:<52} {value:>12,.2f} {unit}{ratio}", flush=True)


def bench_encoder(samples: list[Sample], runs: int) -> None:
    print(f"line-protocol encoder, {len(samples):,} full samples (median of {runs}):")
    base = median_s(lambda: [naive_line(s) for s in samples], runs)
    ours = median_s(lambda: [sample_line(s) for s in samples], runs)
    row("baseline: plain f-string (no escaping, no checks)", base / len(samples) * 1e6, "µs/pt")
    row(
        "storage.lineprotocol.sample_line",
        ours / len(samples) * 1e6,
        "µs/pt",
        base / len(samples) * 1e6,
    )


def bench_sqlite(folder: Path, samples: list[Sample], drones: int, runs: int) -> None:
    small = samples[:20_000]
    for batch, data in ((BATCH, samples), (100, small)):
        print(f"SQLite, {len(data):,} samples in {batch:,}-sample writes (median of {runs}):")
        rates: dict[str, float] = {}
        for mode in ("NORMAL", "FULL"):
            path = folder / f"bench-{mode}.db"

            def fresh(path: Path = path) -> None:
                for p in path.parent.glob(path.name + "*"):
                    p.unlink()

            def write(
                mode: str = mode, path: Path = path, data: list[Sample] = data, batch: int = batch
            ) -> None:
                with SqliteStore(path, synchronous=mode) as store:
                    write_all(store.write_samples, data, batch)

            rates[mode] = len(data) / median_s(write, runs, fresh)
        row("baseline: synchronous=NORMAL (not power-loss durable)", rates["NORMAL"], "pts/s")
        row("SqliteStore synchronous=FULL (shipped)", rates["FULL"], "pts/s", rates["NORMAL"])
    with SqliteStore(folder / "bench-FULL.db") as store:
        write_all(store.write_samples, samples)
        read_hour(store, drones, runs)


def read_hour(store: SqliteStore | InfluxStore, drones: int, runs: int) -> None:
    end = T0 + 3600 * 1000
    got = len(store.drone_samples("htx-dongtrieu", "dt-00", T0, end))
    assert got == HOUR_ROWS, f"read {got} rows, expected {HOUR_ROWS}"
    secs = median_s(lambda: store.drone_samples("htx-dongtrieu", "dt-00", T0, end), runs)
    row(f"read one drone-hour ({HOUR_ROWS:,} rows) → list[Sample]", secs * 1000, "ms")
    secs = median_s(store.drones, runs)
    assert len(store.drones()) == drones
    row(f"drones() over {drones} drones", secs * 1000, "ms")


def bench_influx(folder: Path, samples: list[Sample], drones: int, runs: int) -> None:
    print(f"InfluxDB 1.x, {len(samples):,} samples in {BATCH:,}-line writes (median of {runs}):")
    with running_influxd(folder / "influxd") as server:
        store = InfluxStore(server.url, "bench", batch_lines=BATCH)
        lines = [sample_line(s) for s in samples]
        bodies = ["\n".join(lines[i : i + BATCH]).encode() for i in range(0, len(lines), BATCH)]

        def post_pre_encoded() -> None:
            for body in bodies:
                store._write_body(body, BATCH)

        store.ensure_database()
        base = len(samples) / median_s(post_pre_encoded, runs, lambda: _recreate(store))
        ours = len(samples) / median_s(
            lambda: store.write_samples(samples), runs, lambda: _recreate(store)
        )
        row("baseline: POST pre-encoded bodies (server bound)", base, "pts/s")
        row("InfluxStore.write_samples (encode + POST)", ours, "pts/s", base)
        read_hour(store, drones, runs)
        last_lat = Q_DRONES
        star = 'SELECT * FROM "telemetry" GROUP BY * ORDER BY time DESC LIMIT 1'
        a = median_s(lambda: store.query(last_lat), runs)
        b = median_s(lambda: store.query(star), runs)

        def latest(q: str) -> list[tuple[Any, ...]]:
            rows = store.query(q)
            return sorted((r["tags"]["drone"], r["time"], r["lat"], r["lon"]) for r in rows)

        same = latest(last_lat) == latest(star)
        row("drones(): SELECT * ... ORDER BY time DESC LIMIT 1", b * 1000, "ms")
        row(
            f"drones(): last(lat) + lon, battery (shipped; same rows: {same})",
            a * 1000,
            "ms",
            b * 1000,
        )
        store.close()


def _recreate(store: InfluxStore) -> None:
    store.drop_database()
    store.ensure_database()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=200_000)
    parser.add_argument("--drones", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if args.samples < args.drones * HOUR_ROWS:
        parser.error(f"--samples must be at least drones * {HOUR_ROWS} for the drone-hour read")
    samples = make_samples(args.samples, args.drones)
    bench_encoder(samples, args.runs)
    with tempfile.TemporaryDirectory(prefix="agridrone-bench-") as tmp:
        bench_sqlite(Path(tmp), samples, args.drones, args.runs)
        bench_influx(Path(tmp), samples, args.drones, args.runs)


if __name__ == "__main__":
    main()
