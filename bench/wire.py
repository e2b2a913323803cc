"""Decode cost of wire-format v1 messages against bare JSON parsing of the same bytes.

Run: ``.venv/bin/python -m bench.wire``. Prints µs per message (median of several
repeats) for ``json.loads``, ``orjson.loads`` and ``decode_message``, so the cost of
validation and record building is the difference in the same run.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import sys
import time
from collections.abc import Callable

import orjson

from ingest.wire import decode_message, encode_sample, encode_samples, telemetry_topic
from storage.records import Sample

REPEATS = 7
TARGET_S = 0.25  # wall time of one repeat
NOW = 1_795_869_000_000
TOPIC = telemetry_topic("htx-dongtrieu", "d-07")


def flight(n: int) -> list[Sample]:
    """``n`` consecutive 10 Hz samples with every key set, as a spraying drone sends them."""
    return [
        Sample(
            "htx-dongtrieu",
            "d-07",
            NOW - 60_000 + i * 100,
            21.0812345 + i * 1e-6,
            106.5212345 + i * 1e-6,
            spraying=True,
            seq=1000 + i,
            alt_m=2.5,
            speed_mps=5.1,
            heading_deg=87.3,
            battery_pct=63.0,
            flow_lpm=1.8,
            tank_l=12.25,
            swath_m=6.5,
            fix="rtk_fixed",
        )
        for i in range(n)
    ]


def per_call_us(fn: Callable[[], object]) -> float:
    """Median µs per call over REPEATS timed loops, each about TARGET_S long."""
    loops = 1
    while True:
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        if time.perf_counter() - start > TARGET_S / 5:
            break
        loops *= 2
    loops = max(1, int(loops * TARGET_S / (time.perf_counter() - start)))
    runs = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        runs.append((time.perf_counter() - start) / loops * 1e6)
    return statistics.median(runs)


def main() -> None:
    single = encode_sample(flight(1)[0])
    batch = encode_samples(flight(10))
    rfc = single.replace(f'"ts":{NOW - 60_000}'.encode(), b'"ts":"2026-11-28T19:29:00.000+07:00"')
    bad = single.replace(b'"lat":21.0812345', b'"lat":91.0812345')
    cases = [
        ("single sample", single, 1),
        ("10-sample batch", batch, 10),
        ("single, RFC 3339 ts", rfc, 1),
        ("single, rejected (lat)", bad, 1),
    ]
    for name, payload, n in cases:
        d = decode_message(TOPIC, payload, NOW)
        assert len(d.samples) + len(d.rejections) == n, (name, d.rejections)
    print(f"python {sys.version.split()[0]}, orjson {orjson.__version__}; µs per message, median")
    print(f"of {REPEATS} repeats; 'validation' = decode_message - orjson.loads")
    header = (
        f"{'message':24} {'bytes':>5} {'json.loads':>10} {'orjson':>8} {'decode':>8} "
        f"{'decode/orjson':>13} {'validation':>10} {'µs/sample':>9}"
    )
    print(header)
    for name, payload, n in cases:
        t_json = per_call_us(lambda p=payload: json.loads(p))  # type: ignore[misc]
        t_orjson = per_call_us(lambda p=payload: orjson.loads(p))  # type: ignore[misc]
        t_decode = per_call_us(lambda p=payload: decode_message(TOPIC, p, NOW))  # type: ignore[misc]
        print(
            f"{name:24} {len(payload):5d} {t_json:10.2f} {t_orjson:8.2f} {t_decode:8.2f} "
            f"{t_decode / t_orjson:12.1f}x {t_decode - t_orjson:10.2f} {t_decode / n:9.2f}"
        )
    values = dataclasses.astuple(flight(1)[0])
    t_record = per_call_us(lambda: Sample(*values))
    print(f"of which building one frozen storage.records.Sample alone: {t_record:.2f} µs")


if __name__ == "__main__":
    main()
