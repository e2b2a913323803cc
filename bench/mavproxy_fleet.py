"""MAVProxy fleet benchmark: N ground stations at 10 Hz, every message type, into the worker.

Each simulated ground station publishes what MAVProxy's ``mqtt`` module publishes for an
ArduCopter at 10 Hz stream rates: ten message types (GLOBAL_POSITION_INT, GPS_RAW_INT,
SYSTEM_TIME, HEARTBEAT, SERVO_OUTPUT_RAW, RC_CHANNELS, VFR_HUD, SYS_STATUS, MISSION_CURRENT,
ATTITUDE; the field sets of the real MAVProxy 1.8.75 capture) every 100 ms, QoS 0, on
``agri/mavlink/{coop}/{drone}/{MSGTYPE}``, paced in real time by publisher processes. Two
consumers take the same live load in turn, each for ``--seconds``:

* baseline: a bare paho subscriber that only counts messages (the broker's and the client
  library's cost, nothing of ours);
* ours: the ingest worker (``IngestService`` with MAVProxy topics) storing into SQLite (or
  InfluxDB with ``--store influx``).

Zero loss is checked, not assumed: every position published must be stored (the publishers
count what they sent), nothing rejected, no gap counted. "Keeps up" is the worker's lag
(age of the oldest message in its inbox) staying small during the run and the last sample
stored within a second or two of the last publish. CPU is the consumer process's own
(user + system) per message: what the load of other processes inflates least.

    .venv/bin/python -m bench.mavproxy_fleet [--stations 50] [--seconds 30] [--store sqlite]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from bench._serve import machine_line
from ingest.foreign import ForeignConfig
from ingest.mqtt import BrokerAddress, ConsumerConfig
from ingest.service import IngestConfig, IngestService
from storage.contract import TelemetryStore
from storage.drones import DroneRecord
from storage.influx import InfluxStore
from storage.metadata import MetadataDB
from storage.sqlite import SqliteStore
from tests.servers import running_influxd, running_mosquitto

COOP = "htx-bench"
TICK_S = 0.1
PUBLISHERS = 2
TYPES = 10


def station_messages(station: int, tick: int, now_ms: int) -> list[tuple[str, bytes]]:
    """What MAVProxy publishes for one 100 ms tick of one armed ArduCopter."""
    boot_ms = 60_000 + tick * 100
    lat = 210_800_000 + station * 10_000 + tick * 3
    lon = 1_065_200_000 + tick * 4
    servos = {f"servo{n}_raw": 1500 for n in range(1, 17)}
    chans = {f"chan{n}_raw": 1600 if n == 7 else 1500 for n in range(1, 19)}
    msgs: list[tuple[str, dict[str, Any]]] = [
        (
            "HEARTBEAT",
            {"type": 2, "autopilot": 3, "base_mode": 217, "custom_mode": 3}
            | {"system_status": 4, "mavlink_version": 3},
        ),
        (
            "SYSTEM_TIME",
            {"time_unix_usec": (now_ms - 50) * 1000, "time_boot_ms": boot_ms - 50},
        ),
        (
            "GPS_RAW_INT",
            {"time_usec": boot_ms * 1000, "fix_type": 3, "lat": lat, "lon": lon}
            | {"alt": 20_000, "eph": 90, "epv": 120, "vel": 500, "cog": 9000}
            | {"satellites_visible": 14, "alt_ellipsoid": 0, "h_acc": 0, "v_acc": 0}
            | {"vel_acc": 0, "hdg_acc": 0, "yaw": 0},
        ),
        (
            "GLOBAL_POSITION_INT",
            {"time_boot_ms": boot_ms, "lat": lat, "lon": lon, "alt": 20_000}
            | {"relative_alt": 3_000, "vx": 300, "vy": 400, "vz": 0, "hdg": 9000},
        ),
        ("SERVO_OUTPUT_RAW", {"time_usec": boot_ms * 1000, "port": 0} | servos),
        ("RC_CHANNELS", {"time_boot_ms": boot_ms, "chancount": 8} | chans | {"rssi": 255}),
        (
            "VFR_HUD",
            {"airspeed": 5.0, "groundspeed": 5.0, "heading": 90, "throttle": 40}
            | {"alt": 3.0, "climb": 0.0},
        ),
        (
            "SYS_STATUS",
            {"onboard_control_sensors_present": 0, "voltage_battery": 44_000}
            | {"current_battery": 3_000, "battery_remaining": 80, "drop_rate_comm": 0},
        ),
        ("MISSION_CURRENT", {"seq": 3, "total": 20, "mission_state": 3, "mission_mode": 1}),
        (
            "ATTITUDE",
            {"time_boot_ms": boot_ms, "roll": 0.01, "pitch": -0.02, "yaw": 1.57}
            | {"rollspeed": 0.0, "pitchspeed": 0.0, "yawspeed": 0.0},
        ),
    ]
    prefix = f"agri/mavlink/{COOP}/gcs{station:03d}"
    return [(f"{prefix}/{kind}", orjson.dumps(body)) for kind, body in msgs]


def publish(port: int, stations: list[int], seconds: float, start_at: float, out: Any) -> None:
    """One publisher process: its stations, one paho client each (as MAVProxy), paced."""
    clients = []
    for s in stations:
        c = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"mavproxy-{s}-{uuid.uuid4().hex[:6]}"
        )
        c.connect("127.0.0.1", port)
        c.loop_start()
        clients.append(c)
    time.sleep(max(0.0, start_at - time.time()))
    ticks = round(seconds / TICK_S)
    sent = 0
    late = 0.0
    t0 = time.monotonic()
    for tick in range(ticks):
        now_ms = int(time.time() * 1000)
        for s, c in zip(stations, clients, strict=True):
            for topic, payload in station_messages(s, tick, now_ms):
                c.publish(topic, payload, qos=0)
                sent += 1
        wait = t0 + (tick + 1) * TICK_S - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        else:
            late = max(late, -wait)
    time.sleep(0.5)  # let the network threads flush
    for c in clients:
        c.disconnect()
        c.loop_stop()
    out.put((sent, ticks, late))


@dataclass
class Run:
    name: str
    messages: int
    positions_stored: int
    positions_sent: int
    seconds: float
    cpu_s: float
    max_lag_s: float
    drain_s: float
    publisher_late_s: float

    def line(self) -> str:
        lost = self.positions_sent - self.positions_stored
        us = self.cpu_s / self.messages * 1e6
        return (
            f"{self.name:<28} {self.messages:>8} msgs in {self.seconds:5.1f} s"
            f" ({self.messages / self.seconds:7,.0f} msg/s)  CPU {us:6.1f}"
            f" us/msg  max lag {self.max_lag_s:5.2f} s  drained {self.drain_s:5.2f} s after"
            f"  positions {self.positions_stored}/{self.positions_sent} (lost {lost})"
            f"  publishers late by <= {self.publisher_late_s:.2f} s"
        )


def run_publishers(port: int, stations: int, seconds: float) -> tuple[Callable[[], Any], float]:
    """Start the publisher processes; a function waiting for them: (sent, ticks, late)."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    start_at = time.time() + 3.0
    groups = [list(range(i, stations, PUBLISHERS)) for i in range(PUBLISHERS)]
    procs = [
        ctx.Process(target=publish, args=(port, g, seconds, start_at, out)) for g in groups if g
    ]
    for p in procs:
        p.start()

    def wait() -> tuple[int, int, float]:
        results = [out.get(timeout=seconds + 60) for _ in procs]
        for p in procs:
            p.join()
        return (
            sum(r[0] for r in results),
            results[0][1],
            max(r[2] for r in results),
        )

    return wait, start_at


