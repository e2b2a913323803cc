"""Registry at scale, end to end on both metadata stores: a town of 1k, 10k and 100k plots
through the real importer, engine preparation, the flight summarizer and the real API
(coverage, /healthz under load, the monthly usage report), with the old engine
preparation beside ours and every goal printed "met" or "NOT met" beside its figure.

For each metadata store (``--metadata sqlite|postgres|both``: a fresh SQLite file, or a
throwaway PostgreSQL started by ``tests.servers.running_postgres`` on a free loopback port
with its own data folder and PostgreSQL's own fsync settings, stopped by its PID; never the
machine's server) and each size, a ``bench.town`` town (seed 0: rotated 0.03-0.5 ha paddies
in blocks, ponds as holes, cooperatives, canal/house/school/pond no-spray zones):

1. **import**: ``agridrone fields import FILE --coop C`` of every per-cooperative file
   (``bench.town.write_per_coop``; the commune-wide zones under the first cooperative),
   one CLI process after the other; the import time is the wall time of all processes
   together, with their CPU seconds (the machine is shared) and largest peak RSS;
2. **engine preparation**: ``CoverageEngine`` over the parsed registry (in-process; the
   median of ``--catalog-loads``; wall and CPU time: its growth goal is judged on CPU
   time, since the work is single-threaded and a shared machine's load inflates only the
   wall figure, which is printed beside it), and
   an incremental one after one plot is redrawn (``previous=``);
3. **a 40-plot flight**: a drone sprays a boustrophedon (6 m swath, 5 m/s, 10 Hz) over
   the first 40 adjacent plots of a block, with takeoff and landing events; timed: the
   summarizer's first round (cold: field history read and parsed from the database,
   engines prepared) and its round after the landing event with the engines of the
   previous round (``Engines.current``: what a running worker does); the goal is the
   summary made by that round, within the watcher's round interval;
4. **the real API** (``agridrone api``: uvicorn on a free loopback port, SQLite telemetry,
   the store's metadata): seconds until the catalog is loaded (its ``fields_loaded`` log
   line; the API answers ``/healthz`` meanwhile; the median of ``--catalog-loads`` starts),
   one field's coverage answer (``GET
   /api/v1/fields/{id}/coverage``, a plot of the flight, cycling over them) p50/p95 on one
   keep-alive connection, the cooperative's usage report for the flight's calendar month
   per field (``GET /api/v1/reports/usage``: time, the flight's fields listed, a non-zero
   bill at a 300,000 VND/ha tariff); then 16 client threads asking for coverage for 15 s
   while ``/healthz`` is timed every 50 ms (p50/p99);
5. **peak RSS** of the API process (VmHWM), of the import processes and of this process.

Baseline in the same run: the engine preparation of main before issue 10 (commit
1e9e835, a worktree at ``--base-tree``) in a subprocess with a timeout, at the sizes it
can finish (250/500/1,000 plots), beside ours in a subprocess at the same sizes.

    .venv/bin/python -m bench.registry [--sizes 1000,10000,100000] [--metadata both|sqlite|postgres]
    [--baseline-sizes 250]    (make bench-registry)
"""

from __future__ import annotations

import argparse
import calendar
import contextlib
import json
import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import httpx
import numpy as np
import shapely
import shapely.affinity
import shapely.geometry

from api.times import rfc3339
from bench._serve import stop, wait_until_ready
from bench.town import TOWN, Block, Town, town, write, write_per_coop
from fields.coverage import CoverageEngine
from fields.registry import Field, FieldRegistry, parse_fields
from fields.stored import forget_stored
from flights.service import Engines, FlightWatcher
from storage.keys import generate_key
from storage.metadata import MetadataDB
from storage.records import Event, Sample
from storage.sqlite import SqliteStore
from tests.servers import running_postgres

ROOT: Final = Path(__file__).resolve().parent.parent
BASE_COMMIT: Final = "1e9e835"
FLIGHT_PLOTS: Final = 40
SWATH_M: Final = 6.0
SPEED_MPS: Final = 5.0
HZ: Final = 10.0
LOAD_CLIENTS: Final = 16
LOAD_SECONDS: Final = 15.0
HEALTH_EVERY_S: Final = 0.05
TARIFF_VND_PER_HA: Final = 300_000
GOALS: Final = {
    "import_100k_s": 60.0,
    "rss_mb": 2048.0,
    "coverage_p95_ms": 150.0,
    "healthz_p99_ms": 100.0,
    "growth": 12.0,
}


