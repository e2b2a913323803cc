"""``agridrone mavlink-bridge`` end to end: real .tlogs (replayed, or sent over UDP with
pymavlink) through the bridge process, a real Mosquitto, a real ingest worker and both
stores; broker outages and SIGKILL of the bridge lose nothing.

The expected positions are computed here from the tlog with pymavlink alone (fix, clock
anchor, reboot), independently of adapters/mavlink.py.
"""

from __future__ import annotations

import csv
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from pymavlink import mavutil

from simulators.foreign_out import FLOW_BATTERY, SPRAY_RULE
from simulators.geo import DEFAULT_FIELDS_PATH
from storage.contract import TelemetryStore
from storage.metadata import MetadataDB
from storage.sqlite import SqliteStore
from tests.integration.mqtt_helpers import start_worker, unique_id, wait_until
from tests.realdata import needs_realdata, realdata
from tests.servers import Mosquitto

pytestmark = [pytest.mark.integration, needs_realdata]

REPO = Path(__file__).resolve().parents[2]
END_OF_TIME = 2**62
SECRET = "s3cret-bridge-pw"
TLOG_17 = "phoenix_ubc_2018-09-17.tlog"
TLOG_25 = "phoenix_ubc_2018-09-25.tlog"
VEHICLE = (1, 1)  # sysid, compid of the Pixhawk in both logs
REBOOT_BACKSTEP_MS = 5_000


@dataclass
class Expected:
    """What the tlog says should be stored, decoded independently."""

    positions: dict[int, tuple[int, int]]  # ts ms -> (lat e7, lon e7), first of a ts kept
    no_fix: int
    takeoffs: int
    landings: int
    errors_max: int  # STATUSTEXT of severity <= 3 (events at one ts and type store once)


def vehicle_messages(path: Path) -> Iterator[Any]:
    conn = mavutil.mavlink_connection(str(path))
    try:
        while (m := conn.recv_match()) is not None:
            if (m.get_srcSystem(), m.get_srcComponent()) == VEHICLE:
                yield m
    finally:
        conn.close()


def expected_from(messages: Iterable[Any]) -> Expected:
    fix: int | None = None
    offset: int | None = None
    last_boot: int | None = None
    pending: list[tuple[int, int, int]] = []
    out: dict[int, tuple[int, int]] = {}
    no_fix = 0
    messages = list(messages)

    def keep(ts: int, lat: int, lon: int) -> None:
        out.setdefault(ts, (lat, lon))

    for m in messages:
        kind = m.get_type()
        boot = getattr(m, "time_boot_ms", None)
        if kind in ("SYSTEM_TIME", "GLOBAL_POSITION_INT", "RC_CHANNELS") and boot is not None:
            if last_boot is not None and boot + REBOOT_BACKSTEP_MS < last_boot:
                offset = None  # the autopilot rebooted: its clock needs a new anchor
                last_boot = boot
            elif last_boot is None or boot > last_boot:
                last_boot = boot
        if kind == "GPS_RAW_INT":
            fix = m.fix_type
        elif kind == "SYSTEM_TIME" and m.time_unix_usec:
            offset = m.time_unix_usec // 1000 - m.time_boot_ms
            for b, la, lo in pending:
                keep(b + offset, la, lo)
            pending.clear()
        elif kind == "GLOBAL_POSITION_INT":
            if (m.lat == 0 and m.lon == 0) or (fix is not None and fix < 2):
                no_fix += 1
            elif offset is None:
                pending.append((m.time_boot_ms, m.lat, m.lon))
            else:
                keep(m.time_boot_ms + offset, m.lat, m.lon)
    return Expected(out, no_fix, *expected_events(messages))


def expected_events(messages: list[Any]) -> tuple[int, int, int]:
    """(arm transitions, disarm transitions, STATUSTEXT of severity <= 3)."""
    takeoffs = landings = errors = 0
    armed: bool | None = None
    for m in messages:
        kind = m.get_type()
        if kind == "HEARTBEAT" and m.type != 6 and m.autopilot != 8:
            now = bool(m.base_mode & 128)
            if armed is not None and now != armed:
                takeoffs += now
                landings += not now
            armed = now
        elif kind == "STATUSTEXT" and m.severity <= 3:
            errors += 1
    return takeoffs, landings, errors


