"""InfluxDB alone: how fast influxd stores the ingest bench's samples when nothing else runs.

The ceiling of ``bench.ingest`` with ``--store influx``: the same 200,000 samples (20
drones, 10 Hz, every field), encoded beforehand into the worker's ``/write`` bodies (5,000
lines each), POSTed by one thread, then by two threads at once (two writes in flight). Each
round writes into a fresh database of one influxd started for the run.

    .venv/bin/python -m bench.influx_write [--messages 200000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.ingest import make_messages
from ingest.wire import decode_message
from storage.influx import InfluxStore
from storage.records import Sample
from tests.servers import running_influxd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=200_000, help="samples")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    samples: list[Sample] = []
    for topic, payload in make_messages("bench", args.messages, 10):
        samples += decode_message(topic, payload, 1_764_400_000_000).samples
    rates: dict[int, list[float]] = {1: [], 2: []}
    with (
        tempfile.TemporaryDirectory(prefix="agridrone-bench-") as tmp,
        running_influxd(Path(tmp) / "influxd") as influxd,
    ):
        for round_no in range(args.rounds):
            for in_flight in (1, 2) if round_no % 2 == 0 else (2, 1):
                with InfluxStore.open(influxd.url, f"bench_{round_no}_{in_flight}") as store:
                    bodies = [[body] for body in store.encode_samples(samples)]
                    start = time.perf_counter()
                    with ThreadPoolExecutor(in_flight) as pool:
                        list(pool.map(store.write_encoded, bodies))
                    rate = len(samples) / (time.perf_counter() - start)
                rates[in_flight].append(rate)
                print(
                    f"round {round_no + 1}: {in_flight} write(s) in flight "
                    f"{rate:>10,.0f} samples/s ({len(bodies)} bodies)",
                    flush=True,
                )
    for in_flight, values in rates.items():
        print(f"median, {in_flight} write(s) in flight: {statistics.median(values):,.0f} samples/s")


if __name__ == "__main__":
    main()