@dataclass
class SizeResult:
    """What one town size measured."""

    n: int
    store: str = "sqlite"
    zones: int = 0
    import_s: float = 0.0
    import_cpu_s: float = 0.0
    import_rss_mb: float = 0.0
    import_processes: int = 0
    prepare_s: float = 0.0
    prepares: list[float] = field(default_factory=list)
    #: This process's CPU time per preparation (single-threaded work: what a shared
    #: machine's load does not inflate the way it inflates wall time).
    prepare_cpu_s: float = 0.0
    prepare_cpus: list[float] = field(default_factory=list)
    incremental_s: float = 0.0
    incremental_prepared: int = 0
    flight_plots: int = 0
    flight_samples: int = 0
    round_cold_s: float = 0.0
    round_warm_s: float = 0.0
    round_interval_s: float = 0.0
    round_summarized: int = 0
    report_ms: float = float("nan")
    report_has_field: bool = False
    report_bill_vnd: int = 0
    api_load_s: float = float("nan")
    api_loads: list[float] = field(default_factory=list)
    coverage_first_ms: float = 0.0
    coverage_ms: list[float] = field(default_factory=list)
    loaded_coverage_ms: list[float] = field(default_factory=list)
    healthz_ms: list[float] = field(default_factory=list)
    errors: int = 0
    api_rss_mb: float = float("nan")
    bench_rss_mb: float = 0.0


# --- the town's flight --------------------------------------------------------------------


def flight_rows(t: Town, plots: int) -> tuple[Block, list[tuple[float, float, float]]]:
    """The first block holding ``plots`` plots, and the (y0, y1, x_end) of the rows a
    flight over its first ``plots`` plots sprays (block-local metres)."""
    by_id = {f["properties"]["id"]: f for f in t.plots}
    block = next(b for b in t.blocks if sum(len(r) for r in b.plot_ids) >= plots)
    rows: list[tuple[float, float, float]] = []
    left = plots
    for (y0, y1), ids in zip(block.rows, block.plot_ids, strict=True):
        if left <= 0:
            break
        last = by_id[ids[min(left, len(ids)) - 1]]
        ring = np.asarray(last["geometry"]["coordinates"][0])
        x, y = TOWN.forward(ring[:, 0], ring[:, 1])
        bx, _ = block.to_local(x, y)
        rows.append((y0, y1, float(bx.max())))
        left -= len(ids)
    return block, rows


def flight(t: Town, start_ms: int, coop: str, drone: str) -> tuple[list[Sample], list[Event]]:
    """A boustrophedon over the first ``FLIGHT_PLOTS`` plots of a block: lines ``SWATH_M``
    apart along each row, sprayer off on the turns; takeoff and landing events."""
    block, rows = flight_rows(t, FLIGHT_PLOTS)
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    on: list[np.ndarray] = []
    step = SPEED_MPS / HZ
    k = 0
    for y0, y1, x_end in rows:
        for y in np.arange(y0 + SWATH_M / 2, y1, SWATH_M):
            a, b = (-3.0, x_end + 3.0) if k % 2 == 0 else (x_end + 3.0, -3.0)
            n = int(abs(b - a) / step) + 1
            xs.append(np.linspace(a, b, n))
            ys.append(np.full(n, y))
            on.append(np.ones(n, dtype=bool))
            turn = np.linspace(0, 1, 20)
            xs.append(np.full(20, b))
            ys.append(y + turn * min(SWATH_M, max(y1 - y, 0.0)))
            on.append(np.zeros(20, dtype=bool))
            k += 1
    lx, ly = block.to_town(np.concatenate(xs), np.concatenate(ys))
    lon, lat = TOWN.inverse(lx, ly)
    sprays = np.concatenate(on)
    dt = int(1000 / HZ)
    samples = [
        Sample(
            coop,
            drone,
            start_ms + i * dt,
            float(lat[i]),
            float(lon[i]),
            spraying=bool(sprays[i]),
            seq=i,
            alt_m=3.0,
            speed_mps=SPEED_MPS,
            flow_lpm=6.0,
            swath_m=SWATH_M,
            fix="rtk_fixed",
        )
        for i in range(len(lat))
    ]
    end = samples[-1].ts_ms
    events = [
        Event(coop, drone, start_ms - 1000, "takeoff"),
        Event(coop, drone, end + 500, "landing"),
    ]
    return samples, events


