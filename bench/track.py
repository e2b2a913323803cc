"""Track route benchmark: ``GET /api/v1/drones/{coop}/{drone}/track`` over a window of 3 M samples.

Run: ``.venv/bin/python -m bench.track [--samples 3000000] [--runs 3] [--stores influx,sqlite]``.

One drone flies 20-minute flights at 10 Hz with 5-minute pauses until ``--samples`` are
stored (3 M: 250 flights over 4.3 days), into a fresh influxd it starts (tests.servers) and
a SQLite file. The route is then asked for the whole window, once per fresh ``agridrone
api`` process, by two trees in turns:

* before: main at ``BEFORE`` (1e9e835), extracted with ``git archive`` into a temp folder,
  which loads every sample of the window and thins in Python;
* after: this tree, which thins inside the store (``storage.thinning``) and streams.

Printed per store and tree: the median wall time of the request, the median peak RSS of the
API process (VmHWM, which includes the ~100 MB of an idle process, printed too) and the
answer's size, positions and samples.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench._serve import free_port, peak_rss_mb, stop, wait_until_ready
from storage.influx import InfluxStore
from storage.keys import generate_key
from storage.metadata import MetadataDB
from storage.records import Sample
from storage.sqlite import SqliteStore
from tests.servers import running_influxd

BEFORE = "1e9e835"
REPO = Path(__file__).resolve().parent.parent
T0 = 1_764_291_600_000  # 2025-11-28T08:00:00+07:00
FLIGHT_S, PAUSE_S, HZ = 20 * 60, 5 * 60, 10
COOP, DRONE = "htx-dongtrieu", "dt-01"
WINDOW = {"from": "2025-11-28", "to": "2025-12-04"}
BATCH = 50_000


def samples(n: int) -> Iterator[list[Sample]]:
    """``n`` samples of one drone in batches: flights of ``FLIGHT_S`` at ``HZ``, paused."""
    per_flight = FLIGHT_S * HZ
    batch: list[Sample] = []
    for i in range(n):
        flight, k = divmod(i, per_flight)
        ts = T0 + flight * (FLIGHT_S + PAUSE_S) * 1000 + k * (1000 // HZ)
        lane, along = divmod(k, 600)
        batch.append(
            Sample(
                COOP,
                DRONE,
                ts,
                21.08 + lane * 5e-5,
                106.52 + (along if lane % 2 == 0 else 599 - along) * 5e-6,
                spraying=100 <= along < 500,
                seq=i,
                alt_m=2.5,
                speed_mps=5.0,
                heading_deg=90.0,
                battery_pct=100.0 - k * 0.008,
                flow_lpm=1.8,
                tank_l=10.0 - k * 0.0008,
                swath_m=5.0,
                fix="rtk_fixed",
            )
        )
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass
class Run:
    """One request to one fresh API process."""

    seconds: float
    peak_mb: float
    idle_mb: float
    body_bytes: int
    points: int
    samples: int


@contextlib.contextmanager
def api_process(
    tree: Path, store_args: list[str], metadata: Path, log: Path
) -> Iterator[tuple[str, int]]:
    """``agridrone api`` of ``tree`` (its own code first on the path) on a free port."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(tree)}
    cmd = [sys.executable, "-m", "agridrone.cli", "api", *store_args]
    cmd += ["--metadata-path", str(metadata), "--port", str(port), "--log-level", "warning"]
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, cwd=tree, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, proc, f"agridrone api ({tree})", log=log)
        yield url, proc.pid
    finally:
        stop(proc)


def one_run(tree: Path, store_args: list[str], metadata: Path, key: str, log: Path) -> Run:
    """Start the API, ask for the whole window's track once, read the process's peak RSS."""
    with api_process(tree, store_args, metadata, log) as (url, pid):
        idle = peak_rss_mb(pid) or 0.0
        start = time.perf_counter()
        response = httpx.get(
            f"{url}/api/v1/drones/{COOP}/{DRONE}/track",
            params=WINDOW,
            headers={"Authorization": f"Bearer {key}"},
            timeout=600,
        )
        seconds = time.perf_counter() - start
        peak = peak_rss_mb(pid) or 0.0
    response.raise_for_status()
    body = response.json()
    return Run(seconds, peak, idle, len(response.content), body["points"], body["samples"])


