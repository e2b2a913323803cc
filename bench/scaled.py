"""The scaled layout on this machine: ingest with 1, 2 and 4 workers, the API with 1 and 2
processes; the single process is the baseline, measured in the same run.

1. **Ingest.** N ``agridrone ingest`` processes in one MQTT 5 shared subscription
   (``--share-group``), InfluxDB as the store and one metadata database (SQLite file by
   default, ``--metadata-url postgresql://...`` for PostgreSQL), on a Mosquitto and an
   influxd this benchmark starts on free ports. Drain mode, as ``bench.ingest``: the
   workers' sessions are registered first (started until subscribed, then stopped), M
   single-sample messages are published once at QoS 1 (Mosquitto queues each member's
   round-robin share in its session), then the N workers are started together and timed
   from the moment all of them are consuming (each has received a message) to the last
   sample written, counting the samples written in between (their own
   ``agridrone_ingest_samples_written_total``): the steady rate of N workers side by side,
   without the seconds the N processes take to start on two cores. Zero loss is checked by
   reading every sample back from InfluxDB. Baseline: one worker without a share group (a plain
   subscription).
2. **API.** The world of ``bench.api`` (packaged fields, a simulated day summarized, 3,000
   synthetic flights, 400 fields; SQLite store and metadata) served by 1 or 2 ``agridrone
   api`` processes; 16 concurrent clients cycle through the six-request mix of
   ``bench.api`` (coverage, flight list, one flight, a day's report, field list, drone
   list), spread over the processes round-robin by the client, and, when an ``haproxy``
   binary is found, through HAProxy with deploy/haproxy.cfg (its server lines pointed at
   the processes). Requests/s = requests / wall time. Errors: any non-2xx answer.

Each figure is the median of ``--runs`` runs (default 3). On a 2-core machine the load
generator, the broker, influxd and the workers share two cores: more processes may not
help, and this benchmark shows what they do.

    .venv/bin/python -m bench.scaled [--messages 60000] [--runs 3] [--skip-api]
    (make bench-scaled)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench._serve import machine_line, metric, stop, wait_until_ready
from bench.api import World, build_world, request_mix
from bench.ingest import DRONES, FRESH_LEAD_MS, make_messages, publish
from storage.influx import InfluxStore
from tests.servers import REPO, free_port, running_influxd, running_mosquitto

WORKER_COUNTS = (1, 2, 4)
API_CLIENTS = 16
HAPROXY_CFG = REPO / "deploy" / "haproxy.cfg"
LOCAL_HAPROXY = REPO / ".servers" / "haproxy"


# --- ingest --------------------------------------------------------------------------------


class Worker:
    """One ``agridrone ingest`` process of a share group, read through its metrics port."""

    def __init__(self, name: str, argv: list[str], log: Path, env: dict[str, str]) -> None:
        self.name = name
        self.env = env
        self.metrics_port = free_port()
        self.argv = [*argv, "--client-id", name, "--metrics-port", str(self.metrics_port)]
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv, stdout=out, stderr=subprocess.STDOUT, env=self.env
            )

    def metric(self, name: str) -> float:
        return metric(self.metrics_port, name)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(60)


def wait_for(workers: Sequence[Worker], metric: str, value: float, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(w.metric(metric) < value for w in workers):
        for w in workers:
            if w.proc is not None and w.proc.poll() is not None:
                raise RuntimeError(f"{w.name} exited: see {w.log}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {metric} >= {value}")
        time.sleep(0.05)


def drain(workers: Sequence[Worker], total: int, tag: str) -> tuple[float, list[int]]:
    """(messages/s once every worker consumes, samples each wrote) until ``total`` are written."""
    start = None  # when every worker is consuming, and how much was written by then
    deadline = time.monotonic() + 600
    while True:
        now = time.perf_counter()
        written = [max(w.metric("agridrone_ingest_samples_written_total"), 0) for w in workers]
        if start is None and all(
            w.metric("agridrone_ingest_messages_received_total") > 0 for w in workers
        ):
            start = (now, sum(written))
        if sum(written) >= total and start is not None:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"{tag}: not drained in 600 s (written {written})")
        time.sleep(0.05)
    if now <= start[0] or total <= start[1]:
        raise RuntimeError(
            f"{tag}: all {total} messages were written before every worker was consuming;"
            " nothing left to time (give --messages more)"
        )
    if total - start[1] < total // 2:
        print(f"    ({tag}: over half written before all workers were up)", flush=True)
    return (total - start[1]) / (now - start[0]), [int(x) for x in written]


def ingest_run(
    n_workers: int, shared: bool, run: int, *, mqtt_port: int, influx_url: str, ctx: Context
) -> float:
    """Messages/s of ``n_workers`` draining ``ctx.messages`` single-sample messages."""
    tag = f"n{n_workers}{'s' if shared else 'p'}r{run}"
    coop, db = f"scaled-{tag}", f"scaled_{tag}"
    argv = [
        *(sys.executable, "-m", "agridrone.cli", "ingest"),
        *("--mqtt-url", f"mqtt://127.0.0.1:{mqtt_port}", "--coop", coop),
        *("--store", "influx", "--influx-url", influx_url, "--influx-db", db),
        "--log-level",
        "WARNING",
    ]
    if shared:
        argv += ["--share-group", f"bench-{tag}"]
    workers = [
        Worker(f"bench-{tag}-w{i}", argv, ctx.folder / f"{tag}-w{i}.log", ctx.env)
        for i in range(n_workers)
    ]
    for w in workers:  # register the sessions, then leave
        w.start()
    wait_for(workers, "agridrone_ingest_mqtt_connected", 1, 60)
    for w in workers:
        w.stop()
    messages = make_messages(coop, ctx.messages, 1, int(time.time() * 1000) + FRESH_LEAD_MS)
    publish(mqtt_port, messages)
    for w in workers:
        w.start()
    try:
        rate, shares = drain(workers, ctx.messages, tag)
    finally:
        for w in workers:
            w.stop()
    store = InfluxStore(influx_url, db)
    try:
        got = sum(len(store.drone_samples(coop, f"dt-{d:02d}", 0, 2**62)) for d in range(DRONES))
    finally:
        store.close()
    if got != ctx.messages:
        raise SystemExit(f"{tag}: DATA LOSS, {got} of {ctx.messages} samples stored")
    print(f"    run {run}: {rate:9,.0f} msg/s  (per worker {shares}, zero loss)", flush=True)
    return rate


@dataclass
class Context:
    folder: Path
    messages: int
    runs: int
    env: dict[str, str]  # the workers' environment: where the metadata store is


def bench_ingest(ctx: Context) -> list[tuple[str, float]]:
    rows: list[tuple[str, float]] = []
    with (
        running_mosquitto(ctx.folder / "mosquitto") as mqtt,
        running_influxd(ctx.folder / "influxd") as influx,
    ):
        configs = [(1, False), *((n, True) for n in WORKER_COUNTS)]
        results: dict[tuple[int, bool], list[float]] = {c: [] for c in configs}
        for run in range(ctx.runs):  # interleaved: drift on a shared machine hits all alike
            for n, shared in configs:
                label = f"{n} worker{'s' if n > 1 else ''}" + (" (share group)" if shared else "")
                print(f"  {label}", flush=True)
                results[n, shared].append(
                    ingest_run(n, shared, run, mqtt_port=mqtt.port, influx_url=influx.url, ctx=ctx)
                )
        for n, shared in configs:
            name = (
                "baseline: 1 worker, plain subscription"
                if not shared
                else f"{n} worker{'s' if n > 1 else ''}, $share group"
            )
            rows.append((name, statistics.median(results[n, shared])))
    return rows


# --- API -----------------------------------------------------------------------------------


@contextlib.contextmanager
def api_processes(world: World, n: int) -> Iterator[list[str]]:
    """``n`` ``agridrone api`` processes over the world's store and metadata."""
    procs, urls = [], []
    try:
        for i in range(n):
            port = free_port()
            log = (world.folder / f"api-{n}-{i}.log").open("ab")
            cmd = [
                *(sys.executable, "-m", "agridrone.cli", "api", "--port", str(port)),
                *("--store", "sqlite", "--sqlite-path", str(world.store_path)),
                *("--metadata-path", str(world.metadata_path), "--log-level", "WARNING"),
            ]
            procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT))
            urls.append(f"http://127.0.0.1:{port}")
        for url, proc in zip(urls, procs, strict=True):
            wait_until_ready(url, proc, f"agridrone api at {url}", path="/readyz", timeout_s=120)
        yield urls
    finally:
        for proc in procs:
            stop(proc)