# --- the API process ----------------------------------------------------------------------


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def metadata_args(target: str | Path) -> list[str]:
    """The CLI options naming the metadata store: a PostgreSQL URL or a SQLite file."""
    if isinstance(target, str) and target.startswith("postgresql://"):
        return ["--metadata-url", target]
    return ["--metadata-path", str(target)]


@contextlib.contextmanager
def api_process(
    folder: Path, target: str | Path
) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    """``agridrone api`` over the folder's telemetry and the ``target`` metadata store on a
    free port: (URL, process, log)."""
    port = free_port()
    log_path = folder / "api.log"
    log = log_path.open("wb")
    cmd = [
        sys.executable,
        "-m",
        "agridrone.cli",
        "api",
        "--store",
        "sqlite",
        "--sqlite-path",
        str(folder / "telemetry.db"),
        *metadata_args(target),
        "--port",
        str(port),
        "--log-level",
        "INFO",
    ]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, proc, "agridrone api", log=log_path, timeout_s=120)
        yield url, proc, log_path
    finally:
        stop(proc)
        log.close()


def peak_rss_mb(pid: int) -> float:
    """VmHWM of a live process (Linux), MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def loaded_seconds(log_path: Path, timeout_s: float) -> float:
    """The seconds of the API's ``fields_loaded`` log line, waiting for it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for line in log_path.read_text(errors="replace").splitlines():
            if "fields_loaded" in line and "seconds=" in line:
                return float(line.rsplit("seconds=", 1)[1].split()[0])
        time.sleep(0.2)
    return float("nan")


def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile (inclusive method; q in 0-100)."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q) - 1]


# --- one size -----------------------------------------------------------------------------


def wait_watching(pid: int) -> tuple[int, resource.struct_rusage, float]:
    """Wait for a child, reading its VmHWM until it exits: (wait status, its rusage, peak
    RSS MB). Its ``ru_maxrss`` would not do: a forked child counts the parent's pages
    until it execs, so it reports this (large) process's RSS."""
    hwm = 0.0
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done == pid:
            return status, usage, hwm
        with contextlib.suppress(OSError, ValueError):
            hwm = max(hwm, peak_rss_mb(pid))
        time.sleep(0.05)


def import_cli(t: Town, folder: Path, target: str | Path) -> tuple[float, float, float, int]:
    """``agridrone fields import FILE --coop C`` of every per-cooperative file (the
    commune-wide zones as the first cooperative's import), one process after the other:
    (wall seconds of all processes, their CPU seconds, the largest peak RSS MB, processes).
    Every feature must be stored."""
    files = [
        (p.stem if p.stem != "commune" else t.coops[0], p)
        for p in write_per_coop(folder / "docs", t)
        if json.loads(p.read_text(encoding="utf-8"))["features"]
    ]
    wall = cpu = rss = 0.0
    stored = 0
    for coop, path in files:
        argv = [sys.executable, "-m", "agridrone.cli", "fields", "import", str(path)]
        argv += ["--coop", coop, "--quiet", "--json", *metadata_args(target)]
        out_path, err_path = folder / "import.out", folder / "import.err"
        with out_path.open("wb") as out_file, err_path.open("wb") as err_file:
            started = time.perf_counter()
            proc = subprocess.Popen(argv, cwd=ROOT, stdout=out_file, stderr=err_file)
            status, usage, hwm = wait_watching(proc.pid)
            wall += time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out, err = out_path.read_text(), err_path.read_text(errors="replace")
        cpu += usage.ru_utime + usage.ru_stime
        rss = max(rss, hwm)
        if proc.returncode != 0:
            raise RuntimeError(f"fields import {path}: exit {proc.returncode}: {err[-2000:]}")
        summary = json.loads(out)
        if summary["refused"]:
            raise RuntimeError(f"{path}: refused {summary['refused'][:3]}")
        stored += summary["added"]
    if stored != len(t.plots) + len(t.zones):
        raise RuntimeError(f"stored {stored} of {len(t.plots) + len(t.zones)} features")
    return wall, cpu, rss, len(files)


