"""End-to-end ingest benchmark: MQTT QoS 1 → worker → InfluxDB / SQLite, zero loss checked.

Drain mode (brief: "Measuring ingest"): every consumer's persistent session is registered
first, M messages are published once into a local Mosquitto (each session keeps its own
copy), then each consumer is started alone and timed from its first message to its last
stored sample. A paho publisher tops out far below the worker, so timing a live stream would
measure the publisher. Baselines in the same run: `mosquitto_sub` and a bare paho subscriber
that only count (the broker's and the client library's ceilings).

    .venv/bin/python -m bench.ingest [--messages 200000] [--batch 1] [--batch 10] [--fresh-ts]
        [--store influx] [--before TREE] [--rounds N]

``--before TREE`` adds the worker of another checkout (e.g. a worktree of main) as one more
consumer of the same published messages, each with its own database, so before and after are
measured in one run on the same data; ``--rounds N`` repeats every scenario N times (the
consumer order alternating) and prints each consumer's median and its ratio to the paho
baseline of the same round. Each worker line also gives its CPU time (user + system, from
/proc) per sample during the drain, and influxd's: on this shared 2-core machine the load
of other processes inflates wall times far more than CPU times.

Samples are timestamped on a day in 2025 by default: a backlog, so the worker records every
batch as late data (ingest/late.py). ``--fresh-ts`` stamps them from 10 minutes ahead of the
start instead, so none is late when written: the live case, without late ranges.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from bench._serve import machine_line, metric, peak_rss_mb
from ingest.wire import encode_sample, encode_samples
from storage.influx import InfluxStore
from storage.records import Sample
from storage.sqlite import SqliteStore
from tests.servers import free_port, running_influxd, running_mosquitto

DRONES = 20
PROTOCOL = "5"
T0_MS = 1_764_300_000_000
#: With --fresh-ts, samples start this far ahead of now: none is late (> 10 s old) when the
#: worker writes it, none is refused as future (24 h).
FRESH_LEAD_MS = 600_000


@dataclass
class Result:
    name: str
    messages: int
    samples: int
    seconds: float
    rss_mb: float | None = None
    #: CPU seconds (user + system) of the worker, and of influxd, from the first message to
    #: the last stored sample: what the load of other processes inflates least.
    cpu_s: float | None = None
    store_cpu_s: float | None = None

    def line(self) -> str:
        rss = f"{self.rss_mb:6.0f} MB" if self.rss_mb is not None else "     -   "
        cpu = ""
        if self.cpu_s is not None:
            cpu = f"  CPU {self.cpu_s / self.samples * 1e6:5.1f} us/sample"
            if self.store_cpu_s is not None:
                cpu += f" (influxd {self.store_cpu_s / self.samples * 1e6:4.1f})"
        return (
            f"{self.name:<34} {self.messages:>8} msgs {self.samples:>8} samples "
            f"{self.seconds:7.2f} s {self.messages / self.seconds:>9,.0f} msg/s "
            f"{self.samples / self.seconds:>9,.0f} samples/s  RSS {rss}{cpu}"
        )


def make_messages(
    coop: str, n_samples: int, batch: int, t0_ms: int = T0_MS
) -> list[tuple[str, bytes]]:
    """``n_samples`` realistic samples over DRONES drones, ``batch`` per message, from
    ``t0_ms`` at 10 Hz."""
    per_drone: dict[str, list[Sample]] = {}
    for i in range(n_samples):
        drone = f"dt-{i % DRONES:02d}"
        k = i // DRONES
        per_drone.setdefault(drone, []).append(
            Sample(
                coop=coop,
                drone=drone,
                ts_ms=t0_ms + 100 * k,
                lat=21.08 + k * 1e-7,
                lon=106.52 + k * 1e-7,
                spraying=k % 10 != 0,
                seq=k,
                alt_m=3.1,
                speed_mps=6.2,
                heading_deg=91.5,
                battery_pct=88.0,
                flow_lpm=6.4,
                tank_l=31.7,
                swath_m=5.5,
                fix="rtk_fixed",
            )
        )
    out: list[tuple[str, bytes]] = []
    for drone, samples in per_drone.items():
        topic = f"agri/v1/{coop}/{drone}/telemetry"
        if batch == 1:
            out.extend((topic, encode_sample(s)) for s in samples)
        else:
            out.extend(
                (topic, encode_samples(samples[i : i + batch]))
                for i in range(0, len(samples), batch)
            )
    return out


def publish(port: int, messages: list[tuple[str, bytes]]) -> float:
    """Publish at QoS 1 with at most 1,000 in flight (paho loses messages past 65,535)."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{os.getpid()}")
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    client.loop_start()
    start = time.perf_counter()
    infos = []
    for topic, payload in messages:
        infos.append(client.publish(topic, payload, qos=1))
        if len(infos) >= 20_000:
            for info in infos:
                info.wait_for_publish(60)
            infos.clear()
    for info in infos:
        info.wait_for_publish(60)
    elapsed = time.perf_counter() - start
    client.disconnect()
    client.loop_stop()
    return elapsed