def baseline(port: int, stations: int, seconds: float) -> Run:
    """A bare paho subscriber counting messages under the same live load."""
    count = 0
    last = [0.0]
    lock = threading.Lock()

    def on_message(_c: Any, _u: Any, _m: paho.MQTTMessage) -> None:
        nonlocal count
        with lock:
            count += 1
        last[0] = time.monotonic()

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"count-{uuid.uuid4().hex[:6]}")
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.subscribe("agri/mavlink/+/+/+", qos=1)
    client.loop_start()
    wait, start_at = run_publishers(port, stations, seconds)
    time.sleep(max(0.0, start_at - time.time()))
    cpu0 = time.process_time()
    sent, ticks, late = wait()
    end = time.monotonic()
    deadline = end + 30
    while count < sent and time.monotonic() < deadline:
        time.sleep(0.05)
    cpu = time.process_time() - cpu0
    client.disconnect()
    client.loop_stop()
    positions = stations * ticks
    got_positions = round(count / TYPES)
    return Run(
        "baseline: paho, count only",
        count,
        got_positions,
        positions,
        seconds,
        cpu,
        0.0,
        max(0.0, last[0] - end),
        late,
    )


def ours(port: int, stations: int, seconds: float, store: TelemetryStore, folder: Path) -> Run:
    """The ingest worker taking the MAVProxy topics under the same live load."""
    metadata = MetadataDB(folder / f"meta-{uuid.uuid4().hex[:6]}.db")
    for s in range(stations):
        record = DroneRecord(COOP, f"gcs{s:03d}", 5.0, 0, "$7$101$x$y", mavlink_spray="rc7>1500")
        metadata.add_drone(record)
    config = IngestConfig(
        ConsumerConfig(
            BrokerAddress("127.0.0.1", port), f"bench-{uuid.uuid4().hex[:6]}", topics=[]
        ),
        require_registered=True,
        foreign=ForeignConfig(dji_topic=None),
    )
    worker = IngestService(config, store, metadata)
    worker.start(connect_timeout_s=10)
    lags: list[float] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.25):
            lags.append(worker.metrics.value("agridrone_ingest_lag_seconds"))

    watcher = threading.Thread(target=watch, daemon=True)
    wait, start_at = run_publishers(port, stations, seconds)
    time.sleep(max(0.0, start_at - time.time()))
    watcher.start()
    cpu0 = time.process_time()
    sent, ticks, late = wait()
    end = time.monotonic()
    positions = stations * ticks
    stored = 0
    deadline = end + 60
    while time.monotonic() < deadline:
        stored = int(worker.metrics.value("agridrone_ingest_samples_written_total"))
        if stored >= positions:
            break
        time.sleep(0.02)
    drained = time.monotonic() - end
    cpu = time.process_time() - cpu0
    stop.set()
    watcher.join()
    m = worker.metrics
    received = int(m.value("agridrone_ingest_foreign_messages_total", source="mavproxy"))
    gaps = m.value("agridrone_ingest_mavlink_position_gaps_total")
    rejected = sum(
        s.value
        for metric in m.registry.collect()
        if metric.name == "agridrone_ingest_samples_rejected"
        for s in metric.samples
        if s.name.endswith("_total")
    )
    worker.stop()
    in_store = sum(len(store.drone_samples(COOP, f"gcs{s:03d}", 0, 2**62)) for s in range(stations))
    metadata.close()
    print(
        f"  worker: {received} MAVProxy messages translated of {sent} sent; stored"
        f" {in_store} positions; rejected {rejected:g}; position gaps counted {gaps:g}",
        flush=True,
    )
    return Run(
        "ours: ingest worker",
        received,
        in_store,
        positions,
        seconds,
        cpu,
        max(lags, default=0.0),
        drained,
        late,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stations", type=int, default=50)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--store", choices=("sqlite", "influx"), default="sqlite")
    p.add_argument("--rounds", type=int, default=1)
    args = p.parse_args(argv)
    print(machine_line(), flush=True)
    rate = args.stations * TYPES / TICK_S
    print(
        f"{args.stations} ground stations x {TYPES} message types x 10 Hz = {rate:,.0f} msg/s"
        f" ({args.stations * 10} positions/s) for {args.seconds:g} s, QoS 0,"
        f" {PUBLISHERS} publisher processes; store {args.store}",
        flush=True,
    )
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="bench-mavproxy-") as tmp:
        folder = Path(tmp)
        with running_mosquitto(folder / "mosquitto") as broker:
            for _ in range(args.rounds):
                b = baseline(broker.port, args.stations, args.seconds)
                print(b.line(), flush=True)
                runs.append(b)
                if args.store == "sqlite":
                    with SqliteStore(folder / f"t-{uuid.uuid4().hex[:6]}.db") as store:
                        r = ours(broker.port, args.stations, args.seconds, store, folder)
                else:
                    with running_influxd(folder / f"influx-{uuid.uuid4().hex[:6]}") as influxd:
                        influx = InfluxStore.open(influxd.url, "bench")
                        try:
                            r = ours(broker.port, args.stations, args.seconds, influx, folder)
                        finally:
                            influx.close()
                print(r.line(), flush=True)
                runs.append(r)
    base = [r for r in runs if r.name.startswith("baseline")]
    mine = [r for r in runs if r.name.startswith("ours")]
    b_cpu = statistics.median(r.cpu_s / r.messages for r in base)
    o_cpu = statistics.median(r.cpu_s / r.messages for r in mine)
    lost = sum(r.positions_sent - r.positions_stored for r in mine)
    print(
        f"median CPU per message: baseline {b_cpu * 1e6:.1f} us, ours {o_cpu * 1e6:.1f} us"
        f" ({o_cpu / b_cpu:.1f}x); positions lost by ours: {lost}",
        flush=True,
    )
    return 0 if lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