def parsed_registry(t: Town) -> FieldRegistry:
    """The town parsed as the API parses it (not timed: the import above is)."""
    fields: list[Field] = []
    zones: list[Field] = []
    for _coop, doc in t.documents():
        parsed = parse_fields(doc, source="bench town")
        fields += parsed.fields
        zones += parsed.no_spray
    return FieldRegistry(tuple(sorted(fields, key=lambda f: f.id)), tuple(zones))


def month_window(ms: int) -> dict[str, str]:
    """The calendar month (UTC) holding ``ms``: the monthly report's window."""
    day = time.gmtime(ms / 1000)
    start = int(calendar.timegm((day.tm_year, day.tm_mon, 1, 0, 0, 0)))
    year, month = (day.tm_year + 1, 1) if day.tm_mon == 12 else (day.tm_year, day.tm_mon + 1)
    end = int(calendar.timegm((year, month, 1, 0, 0, 0)))
    return {"from": rfc3339(start * 1000), "to": rfc3339(end * 1000)}


def run_size(  # noqa: PLR0917 -- one per measurement setting
    n: int,
    folder: Path,
    requests: int,
    store_name: str,
    target: str | Path,
    catalog_loads: int = 3,
) -> SizeResult:
    """Every measurement of one town size on one metadata store (``target``: a SQLite file
    or a PostgreSQL URL, empty)."""
    out = SizeResult(n, store_name)
    t = town(n)
    out.zones = len(t.zones)
    out.import_s, out.import_cpu_s, out.import_rss_mb, out.import_processes = import_cli(
        t, folder, target
    )
    print(
        f"  {store_name} {n:>7,} plots: imported in {out.import_s:.1f} s "
        f"({out.import_cpu_s:.1f} CPU s, {out.import_processes} processes)",
        flush=True,
    )
    registry = parsed_registry(t)
    for _ in range(catalog_loads):  # sub-second at 10k: one figure is noisy here too
        engine = None
        started, cpu_started = time.perf_counter(), time.process_time()
        engine = CoverageEngine(registry)
        out.prepares.append(time.perf_counter() - started)
        out.prepare_cpus.append(time.process_time() - cpu_started)
    out.prepare_s = statistics.median(out.prepares)
    out.prepare_cpu_s = statistics.median(out.prepare_cpus)
    first = registry.fields[0]
    moved = parse_fields(
        {
            "type": "Feature",
            "properties": {"id": first.id, "coop": first.coop, "owner": first.owner},
            "geometry": shapely.geometry.mapping(shapely.affinity.translate(first.geometry, 1e-6)),
        }
    ).fields[0]
    edited = FieldRegistry((moved, *registry.fields[1:]), registry.no_spray)
    started = time.perf_counter()
    again = CoverageEngine(edited, previous=engine)
    out.incremental_s = time.perf_counter() - started
    out.incremental_prepared = again.stats.prepared
    del engine, again, edited, registry

    metadata = MetadataDB(target)
    store = SqliteStore(folder / "telemetry.db")
    try:
        now_ms = int(time.time() * 1000)
        start_ms = now_ms - 3_600_000
        coop = t.blocks[0].coop
        samples, events = flight(t, start_ms, coop, "bench-drone")
        out.flight_samples = len(samples)
        forget_stored()  # a worker process never saw the import: parse from the database
        started = time.perf_counter()
        engines = Engines.current(metadata)
        engines.for_swath(None, start_ms)
        out.round_cold_s = time.perf_counter() - started
        store.write_samples(samples)
        store.write_events(events)
        watcher = FlightWatcher(settle_s=30)
        out.round_interval_s = watcher.interval_s
        started = time.perf_counter()
        outcomes = watcher.poll(store, metadata, events[-1].ts_ms + 31_000)
        out.round_warm_s = time.perf_counter() - started
        saved = [f for o in outcomes for f in o.saved]
        out.round_summarized = len(saved)
        if len(saved) != 1:
            raise RuntimeError(f"expected one flight summarized, got {saved}")
        stored = metadata.flight(saved[0])
        if stored is None:
            raise RuntimeError(f"flight {saved[0]} was not stored")
        flown = [share["field_id"] for share in stored.summary_dict()["fields"]]
        out.flight_plots = len(flown)
        key = generate_key("operator", "ops", "bench", now_ms)
        metadata.add_api_key(key.record)
        metadata.set_coop(coop, tariff_vnd_per_ha=TARIFF_VND_PER_HA)
    finally:
        store.close()
        metadata.close()
    out.bench_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    headers = {"Authorization": f"Bearer {key.key}"}
    params = {"from": rfc3339(start_ms - 3_600_000), "to": rfc3339(now_ms + 3_600_000)}
    with api_process(folder, target) as (url, proc, log_path):
        with httpx.Client(base_url=url, timeout=600) as client:
            paths = [f"/api/v1/fields/{fid}/coverage" for fid in flown]
            started = time.perf_counter()
            answer = client.get(paths[0], params=params, headers=headers)
            out.coverage_first_ms = (time.perf_counter() - started) * 1000
            if answer.status_code != 200:
                raise RuntimeError(f"coverage: {answer.status_code} {answer.text[:300]}")
            out.api_load_s = loaded_seconds(log_path, 600)
            for i in range(requests):
                started = time.perf_counter()
                answer = client.get(paths[i % len(paths)], params=params, headers=headers)
                out.coverage_ms.append((time.perf_counter() - started) * 1000)
                if answer.status_code != 200:
                    out.errors += 1
            usage_report(
                client, headers=headers, coop=coop, start_ms=start_ms, flown=set(flown), out=out
            )
        load(url, paths, params, headers, out)
        out.api_rss_mb = peak_rss_mb(proc.pid)
    out.api_loads = [out.api_load_s]
    for _ in range(catalog_loads - 1):  # the load alone again: one figure is noisy here
        with api_process(folder, target) as (_url, _proc, log_path):
            out.api_loads.append(loaded_seconds(log_path, 600))
    out.api_load_s = statistics.median(out.api_loads)
    return out


