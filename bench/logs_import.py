"""Importing a flight log: ``agridrone logs import`` of a one-hour 10 Hz ``.tlog``, beside
pymavlink just reading the same file.

The log is synthesized with pymavlink's own encoder (``simulators.logfiles.write_tlog``,
MAVLink 2): one ArduCopter flying 10 Hz positions for an hour (~36k GLOBAL_POSITION_INT)
in four sorties, with the message mix of a real telemetry stream (~11 messages per
position, ~400k messages, ~20 MB). Not timed.

- **Baseline:** pymavlink reading the file the ordinary way, ``mavutil.mavlink_connection``
  and ``recv_msg()`` until the end (parsing only, nothing stored).
- **Ours:** ``agridrone logs import FILE --coop C --drone D --quiet --json`` as a process
  (interpreter start-up included), into a fresh SQLite telemetry store and metadata
  database: hash, detect, read, translate, validate, store, summarize the four flights.
  Peak RSS from ``wait4``.
- **Memory:** the same import of a ~100 MB log (the same hour with seven times as many
  other messages): its peak RSS beside the 20 MB log's shows memory does not follow the
  file size (``--big``; the summary of a flight holds its samples, whatever the file).

Medians of ``--runs`` runs, interleaved. Goal: the one-hour log in at most 20 s.

    .venv/bin/python -m bench.logs_import [--runs 3] [--big]     (make bench-logs)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

from bench._serve import machine_line

GOAL_S: Final = 20.0
ROOT: Final = Path(__file__).resolve().parent.parent
START_MS: Final = 1_764_547_200_000  # 2025-12-01T00:00:00Z
COOP, DRONE = "htx-bench", "px-01"

_BASELINE = r"""
import sys, time
from pymavlink import mavutil
t0 = time.perf_counter()
conn = mavutil.mavlink_connection(sys.argv[1])
n = 0
while conn.recv_msg() is not None:
    n += 1
conn.close()
print(n, time.perf_counter() - t0)
"""


def synthesize(path: Path, filler: int) -> dict[str, Any]:
    """Write the bench log; what it holds."""
    from simulators.logfiles import tlog_file

    t0 = time.perf_counter()
    truth = tlog_file(path, start_ms=START_MS, seconds=3600, rate_hz=10, sorties=4, filler=filler)
    return {
        "messages": truth.messages,
        "positions": len(truth.fixes) + truth.no_fix,
        "fixes": len(truth.fixes),
        "sorties": len(truth.arms),
        "bytes": path.stat().st_size,
        "seconds": time.perf_counter() - t0,
    }


def run_child(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int, str]:
    """(wall seconds, CPU seconds, peak RSS bytes, stdout) of a process run to its end."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    out = proc.stdout.read() if proc.stdout else ""
    err = proc.stderr.read() if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[:6]} exited {proc.returncode}: {err[-2000:]}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024, out


def ours(log: Path, folder: Path) -> tuple[float, float, int, dict[str, Any]]:
    """One import into fresh stores in ``folder``."""
    from storage.drones import DroneRecord
    from storage.metadata import MetadataDB

    data = folder / f"data-{time.monotonic_ns()}"
    db = MetadataDB(data / "agridrone.db")
    db.add_drone(DroneRecord(COOP, DRONE, None, int(time.time() * 1000), "$7$bench"))
    db.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGRIDRONE_")}
    env["AGRIDRONE_DATA_DIR"] = str(data)
    argv = [sys.executable, "-m", "agridrone.cli", "logs", "import", str(log)]
    argv += ["--coop", COOP, "--drone", DRONE, "--quiet", "--json"]
    seconds, cpu, rss, out = run_child(argv, env)
    return seconds, cpu, rss, json.loads(out)


def baseline(log: Path) -> tuple[float, float, int]:
    seconds, cpu, _, out = run_child([sys.executable, "-c", _BASELINE, str(log)])
    return seconds, cpu, int(out.split()[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--big", action="store_true", help="also import a ~100 MB log")
    args = parser.parse_args()
    print(machine_line())
    print(f"load average at start: {os.getloadavg()}")
    print("wall and CPU (user + system of the timed process) seconds: the machine is shared")
    with tempfile.TemporaryDirectory(prefix="bench-logs-") as tmp:
        folder = Path(tmp)
        log = folder / "hour.tlog"
        made = synthesize(log, filler=1)
        print(
            f"log: {made['bytes'] / 1e6:.1f} MB, {made['messages']} messages, "
            f"{made['positions']} positions ({made['fixes']} with a fix), {made['sorties']} "
            f"sorties; synthesized in {made['seconds']:.1f} s"
        )
        base_s: list[float] = []
        base_cpu: list[float] = []
        our_s: list[float] = []
        our_cpu: list[float] = []
        rss: list[int] = []
        result: dict[str, Any] = {}
        for _ in range(args.runs):
            b, bc, n = baseline(log)
            base_s.append(b)
            base_cpu.append(bc)
            s, c, r, result = ours(log, folder)
            our_s.append(s)
            our_cpu.append(c)
            rss.append(r)
        assert n == made["messages"], (n, made["messages"])
        assert result["samples_stored"] == made["fixes"], result["samples_stored"]
        assert result["flights_found"] == made["sorties"], result["flights"]
        b_med, o_med = statistics.median(base_s), statistics.median(our_s)
        bc_med, oc_med = statistics.median(base_cpu), statistics.median(our_cpu)
        print(
            f"baseline pymavlink mavutil read: wall {b_med:.2f} s / CPU {bc_med:.2f} s"
            f" (medians of {[round(x, 2) for x in base_s]} / {[round(x, 2) for x in base_cpu]})"
        )
        print(
            f"ours agridrone logs import (SQLite, {result['samples_stored']} samples, "
            f"{result['flights_found']} flights summarized): wall {o_med:.2f} s / CPU"
            f" {oc_med:.2f} s (medians of {[round(x, 2) for x in our_s]} /"
            f" {[round(x, 2) for x in our_cpu]}); x{o_med / b_med:.2f} wall,"
            f" x{oc_med / bc_med:.2f} CPU of the baseline; goal <= {GOAL_S:.0f} s:"
            f" {'met' if o_med <= GOAL_S else 'NOT met'} (wall), "
            f"{'met' if oc_med <= GOAL_S else 'NOT met'} (CPU)"
        )
        print(
            f"  peak RSS {max(rss) / 2**20:.0f} MB; the import's own figure {result['seconds']} s"
        )
        if args.big:
            big = folder / "big.tlog"
            made_big = synthesize(big, filler=7)
            s, c, r, res = ours(big, folder)
            assert res["samples_stored"] == made_big["fixes"]
            print(
                f"big log: {made_big['bytes'] / 1e6:.0f} MB, {made_big['messages']} messages:"
                f" import wall {s:.1f} s / CPU {c:.1f} s, peak RSS {r / 2**20:.0f} MB (the"
                f" {made['bytes'] / 1e6:.0f} MB log: {max(rss) / 2**20:.0f} MB)"
            )
    own_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"own peak RSS (synthesis): {own_mb:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