def stored_positions(store: TelemetryStore, coop: str, drone: str) -> dict[int, tuple[int, int]]:
    return {
        s.ts_ms: (round(s.lat * 1e7), round(s.lon * 1e7))
        for s in store.drone_samples(coop, drone, 0, END_OF_TIME)
    }


def stored_count(store: TelemetryStore, coop: str, drone: str) -> int:
    return len(store.drone_samples(coop, drone, 0, END_OF_TIME))


class BridgeProc:
    """``agridrone mavlink-bridge`` as its own process, its log in a file."""

    def __init__(
        self,
        port: int,
        coop: str,
        drone: str,
        master: str,
        spool: Path,
        *extra: str,
        password: str = SECRET,
    ) -> None:
        self.log = spool.parent / f"bridge-{unique_id('log')}.log"
        env = {
            **os.environ,
            "AGRIDRONE_MQTT_PASSWORD": password,
            "AGRIDRONE_DATA_DIR": str(spool.parent),
        }
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "agridrone.cli",
                    "mavlink-bridge",
                    "--coop",
                    coop,
                    "--drone",
                    drone,
                    "--master",
                    master,
                    "--spool",
                    str(spool),
                    "--mqtt-url",
                    f"mqtt://127.0.0.1:{port}",
                    "--username",
                    f"{coop}.{drone}",
                    "--stats-every",
                    "1",
                    *extra,
                ],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait(self, timeout: float = 120) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"bridge did not finish in {timeout} s:\n{self.text()[-3000:]}"
            ) from None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(30)


@pytest.fixture
def bridges() -> Iterator[list[BridgeProc]]:
    started: list[BridgeProc] = []
    yield started
    for b in started:
        b.kill()


def finish_ok(bridge: BridgeProc) -> str:
    code = bridge.wait()
    text = bridge.text()
    assert code == 0, text[-3000:]
    assert SECRET not in text
    return text


def check_stored(store: TelemetryStore, coop: str, drone: str, want: Expected) -> None:
    wait_until(
        lambda: stored_count(store, coop, drone) >= len(want.positions),
        timeout=60,
        what=f"{len(want.positions)} samples stored",
        state=lambda: stored_count(store, coop, drone),
    )
    assert stored_positions(store, coop, drone) == want.positions


# --- replay


@pytest.mark.parametrize("case", [(TLOG_17, 772, 10), (TLOG_25, 1616, 0)], ids=["0917", "0925"])
def test_a_tlog_replayed_through_the_bridge_stores_every_fixed_position_once(
    mosquitto: Mosquitto,
    store: TelemetryStore,
    tmp_path: Path,
    bridges: list[BridgeProc],
    case: tuple[str, int, int],
) -> None:
    tlog, samples, no_fix = case
    path = realdata("raw", tlog)
    want = expected_from(vehicle_messages(path))
    assert (len(want.positions), want.no_fix) == (samples, no_fix)  # the log as documented
    assert (want.takeoffs, want.landings) == (6, 6)
    coop, drone = unique_id("coop"), "phoenix"
    metadata = MetadataDB(tmp_path / "m.db")
    worker = start_worker(mosquitto, coop, store, metadata)
    try:
        bridge = BridgeProc(
            mosquitto.port, coop, drone, str(path), tmp_path / "spool", "--rate", "0"
        )
        bridges.append(bridge)
        text = finish_ok(bridge)
        check_stored(store, coop, drone, want)
        wait_until(
            lambda: len(store.drone_events(coop, drone, 0, END_OF_TIME)) >= 12,
            what="the sorties' events",
        )
    finally:
        worker.stop()
        metadata.close()
    events = store.drone_events(coop, drone, 0, END_OF_TIME)
    kinds = [e.type for e in events]
    assert (kinds.count("takeoff"), kinds.count("landing")) == (6, 6)
    assert 1 <= kinds.count("error") <= want.errors_max
    assert f"samples={samples} " in text
    assert (f"rejected=no_fix:{no_fix} " if no_fix else "rejected=- ") in text
    assert text.count("event=bridge_rejected reason=no_fix") == (1 if no_fix else 0)
    firsts = sorted(want.positions)
    # times anchored to the autopilot's own GPS clock: 2018-09-17 01:44 / 2018-09-25 22:36 UTC
    assert firsts[0] // 1000 in range(1537148800, 1537920000)