def usage_report(
    client: httpx.Client,
    *,
    headers: dict[str, str],
    coop: str,
    start_ms: int,
    flown: set[str],
    out: SizeResult,
) -> None:
    """The cooperative's monthly usage report per field (GET /api/v1/reports/usage): its
    time, whether it lists the flight's fields, and the total billed."""
    params = {**month_window(start_ms), "coop": coop, "group_by": "field"}
    started = time.perf_counter()
    answer = client.get("/api/v1/reports/usage", params=params, headers=headers)
    out.report_ms = (time.perf_counter() - started) * 1000
    if answer.status_code != 200:
        raise RuntimeError(f"usage report: {answer.status_code} {answer.text[:300]}")
    body = answer.json()
    keys = {row["key"] for row in body["rows"]}
    out.report_has_field = bool(flown) and flown <= keys
    out.report_bill_vnd = int(body["totals"]["amount_vnd"])


def load(
    url: str, paths: list[str], params: dict[str, str], headers: dict[str, str], out: SizeResult
) -> None:
    """16 coverage clients for ``LOAD_SECONDS`` while /healthz is timed every 50 ms."""
    stop = threading.Event()
    lock = threading.Lock()

    def client(k: int) -> None:
        with httpx.Client(base_url=url, timeout=600) as c:
            i = k
            while not stop.is_set():
                started = time.perf_counter()
                answer = c.get(paths[i % len(paths)], params=params, headers=headers)
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    out.loaded_coverage_ms.append(elapsed)
                    out.errors += answer.status_code != 200
                i += 1

    threads = [threading.Thread(target=client, args=(k,)) for k in range(LOAD_CLIENTS)]
    for th in threads:
        th.start()
    time.sleep(1.0)  # every client has a request in flight
    deadline = time.monotonic() + LOAD_SECONDS
    with httpx.Client(base_url=url, timeout=60) as c:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            answer = c.get("/healthz")
            out.healthz_ms.append((time.perf_counter() - started) * 1000)
            out.errors += answer.status_code != 200
            time.sleep(HEALTH_EVERY_S)
    stop.set()
    for th in threads:
        th.join()