class Worker:
    """``agridrone ingest`` in its own process, so its RSS is its own."""

    def __init__(
        self,
        name: str,
        mqtt_port: int,
        coop: str,
        store_args: list[str],
        tmp: Path,
        *,
        tree: Path | None = None,
    ):
        self.name = name
        #: The checkout whose code runs (None: this one, as installed).
        self.tree = tree
        self.metrics_port = free_port()
        self.log = tmp / f"{name}.log"
        self.argv = [
            sys.executable,
            "-m",
            "agridrone.cli",
            "ingest",
            "--mqtt-url",
            f"mqtt://127.0.0.1:{mqtt_port}",
            "--client-id",
            f"bench-{name}",
            "--coop",
            coop,
            "--metrics-port",
            str(self.metrics_port),
            "--metadata-path",
            str(tmp / f"{name}.db"),
            "--log-level",
            "WARNING",
            "--mqtt-protocol",
            PROTOCOL,
            *store_args,
        ]

    def metric(self, name: str) -> float:
        return metric(self.metrics_port, name)

    def run(
        self, until_samples: int | None, timeout: float = 600, store_pid: int | None = None
    ) -> tuple[float, float, float, float | None]:
        """Start, wait until ``until_samples`` are written (None: just subscribed), SIGTERM:
        (seconds, peak RSS MB, worker CPU s, ``store_pid``'s CPU s) of the drain."""
        env = None
        if self.tree is not None:
            env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
            env["PYTHONPATH"] = str(self.tree)
        with self.log.open("ab") as out:
            proc = subprocess.Popen(
                self.argv, stdout=out, stderr=subprocess.STDOUT, cwd=self.tree, env=env
            )
        deadline = time.monotonic() + timeout
        first = done = None
        cpu0 = cpu1 = 0.0
        store0 = store1 = None
        try:
            while time.monotonic() < deadline:
                if until_samples is None:
                    if self.metric("agridrone_ingest_mqtt_connected") == 1:
                        break
                else:
                    if (
                        first is None
                        and self.metric("agridrone_ingest_messages_received_total") > 0
                    ):
                        first = time.perf_counter()
                        cpu0 = _cpu_s(proc.pid)
                        store0 = _cpu_s(store_pid) if store_pid is not None else None
                    if self.metric("agridrone_ingest_samples_written_total") >= until_samples:
                        done = time.perf_counter()
                        cpu1 = _cpu_s(proc.pid)
                        store1 = _cpu_s(store_pid) if store_pid is not None else None
                        break
                time.sleep(0.05)  # each poll costs the worker a metrics render: keep it rare
            else:
                raise RuntimeError(f"{self.name}: timed out; see {self.log}")
            peak = peak_rss_mb(proc.pid)
            rss = float("nan") if peak is None else peak
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
        store_cpu = store1 - store0 if store0 is not None and store1 is not None else None
        return ((done or 0.0) - (first or 0.0), rss, cpu1 - cpu0, store_cpu)


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (/proc/PID/stat, fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def paho_counter(port: int, topic: str, client_id: str, expect: int | None) -> float:
    """A paho subscriber that only counts (auto-ack): drain time of ``expect`` messages."""
    got = 0
    first = 0.0
    done = threading.Event()

    def on_message(_c: paho.Client, _u: object, _m: paho.MQTTMessage) -> None:
        nonlocal got, first
        if got == 0:
            first = time.perf_counter()
        got += 1
        if expect is not None and got >= expect:
            done.set()

    subscribed = threading.Event()
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
    client.on_message = on_message
    client.on_subscribe = lambda *_a: subscribed.set()
    client.connect("127.0.0.1", port)
    client.subscribe(topic, 1)
    client.loop_start()
    subscribed.wait(10)
    if expect is not None:
        done.wait(600)
    elapsed = time.perf_counter() - first
    client.disconnect()
    client.loop_stop()
    return elapsed


def mosquitto_sub(port: int, topic: str, client_id: str, expect: int | None) -> float:
    """``mosquitto_sub`` with a persistent session: drain time of ``expect`` messages."""
    base = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-i", client_id, "-c", "-q", "1"]
    if expect is None:
        subprocess.run([*base, "-t", topic, "-E"], check=True)
        return 0.0
    start = time.perf_counter()
    subprocess.run([*base, "-t", topic, "-C", str(expect)], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def stored_samples(store: InfluxStore | SqliteStore, coop: str) -> int:
    return sum(len(store.drone_samples(coop, f"dt-{d:02d}", 0, 2**62)) for d in range(DRONES))


def scenario(
    mqtt_port: int,
    influx_url: str,
    tmp: Path,
    n_samples: int,
    batch: int,
    *,
    t0_ms: int,
    stores: list[str],
    before: Path | None,
    round_no: int = 0,
    influxd_pid: int | None = None,
) -> list[Result]:
    coop = f"bench-b{batch}-r{round_no}"
    topic = f"agri/v1/{coop}/+/telemetry"
    trees: list[tuple[str, Path | None]] = [("", None)]
    if before is not None:
        trees.append(("before ", before))
    workers = []
    dbs: list[tuple[str, InfluxStore | SqliteStore]] = []
    for label, tree in trees:
        tag = f"b{batch}-r{round_no}" + ("-before" if tree is not None else "")
        if "influx" in stores:
            db = f"bench_{tag.replace('-', '_')}"
            args = ["--store", "influx", "--influx-url", influx_url, "--influx-db", db]
            workers.append(Worker(f"{label}influx-{tag}", mqtt_port, coop, args, tmp, tree=tree))
            dbs.append((f"{label}influx", InfluxStore(influx_url, db)))
        if "sqlite" in stores:
            path = tmp / f"telemetry-{tag}.db"
            args = ["--store", "sqlite", "--sqlite-path", str(path)]
            workers.append(Worker(f"{label}sqlite-{tag}", mqtt_port, coop, args, tmp, tree=tree))
            dbs.append((f"{label}sqlite", SqliteStore(path)))
    if round_no % 2:
        workers.reverse()  # against the load's drift: alternate which worker drains first
    messages = make_messages(coop, n_samples, batch, t0_ms)
    n = len(messages)
    # Register every consumer's persistent session before publishing.
    has_mosquitto_sub = shutil.which("mosquitto_sub") is not None
    if has_mosquitto_sub:
        mosquitto_sub(mqtt_port, topic, f"bench-msub-b{batch}-r{round_no}", None)
    paho_counter(mqtt_port, topic, f"bench-paho-b{batch}-r{round_no}", None)
    for w in workers:
        w.run(None)
    pub_s = publish(mqtt_port, messages)
    print(f"  published {n:,} messages ({n_samples:,} samples) in {pub_s:.1f} s", flush=True)

    results = []
    if has_mosquitto_sub:
        secs = mosquitto_sub(mqtt_port, topic, f"bench-msub-b{batch}-r{round_no}", n)
        results.append(Result("baseline mosquitto_sub (count only)", n, n_samples, secs))
    secs = paho_counter(mqtt_port, topic, f"bench-paho-b{batch}-r{round_no}", n)
    results.append(Result("baseline paho subscriber (count)", n, n_samples, secs))
    for w in workers:
        store_pid = influxd_pid if "influx" in w.name else None
        secs, rss, cpu, store_cpu = w.run(n_samples, store_pid=store_pid)
        name = w.name.removesuffix(f"-b{batch}-r{round_no}").removesuffix(
            f"-b{batch}-r{round_no}-before"
        )
        results.append(
            Result(f"agridrone ingest → {name}", n, n_samples, secs, rss, cpu, store_cpu)
        )
    for name, store in dbs:
        got = stored_samples(store, coop)
        status = "zero loss" if got == n_samples else f"LOST {n_samples - got}"
        print(f"  {name}: {got:,} of {n_samples:,} samples stored: {status}", flush=True)
        if got != n_samples:
            raise SystemExit(f"data loss in {name}")
        store.close()
    return results


def summary(rounds: list[list[Result]], batch: int) -> None:
    """Each consumer's median over the rounds, and its median ratio to the paho baseline."""
    paho_name = "baseline paho subscriber (count)"
    print(f"\n  medians of {len(rounds)} rounds, {batch} sample(s) per message:", flush=True)
    names = [r.name for r in rounds[0]]
    for name in names:
        per_round = [next(r for r in results if r.name == name) for results in rounds]
        pahos = [next(r for r in results if r.name == paho_name) for results in rounds]
        rate = statistics.median(r.messages / r.seconds for r in per_round)
        samples = statistics.median(r.samples / r.seconds for r in per_round)
        to_paho = statistics.median(
            (r.messages / r.seconds) / (p.messages / p.seconds)
            for r, p in zip(per_round, pahos, strict=True)
        )
        cpu = ""
        if per_round[0].cpu_s is not None:
            us = statistics.median(r.cpu_s / r.samples * 1e6 for r in per_round if r.cpu_s)
            cpu = f"  CPU {us:.1f} us/sample"
        print(
            f"  {name:<34} {rate:>9,.0f} msg/s {samples:>9,.0f} samples/s  x{to_paho:.2f} of paho"
            f"{cpu}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=200_000, help="samples per scenario")
    parser.add_argument("--batch", type=int, action="append", help="samples per message")
    parser.add_argument("--mqtt-protocol", choices=("5", "3.1.1"), default="5")
    parser.add_argument(
        "--fresh-ts",
        action="store_true",
        help="timestamp samples ahead of now, so none is late data (default: 2025, all late)",
    )
    parser.add_argument(
        "--store", choices=("influx", "sqlite"), action="append", help="default: both"
    )
    parser.add_argument(
        "--before", type=Path, help="another checkout whose worker joins each scenario"
    )
    parser.add_argument("--rounds", type=int, default=1, help="repeat each scenario")
    args = parser.parse_args()
    global PROTOCOL  # noqa: PLW0603 -- one setting for the whole run
    PROTOCOL = args.mqtt_protocol
    batches = args.batch or [1, 10]
    print(machine_line(), flush=True)
    with tempfile.TemporaryDirectory(prefix="agridrone-bench-") as tmp_name:
        tmp = Path(tmp_name)
        with running_mosquitto(tmp / "mosquitto") as mqtt, running_influxd(tmp / "influxd") as db:
            for batch in batches:
                rounds = []
                for round_no in range(args.rounds):
                    now_ms = int(time.time() * 1000)
                    t0_ms = now_ms + FRESH_LEAD_MS if args.fresh_ts else T0_MS
                    when = "fresh ts (not late)" if args.fresh_ts else "2025 ts (late data)"
                    print(
                        f"\n== {args.messages:,} samples, {batch} per message, {when}, "
                        f"round {round_no + 1} of {args.rounds} ==",
                        flush=True,
                    )
                    results = scenario(
                        mqtt.port,
                        db.url,
                        tmp,
                        args.messages,
                        batch,
                        t0_ms=t0_ms,
                        stores=args.store or ["influx", "sqlite"],
                        before=args.before,
                        round_no=round_no,
                        influxd_pid=db.proc.pid,
                    )
                    for r in results:
                        print("  " + r.line(), flush=True)
                    rounds.append(results)
                if args.rounds > 1:
                    summary(rounds, batch)


if __name__ == "__main__":
    main()