# --- broker outage, bridge crash


def replay_until_some_stored(
    *,
    port: int,
    store: TelemetryStore,
    coop: str,
    spool: Path,
    bridges: list[BridgeProc],
    at_least: int,
) -> BridgeProc:
    bridge = BridgeProc(port, coop, "phoenix", str(realdata("raw", TLOG_17)), spool, "--rate", "40")
    bridges.append(bridge)
    wait_until(
        lambda: stored_count(store, coop, "phoenix") >= at_least,
        timeout=60,
        what=f"{at_least} samples stored",
        state=lambda: (stored_count(store, coop, "phoenix"), bridge.text()[-1500:]),
    )
    assert bridge.proc.poll() is None, "the replay ended before the fault: slow it down"
    return bridge


def test_a_broker_outage_mid_replay_loses_nothing(
    fresh_mosquitto: Mosquitto, tmp_path: Path, bridges: list[BridgeProc]
) -> None:
    want = expected_from(vehicle_messages(realdata("raw", TLOG_17)))
    coop = unique_id("coop")
    db = MetadataDB(tmp_path / "m.db")
    with SqliteStore(tmp_path / "telemetry.db") as store:
        worker = start_worker(fresh_mosquitto, coop, store, db)
        try:
            bridge = replay_until_some_stored(
                port=fresh_mosquitto.port,
                store=store,
                coop=coop,
                spool=tmp_path / "spool",
                bridges=bridges,
                at_least=100,
            )
            fresh_mosquitto.stop()
            before = stored_count(store, coop, "phoenix")
            time.sleep(3)  # the bridge goes on reading and spooling meanwhile
            assert bridge.proc.poll() is None
            fresh_mosquitto.start()  # same port, same persistence folder
            text = finish_ok(bridge)
            check_stored(store, coop, "phoenix", want)
        finally:
            worker.stop()
            db.close()
    assert before < len(want.positions)
    assert "event=bridge_disconnected" in text
    assert text.count("event=bridge_connected") >= 2


def test_sigkill_of_the_bridge_mid_replay_and_a_restart_lose_nothing_and_store_once(
    mosquitto: Mosquitto,
    store: TelemetryStore,
    tmp_path: Path,
    bridges: list[BridgeProc],
) -> None:
    """The restarted bridge sends its unacknowledged spool and the whole log again: every
    sample arrives at least twice over, and each store keeps one row per drone and ts."""
    want = expected_from(vehicle_messages(realdata("raw", TLOG_17)))
    coop = unique_id("coop")
    spool = tmp_path / "spool"
    metadata = MetadataDB(tmp_path / "m.db")
    worker = start_worker(mosquitto, coop, store, metadata)
    try:
        first = replay_until_some_stored(
            port=mosquitto.port, store=store, coop=coop, spool=spool, bridges=bridges, at_least=150
        )
        first.kill(signal.SIGKILL)
        assert first.proc.returncode == -signal.SIGKILL
        again = BridgeProc(
            mosquitto.port, coop, "phoenix", str(realdata("raw", TLOG_17)), spool, "--rate", "0"
        )
        bridges.append(again)
        finish_ok(again)
        check_stored(store, coop, "phoenix", want)
        time.sleep(1)  # late duplicates, if any, would land now
    finally:
        worker.stop()
        metadata.close()
    assert stored_count(store, coop, "phoenix") == len(want.positions)
    kinds = [e.type for e in store.drone_events(coop, "phoenix", 0, END_OF_TIME)]
    assert (kinds.count("takeoff"), kinds.count("landing")) == (6, 6)