# --- the baseline -------------------------------------------------------------------------

PREPARE_SCRIPT: Final = """
import json, sys, time
from fields.registry import load_fields
from fields.coverage import CoverageEngine
registry = load_fields(sys.argv[1])
started = time.perf_counter()
CoverageEngine(registry)
print(json.dumps({"prepare_s": time.perf_counter() - started}))
"""


def prepare_in(tree: Path, geojson: Path, timeout_s: float) -> float | None:
    """Seconds of ``CoverageEngine(load_fields(geojson))`` with the code of ``tree``, in a
    subprocess; None when it did not finish within ``timeout_s``."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    try:
        done = subprocess.run(
            [sys.executable, "-c", PREPARE_SCRIPT, str(geojson)],
            cwd=tree,
            env=env,
            capture_output=True,
            timeout=timeout_s,
            check=True,
        )
    except subprocess.TimeoutExpired:
        return None
    return float(json.loads(done.stdout.decode().strip().splitlines()[-1])["prepare_s"])


def baseline(sizes: Sequence[int], base: Path, timeout_s: float, folder: Path) -> list[str]:
    """Rows: old and new engine preparation at each size, in subprocesses."""
    if not (base / "fields" / "coverage.py").exists():
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(base), BASE_COMMIT], cwd=ROOT, check=True
        )
    rows = []
    for n in sizes:
        path = write(folder / f"town-{n}.geojson", town(n).features())
        old = prepare_in(base, path, timeout_s)
        new = prepare_in(ROOT, path, timeout_s)
        old_text = f"{old:.2f} s" if old is not None else f"> {timeout_s:.0f} s (timeout)"
        new_text = f"{new:.3f} s" if new is not None else "timeout"
        ratio = f"{old / new:.0f}x" if old is not None and new else "-"
        rows.append(f"| {n:>6,} | {old_text:>18} | {new_text:>10} | {ratio:>7} |")
        print(f"  baseline {n}: old {old_text}, ours {new_text}", flush=True)
    return rows


# --- report -------------------------------------------------------------------------------


def ok(flag: bool) -> str:
    """The verdict printed beside a goal's figure."""
    return "met" if flag else "NOT met"


def report(results: list[SizeResult], base_rows: list[str]) -> None:
    """The measurements per store and size, the baseline rows, then every goal."""
    print()
    print(
        f"machine: {os.cpu_count()} cores, {platform.python_implementation()} "
        f"{platform.python_version()}, shapely {shapely.__version__}; load average "
        + " / ".join(f"{x:.1f}" for x in os.getloadavg())
        + " (1 / 5 / 15 min) at the end"
    )
    print()
    print(
        "| store | plots | zones | import (CLI processes): wall / CPU | import peak RSS | "
        "prepare | re-prepare after 1 edit | API catalog load | first coverage | "
        "coverage p50 / p95 | 16 clients: coverage p50 / p95 | /healthz p50 / p99 | "
        "40-plot flight: cold round / round after landing | monthly report | API peak RSS | "
        "errors |"
    )
    print("|---" * 2 + "|---:" * 14 + "|")
    for r in results:
        print(
            f"| {r.store} | {r.n:,} | {r.zones:,} | {r.import_s:.1f} / {r.import_cpu_s:.1f} s "
            f"({r.import_processes} processes) | {r.import_rss_mb:,.0f} MB | "
            f"{r.prepare_s:.2f} s | "
            f"{r.incremental_s:.2f} s ({r.incremental_prepared} prepared) | "
            f"{r.api_load_s:.1f} s | {r.coverage_first_ms:.0f} ms | "
            f"{pct(r.coverage_ms, 50):.0f} / {pct(r.coverage_ms, 95):.0f} ms | "
            f"{pct(r.loaded_coverage_ms, 50):.0f} / {pct(r.loaded_coverage_ms, 95):.0f} ms | "
            f"{pct(r.healthz_ms, 50):.0f} / {pct(r.healthz_ms, 99):.0f} ms | "
            f"{r.round_cold_s:.1f} s / {r.round_warm_s:.2f} s ({r.flight_plots} plots, "
            f"{r.flight_samples:,} samples) | {r.report_ms:.0f} ms, "
            f"{r.report_bill_vnd:,} VND | {r.api_rss_mb:,.0f} MB | {r.errors} |"
        )
    if base_rows:
        print()
        print("Engine preparation, main before issue 10 (1e9e835) beside ours, same town files:")
        print()
        print("|  plots |       old (1e9e835) |       ours |   ratio |")
        print("|-------:|-------------------:|-----------:|--------:|")
        for row in base_rows:
            print(row)
    print()
    print("Goals:")
    for line in goals(results):
        print(line)