def haproxy_binary() -> tuple[list[str], dict[str, str]] | None:
    found = shutil.which("haproxy")
    if found:
        return [found], dict(os.environ)
    local = LOCAL_HAPROXY / "usr" / "sbin" / "haproxy"
    if local.exists():
        libs = LOCAL_HAPROXY / "usr" / "lib" / "x86_64-linux-gnu"
        return [str(local)], {**os.environ, "LD_LIBRARY_PATH": str(libs)}
    return None


@contextlib.contextmanager
def haproxy_in_front(urls: Sequence[str], folder: Path) -> Iterator[str | None]:
    """deploy/haproxy.cfg with its port and server lines pointed at ``urls``; its URL."""
    binary = haproxy_binary()
    if binary is None:
        yield None
        return
    exe, env = binary
    port = free_port()
    text = HAPROXY_CFG.read_text().replace("bind :8000", f"bind 127.0.0.1:{port}")
    text = re.sub(r"^\s*server .*\n", "", text, flags=re.M)
    text = text.replace("log stdout format raw local0 info", "")
    text += "".join(f"    server api{i} {u.removeprefix('http://')}\n" for i, u in enumerate(urls))
    cfg = folder / "haproxy.cfg"
    cfg.write_text(text)
    proc = subprocess.Popen(
        [*exe, "-f", str(cfg)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:  # up once every replica passed its first check
            with contextlib.suppress(httpx.TransportError):
                if all(httpx.get(f"{url}/readyz", timeout=2).status_code == 200 for _ in urls):
                    time.sleep(4.5)  # rise 2 checks at 2 s: both servers up
                    break
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("haproxy did not start")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@dataclass
class ApiLoad:
    requests: int
    errors: list[str]
    wall_s: float

    @property
    def rate(self) -> float:
        return self.requests / self.wall_s


async def api_load(urls: Sequence[str], world: World, clients: int, per_client: int) -> ApiLoad:
    """``clients`` concurrent clients through the request mix, spread over ``urls``."""
    mix = request_mix(world)
    errors: list[str] = []
    done = 0
    limits = httpx.Limits(max_connections=clients + 10, max_keepalive_connections=clients + 10)
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:

        async def one(i: int) -> None:
            nonlocal done
            for k in range(per_client):
                label, path, params, headers = mix[(i + k) % len(mix)]
                url = urls[(i + k) % len(urls)]
                try:
                    answer = await client.get(url + path, params=params, headers=headers)
                except httpx.HTTPError as exc:
                    errors.append(f"{label}: {exc!r}")
                    continue
                if not 200 <= answer.status_code < 300:
                    errors.append(f"{label}: {answer.status_code}")
                    continue
                done += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(clients)))
        wall = time.perf_counter() - t0
    return ApiLoad(done, errors, wall)


