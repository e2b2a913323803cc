"""How fast ``agridrone mavlink-bridge`` gets a real .tlog to the broker, and what its spool costs.

Run: ``.venv/bin/python -m bench.bridge [TLOG]``. Starts a Mosquitto of its own on a free
loopback port, then, 3 times each (medians printed):

* ``read+translate``: pymavlink reads the log and ``MavlinkTranslator`` translates it
  (no spool, no broker): the CPU cost of the bridge's input side;
* ``replay``: the ``agridrone mavlink-bridge --rate 0`` process from start to exit, i.e.
  read, translate, spool (fsync per message) and publish at QoS 1 until every message is
  acknowledged;
* ``spool``: appends of 2 KB records (a 10-sample batch) with fsync, and take+ack+commit.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from adapters.mavlink import MavlinkDrone
from adapters.mavlink_bridge import Bridge, MavlinkSource
from adapters.spool import Spool
from tests.realdata import realdata
from tests.servers import running_mosquitto

REPEATS = 3
SPOOL_RECORDS = 500


def read_translate(path: Path, folder: Path) -> tuple[float, int, int]:
    """Seconds, packets and samples for reading and translating ``path`` (spool untouched)."""
    with Spool(folder) as spool:
        bridge = Bridge(MavlinkDrone("bench", "d"), spool)
        bridge._spool = lambda _msgs: None  # type: ignore[method-assign,assignment]
        source = MavlinkSource(str(path), rate=0)
        t0 = time.perf_counter()
        while (p := source.read()) is not None:
            bridge.feed(p)
        bridge.finish()
        elapsed = time.perf_counter() - t0
        source.close()
    return elapsed, bridge.stats.packets, bridge.stats.samples


def replay(path: Path, port: int, spool: Path) -> float:
    """Seconds from starting the bridge process to its exit (everything acknowledged)."""
    t0 = time.perf_counter()
    subprocess.run(
        [
            sys.executable, "-m", "agridrone.cli", "mavlink-bridge", "--coop", "bench",
            "--drone", "d", "--master", str(path), "--rate", "0", "--spool", str(spool),
            "--mqtt-url", f"mqtt://127.0.0.1:{port}", "--log-level", "WARNING",
        ],
        check=True,
    )  # fmt: skip
    return time.perf_counter() - t0


def spool_costs(folder: Path) -> tuple[float, float]:
    """(µs per fsync'd append, µs per take+ack with a commit every 50) for 2 KB records."""
    payload = b"x" * 2048
    with Spool(folder) as spool:
        t0 = time.perf_counter()
        for _ in range(SPOOL_RECORDS):
            spool.append("agri/v1/bench/d/telemetry", payload)
        append = (time.perf_counter() - t0) / SPOOL_RECORDS * 1e6
        t0 = time.perf_counter()
        for i, rec in enumerate(spool.take(SPOOL_RECORDS)):
            spool.ack(rec.id)
            if i % 50 == 49:
                spool.commit()
        drain = (time.perf_counter() - t0) / SPOOL_RECORDS * 1e6
    return append, drain


def main() -> None:
    """Print the medians."""
    path = (
        Path(sys.argv[1]) if len(sys.argv) > 1 else realdata("raw", "phoenix_ubc_2018-09-25.tlog")
    )
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        reads = [read_translate(path, base / f"r{i}") for i in range(REPEATS)]
        secs = statistics.median(r[0] for r in reads)
        packets, samples = reads[0][1], reads[0][2]
        print(f"{path.name}: {packets} packets, {samples} samples")
        print(f"read+translate  {secs:.2f} s  ({packets / secs:,.0f} packets/s)")
        with running_mosquitto(base / "mosquitto") as mosquitto:
            runs = [replay(path, mosquitto.port, base / f"s{i}") for i in range(REPEATS)]
        print(f"replay to broker {statistics.median(runs):.2f} s (runs {runs})")
        costs = [spool_costs(base / f"c{i}") for i in range(REPEATS)]
        print(
            f"spool append+fsync {statistics.median(c[0] for c in costs):.0f} µs, "
            f"take+ack(+commit/50) {statistics.median(c[1] for c in costs):.0f} µs per record"
        )


if __name__ == "__main__":
    main()