def goals(results: list[SizeResult]) -> list[str]:
    """One line per goal and store: the measured figure and "met"/"NOT met"."""
    lines = []
    for store in dict.fromkeys(r.store for r in results):
        by_n = {r.n: r for r in results if r.store == store}
        if 10_000 in by_n and 100_000 in by_n:
            a, b = by_n[10_000], by_n[100_000]
            wall = b.prepare_s / a.prepare_s
            for name, x, y in (
                ("import", a.import_s, b.import_s),
                (
                    f"engine preparation (median CPU time; wall {wall:.1f}x)",
                    a.prepare_cpu_s,
                    b.prepare_cpu_s,
                ),
                ("API catalog load (median)", a.api_load_s, b.api_load_s),
            ):
                g = y / x
                lines.append(
                    f"- {store}: growth 10k -> 100k, {name}: {g:.1f}x (<= 12x): "
                    f"{ok(g <= GOALS['growth'])}"
                )
            lines.append(
                f"  ({store} engine preparations, 10k: "
                + ", ".join(f"{x:.2f}" for x in a.prepares)
                + " s; 100k: "
                + ", ".join(f"{x:.2f}" for x in b.prepares)
                + " s wall; CPU 10k: "
                + ", ".join(f"{x:.2f}" for x in a.prepare_cpus)
                + " s; 100k: "
                + ", ".join(f"{x:.2f}" for x in b.prepare_cpus)
                + " s)"
            )
            lines.append(
                f"  ({store} catalog loads, 10k: "
                + ", ".join(f"{x:.1f}" for x in a.api_loads)
                + " s; 100k: "
                + ", ".join(f"{x:.1f}" for x in b.api_loads)
                + " s)"
            )
        for r in by_n.values():
            p95 = pct(r.coverage_ms, 95)
            h99 = pct(r.healthz_ms, 99)
            rss = max(r.api_rss_mb, r.import_rss_mb)  # agridrone's processes
            in_round = r.round_summarized == 1 and r.round_warm_s < r.round_interval_s
            report_ok = r.report_has_field and r.report_bill_vnd > 0 and r.errors == 0
            prefix = f"- {store}, {r.n:,} plots:"
            if r.n == 100_000:
                lines.append(
                    f"{prefix} import {r.import_s:.1f} s wall, {r.import_cpu_s:.1f} s CPU "
                    f"(<= 60 s): {ok(r.import_s <= GOALS['import_100k_s'])}"
                )
            lines.extend(
                (
                    (
                        f"{prefix} peak RSS {rss:,.0f} MB (API {r.api_rss_mb:,.0f}, import "
                        f"{r.import_rss_mb:,.0f}; this bench's own {r.bench_rss_mb:,.0f}; "
                        "<= 2048): "
                        f"{ok(rss <= GOALS['rss_mb'])}"
                    ),
                    (
                        f"{prefix} coverage p50 / p95 {pct(r.coverage_ms, 50):.0f} / {p95:.0f} ms "
                        f"(p95 <= 150): {ok(p95 <= GOALS['coverage_p95_ms'])}"
                    ),
                    (
                        f"{prefix} /healthz p99 under 16 coverage clients {h99:.0f} ms (<= 100): "
                        f"{ok(h99 <= GOALS['healthz_p99_ms'])}"
                    ),
                    (
                        f"{prefix} 40-plot flight summarized by the first round after landing "
                        f"({r.round_summarized} summary, {r.round_warm_s:.2f} s of a "
                        f"{r.round_interval_s:.0f} s round): {ok(in_round)}"
                    ),
                    (
                        f"{prefix} monthly usage report {r.report_ms:.0f} ms, lists the flight's "
                        f"{r.flight_plots} fields: {r.report_has_field}, bill "
                        f"{r.report_bill_vnd:,} VND, {r.errors} API errors: {ok(report_ok)}"
                    ),
                )
            )
    return lines