def measure_api(urls: Sequence[str], world: World, runs: int, per_client: int) -> float:
    asyncio.run(api_load(urls, world, API_CLIENTS, 2))  # warm-up: threads, caches
    rates = []
    for run in range(runs):
        load = asyncio.run(api_load(urls, world, API_CLIENTS, per_client))
        if load.errors:
            raise SystemExit(f"API errors: {load.errors[:5]}")
        print(f"    run {run}: {load.rate:7.1f} req/s ({load.requests} requests)", flush=True)
        rates.append(load.rate)
    return statistics.median(rates)


def bench_api(folder: Path, runs: int, per_client: int) -> list[tuple[str, float]]:
    t0 = time.perf_counter()
    world = build_world(folder)
    print(f"  world built in {time.perf_counter() - t0:.1f} s", flush=True)
    rows = []
    with api_processes(world, 1) as urls:
        print("  1 process (baseline)", flush=True)
        rows.append(("baseline: 1 API process", measure_api(urls, world, runs, per_client)))
    with api_processes(world, 2) as urls:
        print("  2 processes, client round-robin", flush=True)
        rows.append(
            ("2 API processes, client round-robin", measure_api(urls, world, runs, per_client))
        )
        with haproxy_in_front(urls, folder) as proxy:
            if proxy is None:
                print("  (no haproxy binary: the proxied figure is skipped)", flush=True)
            else:
                print("  2 processes behind HAProxy (deploy/haproxy.cfg)", flush=True)
                rows.append(
                    (
                        "2 API processes behind HAProxy",
                        measure_api([proxy], world, runs, per_client),
                    )
                )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000, help="messages per ingest run")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--requests", type=int, default=15, help="API requests per client")
    parser.add_argument(
        "--metadata-url", help="metadata store of the workers (default: a SQLite file)"
    )
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--skip-api", action="store_true")
    args = parser.parse_args()
    print(machine_line(), flush=True)
    with tempfile.TemporaryDirectory(prefix="agridrone-scaled-") as name:
        folder = Path(name)
        clean = {k: v for k, v in os.environ.items() if not k.startswith("AGRIDRONE_")}
        env = {
            **clean,
            **(
                {"AGRIDRONE_METADATA_URL": args.metadata_url}
                if args.metadata_url
                else {"AGRIDRONE_METADATA_PATH": str(folder / "agridrone.db")}
            ),
        }
        rows: list[tuple[str, str]] = []
        if not args.skip_ingest:
            print(f"\n== ingest: {args.messages:,} single-sample messages, QoS 1, MQTT 5 ==")
            ctx = Context(folder, args.messages, args.runs, env)
            ingest = bench_ingest(ctx)
            base = ingest[0][1]
            rows += [(n, f"{r:9,.0f} msg/s  x{r / base:4.2f}") for n, r in ingest]
        if not args.skip_api:
            print(f"\n== API: {API_CLIENTS} clients, six-route mix ==")
            api = bench_api(folder / "api", args.runs, args.requests)
            base = api[0][1]
            rows += [(n, f"{r:9.1f} req/s  x{r / base:4.2f}") for n, r in api]
    print(f"\n== medians of {args.runs} runs ==")
    for name, figure in rows:
        print(f"  {name:<40} {figure}")


if __name__ == "__main__":
    main()