def test_a_spool_filled_while_the_broker_is_down_survives_sigkill_and_drains(
    fresh_mosquitto: Mosquitto, tmp_path: Path, bridges: list[BridgeProc]
) -> None:
    """Everything the first bridge read went to disk only; a second bridge with an idle
    UDP link (nothing new to read) delivers it all from the spool."""
    want = expected_from(vehicle_messages(realdata("raw", TLOG_17)))
    coop = unique_id("coop")
    spool = tmp_path / "spool"
    fresh_mosquitto.stop()
    first = BridgeProc(
        fresh_mosquitto.port, coop, "phoenix", str(realdata("raw", TLOG_17)), spool, "--rate", "0"
    )
    bridges.append(first)
    wait_until(lambda: "event=bridge_replay_read" in first.text(), timeout=60, what="replay read")
    first.kill(signal.SIGKILL)
    assert any(spool.glob("*.seg"))
    fresh_mosquitto.start()
    db = MetadataDB(tmp_path / "m.db")
    with SqliteStore(tmp_path / "telemetry.db") as store:
        worker = start_worker(fresh_mosquitto, coop, store, db)
        try:
            drainer = BridgeProc(
                fresh_mosquitto.port, coop, "phoenix", f"udpin:127.0.0.1:{free_udp_port()}", spool
            )
            bridges.append(drainer)
            check_stored(store, coop, "phoenix", want)
            drainer.kill(signal.SIGTERM)
        finally:
            worker.stop()
            db.close()
    assert drainer.proc.returncode == 0
    text = drainer.text()
    assert SECRET not in text
    assert "spooled=0 " not in text.split("event=bridge_start", 1)[1].split("\n", 1)[0]


# --- UDP


def free_udp_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_mavlink_sent_over_udp_with_pymavlink_is_stored(
    mosquitto: Mosquitto,
    tmp_path: Path,
    bridges: list[BridgeProc],
) -> None:
    """The vehicle's first 6,000 packets of the 2018-09-25 log, sent as raw MAVLink to the
    bridge's udpin port (a ground station's or companion computer's view of the link)."""
    packets = list(itertools.islice(vehicle_messages(realdata("raw", TLOG_25)), 6_000))
    want = expected_from(packets)
    assert len(want.positions) > 150
    coop, port = unique_id("coop"), free_udp_port()
    db = MetadataDB(tmp_path / "m.db")
    with SqliteStore(tmp_path / "telemetry.db") as store:
        worker = start_worker(mosquitto, coop, store, db)
        try:
            bridge = BridgeProc(
                mosquitto.port, coop, "phoenix", f"udpin:127.0.0.1:{port}", tmp_path / "spool"
            )
            bridges.append(bridge)
            wait_until(lambda: "event=bridge_start" in bridge.text(), what="bridge started")
            time.sleep(0.5)  # the UDP socket is bound right after the start line
            sender = mavutil.mavlink_connection(f"udpout:127.0.0.1:{port}")
            try:
                for i, m in enumerate(packets):
                    sender.write(m.get_msgbuf())
                    if i % 20 == 19:
                        time.sleep(0.02)  # <= 1,000 packets/s: 5x a 57,600-baud radio
            finally:
                sender.close()
            check_stored(store, coop, "phoenix", want)
            bridge.kill(signal.SIGTERM)
        finally:
            worker.stop()
            db.close()
    assert bridge.proc.returncode == 0
    assert "seq_lost=" in bridge.text()


# --- the simulator speaking MAVLink over UDP (issue 11, part 6)