def extract_before(folder: Path) -> Path:
    """main at ``BEFORE`` as plain files (``git archive``: no worktree to clean up)."""
    tree = folder / f"before-{BEFORE}"
    tree.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", BEFORE], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=3_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--stores", default="influx,sqlite")
    args = parser.parse_args(argv)
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    with tempfile.TemporaryDirectory(prefix="bench-track-") as tmp:
        folder = Path(tmp)
        before = extract_before(folder)
        metadata_path = folder / "agridrone.db"
        metadata = MetadataDB(metadata_path)
        new = generate_key("operator", "bench", "bench", int(time.time() * 1000))
        metadata.add_api_key(new.record)
        metadata.close()
        log = folder / "api.log"
        with running_influxd(folder / "influxd") as influxd:
            targets: list[tuple[str, list[str]]] = []
            if "influx" in stores:
                db = f"track_{uuid.uuid4().hex[:8]}"
                started = time.perf_counter()
                with InfluxStore.open(influxd.url, db) as influx:
                    for batch in samples(args.samples):
                        influx.write_samples(batch)
                took = time.perf_counter() - started
                print(f"influx: wrote {args.samples:,} samples in {took:.0f} s")
                targets.append(
                    (
                        "influx",
                        ["--store", "influx", "--influx-url", influxd.url, "--influx-db", db],
                    )
                )
            if "sqlite" in stores:
                path = folder / "telemetry.db"
                started = time.perf_counter()
                with SqliteStore(path, synchronous="NORMAL") as sqlite:
                    for batch in samples(args.samples):
                        sqlite.write_samples(batch)
                took = time.perf_counter() - started
                print(f"sqlite: wrote {args.samples:,} samples in {took:.0f} s")
                targets.append(("sqlite", ["--store", "sqlite", "--sqlite-path", str(path)]))
            trees = (("before", before), ("after", REPO))
            results: dict[tuple[str, str], list[Run]] = {}
            for store_name, store_args in targets:
                for i in range(args.runs):
                    for tree_name, tree in trees:
                        run = one_run(tree, store_args, metadata_path, new.key, log)
                        results.setdefault((store_name, tree_name), []).append(run)
                        print(
                            f"  {store_name} {tree_name} run {i + 1}: {run.seconds:.2f} s,"
                            f" peak {run.peak_mb:.0f} MB, {run.points:,} positions",
                            flush=True,
                        )
    print()
    print(
        f"GET …/track over {args.samples:,} samples, median of {args.runs} runs, fresh process each"
    )
    header = (
        "store",
        "tree",
        "time s",
        "peak RSS MB",
        "idle RSS MB",
        "answer KB",
        "positions",
        "samples",
    )
    print(" | ".join(header))
    for (store_name, tree_name), runs in results.items():
        print(
            " | ".join(
                (
                    store_name,
                    tree_name,
                    f"{statistics.median(r.seconds for r in runs):.2f}",
                    f"{statistics.median(r.peak_mb for r in runs):.0f}",
                    f"{statistics.median(r.idle_mb for r in runs):.0f}",
                    f"{runs[0].body_bytes / 1024:.0f}",
                    f"{runs[0].points:,}",
                    f"{runs[0].samples:,}",
                )
            )
        )
    for store_name, _ in targets:
        b, a = results[(store_name, "before")], results[(store_name, "after")]
        time_ratio = statistics.median(r.seconds for r in a) / statistics.median(
            r.seconds for r in b
        )
        rss_ratio = statistics.median(r.peak_mb for r in a) / statistics.median(
            r.peak_mb for r in b
        )
        print(f"{store_name}: after/before time {time_ratio:.3f}, peak RSS {rss_ratio:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