@contextlib.contextmanager
def metadata_store(name: str, folder: Path) -> Iterator[str | Path]:
    """A fresh metadata store: a SQLite file in ``folder``, or a throwaway PostgreSQL
    (its own data folder, a free loopback port, PostgreSQL's own fsync settings as SQLite
    keeps its synchronous=FULL; stopped by its PID): its URL."""
    if name == "sqlite":
        yield folder / "agridrone.db"
        return
    with running_postgres(folder / "postgres", durable=True) as server:
        yield server.url()


def prepare_only(sizes: Sequence[int], repeats: int) -> None:
    """The engine preparation alone, in-process, per size (the median of ``repeats``), and
    its growth from the first size to each other: the goal's figure without the import and
    API around it, for profiling and quick before/after comparisons. Wall time beside this
    process's CPU time: the preparation is single-threaded, so on a quiet machine the two
    agree, and on a shared one the CPU time is the figure the load does not inflate."""
    print(f"# engine preparation, load average {os.getloadavg()[0]:.1f} at start", flush=True)
    walls: list[float] = []
    cpus: list[float] = []
    for n in sizes:
        registry = parsed_registry(town(n))
        times, cpu_times = [], []
        for _ in range(repeats):
            started, cpu_started = time.perf_counter(), time.process_time()
            CoverageEngine(registry)
            times.append(time.perf_counter() - started)
            cpu_times.append(time.process_time() - cpu_started)
        walls.append(statistics.median(times))
        cpus.append(statistics.median(cpu_times))
        growth = (
            f"; growth wall {walls[-1] / walls[0]:.1f}x, CPU {cpus[-1] / cpus[0]:.1f}x"
            f" the {sizes[0]:,}-plot figure"
            if walls[0] and cpus[0]
            else ""
        )
        spread = " / ".join(f"{t:.2f}" for t in times)
        print(
            f"{n:>8,} plots: prepare median wall {walls[-1]:.2f} s ({spread}),"
            f" CPU {cpus[-1]:.2f} s{growth}",
            flush=True,
        )


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print its tables and goals."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--metadata", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--baseline-sizes", default="250,500,1000", help="'' for none")
    parser.add_argument("--baseline-timeout", type=float, default=300.0)
    parser.add_argument("--base-tree", type=Path, default=ROOT.parent / "wt-registry-base")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument(
        "--catalog-loads",
        type=int,
        default=3,
        help="engine preparations and API starts timed per size (median)",
    )
    parser.add_argument(
        "--prepare-only",
        action="store_true",
        help="only time the engine preparation of each size (no store, no API)",
    )
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.prepare_only:
        prepare_only(sizes, args.catalog_loads)
        return
    base_sizes = [int(s) for s in args.baseline_sizes.split(",") if s]
    stores = ["sqlite", "postgres"] if args.metadata == "both" else [args.metadata]
    print(
        f"# registry, {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, stores "
        f"{', '.join(stores)}, load average {os.getloadavg()[0]:.1f} at start",
        flush=True,
    )
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-registry-") as tmp:
        folder = Path(tmp)
        base_rows = (
            baseline(base_sizes, args.base_tree, args.baseline_timeout, folder)
            if base_sizes
            else []
        )
        for store_name in stores:
            for n in sizes:
                sub = folder / f"{store_name}-{n}"
                sub.mkdir()
                with metadata_store(store_name, sub) as target:
                    results.append(
                        run_size(n, sub, args.requests, store_name, target, args.catalog_loads)
                    )
    report(results, base_rows)


if __name__ == "__main__":
    main()