def test_the_simulators_mavlink_over_udp_through_the_bridge_stores_its_own_track(
    mosquitto: Mosquitto, tmp_path: Path, bridges: list[BridgeProc]
) -> None:
    """`agridrone simulate --speaks mavlink-udp` → bridge → broker → worker: the stored
    samples are the simulator's own track (its wire-v1 samples) to MAVLink's resolution."""
    tag = unique_id("t")
    doc = orjson.loads(DEFAULT_FIELDS_PATH.read_bytes())
    for feature in doc["features"]:
        if feature["properties"].get("coop"):
            feature["properties"]["coop"] += f"-{tag}"
    fields = tmp_path / "fields.geojson"
    fields.write_bytes(orjson.dumps(doc))
    coop, port = f"htx-hong-phong-{tag}", free_udp_port()
    db = MetadataDB(tmp_path / "m.db")
    with SqliteStore(tmp_path / "telemetry.db") as store:
        worker = start_worker(mosquitto, coop, store, db)
        try:
            bridge = BridgeProc(
                mosquitto.port,
                coop,
                "dt-01",
                f"udpin:127.0.0.1:{port}",
                tmp_path / "spool",
                "--spray",
                SPRAY_RULE,
                "--flow-battery",
                str(FLOW_BATTERY),
                "--tank-l",
                "35",
            )
            bridges.append(bridge)
            wait_until(lambda: "event=bridge_start" in bridge.text(), what="bridge started")
            time.sleep(0.5)
            sim = subprocess.run(
                [
                    sys.executable, "-m", "agridrone.cli", "simulate",
                    "--mqtt-url", mosquitto.url, "--fields", str(fields), "--coop", coop,
                    "--drones", "1", "--flights", "1", "--rate", "2", "--speedup", "25",
                    "--flow", "5", "--speaks", "mavlink-udp",
                    "--mavlink-udp", f"127.0.0.1:{port}",
                    "--write-track", str(tmp_path / "track.csv"),
                ],
                cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
            )  # fmt: skip
            assert sim.returncode == 0, sim.stderr
            with (tmp_path / "track.csv").open(newline="") as f:
                track = list(csv.DictReader(f))
            assert len(track) > 100
            want = {int(r["ts"]): r for r in track}
            wait_until(
                lambda: stored_count(store, coop, "dt-01") >= len(want),
                timeout=60,
                what=f"{len(want)} samples",
                state=lambda: stored_count(store, coop, "dt-01"),
            )
            stored = store.drone_samples(coop, "dt-01", 0, END_OF_TIME)
            events = [e.type for e in store.drone_events(coop, "dt-01", 0, END_OF_TIME)]
            bridge.kill(signal.SIGTERM)
        finally:
            worker.stop()
            db.close()
    assert [s.ts_ms for s in stored] == sorted(want)
    for s in stored:
        row = want[s.ts_ms]
        assert abs(s.lat - float(row["lat"])) <= 1e-7
        assert abs(s.lon - float(row["lon"])) <= 1e-7
        assert s.spraying == (row["spraying"] in ("1", "true", "True"))
        assert s.flow_lpm == pytest.approx(float(row["flow_lpm"]), abs=1e-3)
    assert any(s.spraying for s in stored)
    assert not all(s.spraying for s in stored)
    assert "takeoff" in events
    assert "landing" in events
    assert bridge.proc.returncode == 0
    assert "seq_lost=0 " in bridge.text()


# --- the drone's own credentials on the shipped, locked-down broker


def test_the_bridge_logs_in_as_its_drone_on_the_shipped_broker_and_a_wrong_password_spools(
    tmp_path: Path, bridges: list[BridgeProc]
) -> None:
    """deploy/mosquitto.conf as shipped (no anonymous access, client id bound to the user,
    each drone its own topics): the bridge publishes as htx-a.d1 with its password from the
    environment; with a wrong one it is refused, keeps everything spooled, and never logs
    either password."""
    from tests.integration.shipped_broker import running_shipped_mosquitto
    from tests.integration.test_shipped_broker import DRONE_A, INGEST, mqtt, write_users

    tlog = str(realdata("raw", TLOG_17))
    write_users(tmp_path / "auth")
    with running_shipped_mosquitto(tmp_path / "auth", tmp_path / "data") as broker:
        refused = BridgeProc(
            broker.port, "htx-a", "d1", tlog, tmp_path / "spool", "--rate", "0",
            "--drain-timeout", "3", password="not-the-password",
        )  # fmt: skip
        bridges.append(refused)
        text = finish_ok(refused)
        assert "event=bridge_broker_refused" in text
        assert "not-the-password" not in text
        assert "spool_unacked=0 " not in text.rsplit("event=bridge_done", 1)[1]
        with mqtt(broker.port, INGEST, "agridrone-ingest") as ingest:
            ingest.connected()
            assert ingest.subscribe("agri/v1/htx-a/d1/telemetry") == 1
            ok = BridgeProc(
                broker.port, "htx-a", "d1", tlog, tmp_path / "spool", "--rate", "0",
                password=DRONE_A[1],
            )  # fmt: skip
            bridges.append(ok)
            text = finish_ok(ok)
            assert DRONE_A[1] not in text
            assert "user=htx-a.d1 " in text
            payloads = ingest.drain(10_000, timeout=3)
    # the refused run's spool and the second run's own replay: every position, some twice
    samples = {s["ts"] for p in payloads for s in orjson.loads(p)["samples"]}
    assert len(samples) == 772
