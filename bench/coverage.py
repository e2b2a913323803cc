"""Coverage benchmark: the ``agridrone coverage`` command as a whole process, then the engine.

Headline (issue 10): the command as users run it, a whole process from start-up to the last
line printed, on the 1-hour flight below written as CSV and as JSON Lines, beside the naive
exact method as a whole program (``bench/naive_coverage.py``: stdlib ``csv``, Shapely buffers,
``union_all``). The commands run as subprocesses, interleaved round by round (the order
rotating), so the machine's load hits all of them alike; medians and the ratio of medians are
printed, goal <= 0.4x. ``--before TREE`` adds the same command from another checkout (e.g. a
worktree of main) to the rounds, and every command's answer is checked to be the same.

In-process (engine only, samples already in arrays), on its own deterministic data (no
simulator): a 1-h flight (36,000 samples at 10 Hz, boustrophedon over a 10 ha field, RTK
noise 2 cm) and a 10-h day (10 drones x 36,000 samples over 40 rotated plots of 0.05-0.5 ha).
Times, median of 3:
- ours: ``CoverageEngine.run`` + ``result`` for every field (all metrics), and ``geometry``;
- naive exact: per pass, 16-segment Shapely buffer of the raw track, ``union_all``, pairwise
  pass intersections for overlap, then the field clip (the issue's reference method).
Prints the areas of both so the agreement is visible, plus peak memory.

    .venv/bin/python -m bench.coverage [--repeat 3] [--rounds 9] [--before TREE] [--cli-only]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from bench._serve import timed_process
from bench.naive_coverage import naive_areas
from fields.coverage import CoverageEngine, SampleArrays, sample_arrays
from fields.registry import FieldRegistry, parse_fields
from fields.synthetic import DONG_TRIEU, T0_MS, Flight, collection, feature
from storage.records import FIX_QUALITIES

SAMPLES_PER_HOUR = 36_000
NOISE = {"m": 0.02}  # RTK; 0 for the noise-free truth
RTK = FIX_QUALITIES.index("rtk_fixed")


def _arrays(
    x: Any, y: Any, ts: Any, on: Any, *, drone: int, rng: np.random.Generator
) -> dict[str, Any]:
    x = np.asarray(x) + rng.normal(0, NOISE["m"], len(x))
    y = np.asarray(y) + rng.normal(0, NOISE["m"], len(y))
    lon, lat = DONG_TRIEU.inverse(x, y)
    n = len(x)
    return {
        "ts": np.asarray(ts, dtype=np.int64),
        "lat": lat,
        "lon": lon,
        "on": np.asarray(on, dtype=bool),
        "flow": rng.uniform(5.5, 6.5, n),
        "swath": np.full(n, 6.0),
        "drone": np.full(n, drone),
    }


def _samples(parts: list[dict[str, Any]]) -> SampleArrays:
    cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    n = len(cat["ts"])
    return sample_arrays(
        cat["ts"],
        cat["lat"],
        cat["lon"],
        cat["on"],
        flow_lpm=cat["flow"],
        swath_m=cat["swath"],
        drone=cat["drone"],
        fix=np.full(n, RTK),
    )


def _pad(f: Flight, n: int) -> None:
    """Hover with the sprayer off (refill, battery swap) until the flight has n samples."""
    while len(f.ts) < n:
        f.line((f.x[-1], f.y[-1]), (f.x[-1], f.y[-1]), speed=1.0, spraying=False)
    del f.x[n:], f.y[n:], f.ts[n:], f.on[n:]


def flight_fields() -> dict[str, Any]:
    """The GeoJSON of the 1-hour flight's field: 400 m x 250 m (10 ha)."""
    return collection(feature("big", shapely.box(0, 0, 400, 250)))


def one_flight() -> tuple[FieldRegistry, SampleArrays]:
    """A 400 m x 250 m field (10 ha) flown at 5 m/s with a 6 m swath, 36,000 samples."""
    registry = parse_fields(flight_fields())
    f = Flight(swath_m=6.0).boustrophedon(-2, 402, [3.0 + 6.0 * k for k in range(42)], speed=5.0)
    _pad(f, SAMPLES_PER_HOUR)
    rng = np.random.default_rng(1)
    return registry, _samples([_arrays(f.x, f.y, f.ts, f.on, drone=0, rng=rng)])


def one_day(drones: int = 10, plots: int = 40) -> tuple[FieldRegistry, SampleArrays]:
    """40 rotated plots of 0.05-0.5 ha on an 8 x 5 grid; 10 drones fly 4 plots each."""
    rng = np.random.default_rng(2)
    features = []
    frames = []
    for k in range(plots):
        area = rng.uniform(500, 5000)
        w = float(np.sqrt(area * rng.uniform(1.5, 3.0)))
        h = area / w
        angle = rng.uniform(0, np.pi)
        cx, cy = (k % 8) * 160.0, (k // 8) * 160.0
        frames.append((cx, cy, angle, w, h))
        box = shapely.box(-w / 2, -h / 2, w / 2, h / 2)
        plot = shapely.affinity.translate(
            shapely.affinity.rotate(box, angle, use_radians=True), cx, cy
        )
        features.append(feature(f"p{k:02d}", plot, coop="htx-a" if k < 20 else "htx-b"))
    registry = parse_fields(collection(*features))
    parts = []
    for d in range(drones):
        xs: list[float] = []
        ys: list[float] = []
        ts: list[int] = []
        on: list[bool] = []
        t_ms = T0_MS + d * 3_600_000
        mine = frames[d * plots // drones : (d + 1) * plots // drones]
        while len(ts) < SAMPLES_PER_HOUR:
            for cx, cy, angle, w, h in mine:
                lines = list(np.arange(3.0, h, 6.0) - h / 2)
                f = Flight(t_ms=t_ms).boustrophedon(-w / 2, w / 2, lines, speed=5.0)
                _pad(f, len(f.ts) + 300)  # 30 s off: transit to the next plot
                c, s = np.cos(angle), np.sin(angle)
                px, py = np.asarray(f.x), np.asarray(f.y)
                xs.extend(cx + c * px - s * py)
                ys.extend(cy + s * px + c * py)
                ts.extend(f.ts)
                on.extend(f.on)
                t_ms = f.t_ms
        n = SAMPLES_PER_HOUR
        parts.append(_arrays(xs[:n], ys[:n], ts[:n], on[:n], drone=d, rng=rng))
    return registry, _samples(parts)


def ours(registry: FieldRegistry, samples: SampleArrays) -> dict[str, tuple[float, float, float]]:
    engine = CoverageEngine(registry)
    states = engine.run(samples)
    out = {}
    for fid, state in states.items():
        r = engine.result(state)
        out[fid] = (r.covered_ha * 1e4, r.overlap_ha * 1e4, r.off_target_ha * 1e4)
    return out


def ours_with_geometry(registry: FieldRegistry, samples: SampleArrays) -> int:
    engine = CoverageEngine(registry)
    states = engine.run(samples)
    return sum(len(engine.geometry(s).features()) for s in states.values())


def naive(registry: FieldRegistry, samples: SampleArrays) -> dict[str, tuple[float, float, float]]:
    """The reference: raw tracks, 16-segment buffers, union_all, pairwise intersections."""
    order = np.lexsort((samples.ts_ms, samples.drone))
    x, y = DONG_TRIEU.forward(samples.lon[order], samples.lat[order])
    targets = {f.id: DONG_TRIEU.to_plane(f.geometry) for f in registry.fields}
    return naive_areas(
        targets,
        x=x,
        y=y,
        on=samples.spraying[order],
        ts=samples.ts_ms[order],
        drone=samples.drone[order],
    )


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def peak_traced_mb(fn: Callable[[], Any]) -> float:
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def report(
    name: str,
    data: tuple[FieldRegistry, SampleArrays],
    truth: SampleArrays,
    *,
    repeat: int,
    target: float,
) -> None:
    registry, samples = data
    print(f"\n== {name}: {len(samples):,} samples, {len(registry)} fields")
    t_ours, res_ours = timed(lambda: ours(registry, samples), repeat)
    t_geom, n_feat = timed(lambda: ours_with_geometry(registry, samples), repeat)
    t_naive, res_naive = timed(lambda: naive(registry, samples), 1 if name == "day" else repeat)
    peak = peak_traced_mb(lambda: ours_with_geometry(registry, samples))
    print(f"ours, all metrics          {t_ours:7.3f} s  (target <= {target} s)")
    print(f"ours, metrics + polygons   {t_geom:7.3f} s  ({n_feat} GeoJSON features)")
    print(
        f"naive exact (16-seg)       {t_naive:7.3f} s  -> ours is {t_naive / t_ours:5.1f}x faster"
    )
    print(f"peak traced allocations    {peak:7.1f} MB (numpy + Python; GEOS not traced)")
    res_truth = naive(registry, truth)
    print("  areas (m²)   noise-free truth   ours (RTK noise)   naive (RTK noise)")
    for i, label in enumerate(("covered", "overlap", "off-target")):
        t = sum(v[i] for v in res_truth.values())
        a = sum(v[i] for v in res_ours.values())
        b = sum(v[i] for v in res_naive.values())

        def rel(v: float, t: float = t) -> str:
            return f"({(v - t) / t * 100:+6.2f} %)" if t >= 1 else "(truth 0)  "

        print(f"  {label:<11} {t:14.1f} {a:14.1f} {rel(a)} {b:12.1f} {rel(b)}")


ROOT = Path(__file__).resolve().parents[1]
NAIVE = "naive exact program, CSV"


def write_track_files(folder: Path, samples: SampleArrays) -> dict[str, Path]:
    """The flight as the files a user hands the command: GeoJSON fields, CSV and JSON Lines."""
    fields = folder / "fields.geojson"
    fields.write_text(json.dumps(flight_fields()), encoding="utf-8")
    fix = FIX_QUALITIES[RTK]
    rows = [
        (int(t), float(la), float(lo), bool(on), round(float(q), 3), float(w))
        for t, la, lo, on, q, w in zip(
            samples.ts_ms,
            samples.lat,
            samples.lon,
            samples.spraying,
            samples.flow_lpm,
            samples.swath_m,
            strict=True,
        )
    ]
    csv_path = folder / "track.csv"
    csv_path.write_text(
        "ts,lat,lon,spraying,flow_lpm,swath_m,drone,fix\n"
        + "".join(
            f"{t},{la!r},{lo!r},{'true' if on else 'false'},{q},{w:g},d1,{fix}\n"
            for t, la, lo, on, q, w in rows
        ),
        encoding="utf-8",
    )
    jsonl_path = folder / "track.jsonl"
    jsonl_path.write_text(
        "".join(
            json.dumps(
                {"ts": t, "lat": la, "lon": lo, "spraying": on, "flow_lpm": q, "swath_m": w}
                | {"drone": "d1", "fix": fix}
            )
            + "\n"
            for t, la, lo, on, q, w in rows
        ),
        encoding="utf-8",
    )
    return {"fields": fields, "csv": csv_path, "jsonl": jsonl_path}


def _run(argv: list[str], cwd: Path) -> tuple[float, str]:
    """``argv`` timed in ``cwd`` with that tree's own code first on the path."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(cwd)}
    return timed_process(argv, cwd, env)


def whole_process(rounds: int, before: Path | None) -> None:
    """The headline: ``agridrone coverage`` against the naive program, whole processes."""
    _, samples = one_flight()
    with tempfile.TemporaryDirectory(prefix="bench-coverage-") as tmp:
        files = write_track_files(Path(tmp), samples)
        f, c, j = str(files["fields"]), str(files["csv"]), str(files["jsonl"])
        cli = [sys.executable, "-m", "agridrone.cli", "coverage", "--field", f, "--track"]
        commands: dict[str, tuple[list[str], Path]] = {
            "agridrone coverage, CSV": ([*cli, c], ROOT),
            "agridrone coverage, JSON Lines": ([*cli, j], ROOT),
            NAIVE: (
                [sys.executable, "-m", "bench.naive_coverage", f, c],
                ROOT,
            ),
        }
        if before is not None:
            commands["before: agridrone coverage, CSV"] = ([*cli, c], before)
            commands["before: agridrone coverage, JSON Lines"] = ([*cli, j], before)
        names = list(commands)
        times: dict[str, list[float]] = {name: [] for name in names}
        outputs: dict[str, str] = {}
        compute_s: dict[str, list[float]] = {NAIVE: []}
        for r in range(rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                elapsed, outputs[name] = _run(*commands[name])
                times[name].append(elapsed)
                if name in compute_s:
                    last = outputs[name].splitlines()[-1]
                    compute_s[name].append(float(json.loads(last)["compute_s"]))
    print(
        f"\n== whole process: {len(samples):,} samples (1-hour flight), {rounds} rounds "
        "interleaved, order rotating"
    )
    med = {name: statistics.median(ts) for name, ts in times.items()}
    for name in names:
        ratio = med[name] / med[NAIVE]
        per_round = statistics.median(a / b for a, b in zip(times[name], times[NAIVE], strict=True))
        print(
            f"{name:<40} median {med[name]:6.3f} s  (min {min(times[name]):.3f}, "
            f"max {max(times[name]):.3f})  x{ratio:.2f} of naive "
            f"(per-round median x{per_round:.2f})"
        )
    compute = statistics.median(compute_s[NAIVE])
    strict = med["agridrone coverage, CSV"] / compute
    print(
        f"{'naive method alone (in its program)':<40} median {compute:6.3f} s  "
        f"-> agridrone coverage, CSV, whole process, is x{strict:.2f} of it"
    )
    goal = med["agridrone coverage, CSV"] / med[NAIVE]
    print(
        f"goal: agridrone coverage <= 0.4x the naive program: x{goal:.2f} -> "
        f"{'MET' if goal <= 0.4 else 'NOT MET'}"
    )
    ours_lines = outputs["agridrone coverage, CSV"]
    same, added = True, set[str]()
    for name, out in outputs.items():
        if name.startswith(("agridrone", "before")):
            ok, keys = _same_answers(ours_lines, out)
            same, added = same and ok, added | keys
    on = f" (on the keys both print; only one prints {sorted(added)})" if added else ""
    print(f"every agridrone command printed the same answer{on}: {'yes' if same else 'NO'}")
    ours = json.loads(ours_lines.splitlines()[0])
    naive_out = json.loads(outputs[NAIVE].splitlines()[0])
    print(
        f"  covered m²: ours {ours['covered_ha'] * 1e4:.1f}, naive {naive_out['covered_m2']:.1f}; "
        f"overlap m²: ours {ours['overlap_ha'] * 1e4:.1f}, naive {naive_out['overlap_m2']:.1f}"
    )


def _same_answers(a: str, b: str) -> tuple[bool, set[str]]:
    """Whether two commands printed the same JSON lines on the keys both print (a tree of
    another version may print keys this one lacks, or lack some), and the keys only one has."""
    left = [json.loads(line) for line in a.splitlines()]
    right = [json.loads(line) for line in b.splitlines()]
    if len(left) != len(right):
        return False, set()
    extra: set[str] = set()
    for x, y in zip(left, right, strict=True):
        extra |= x.keys() ^ y.keys()
        if any(x[k] != y[k] for k in x.keys() & y.keys()):
            return False, extra
    return True, extra


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3, help="in-process repeats")
    parser.add_argument("--rounds", type=int, default=9, help="whole-process rounds")
    parser.add_argument(
        "--before", type=Path, help="another checkout whose agridrone coverage joins the rounds"
    )
    parser.add_argument("--cli-only", action="store_true", help="only the whole-process headline")
    args = parser.parse_args()
    print(
        f"python {platform.python_version()}, shapely {shapely.__version__}, "
        f"numpy {np.__version__}, {os.cpu_count()} cpu"
    )
    whole_process(args.rounds, args.before)
    if args.cli_only:
        return
    t0 = time.perf_counter()
    NOISE["m"] = 0.0
    flight_truth, day_truth = one_flight()[1], one_day()[1]
    NOISE["m"] = 0.02
    flight = one_flight()
    day = one_day()
    print(f"(data built in {time.perf_counter() - t0:.1f} s)")
    report("flight", flight, flight_truth, repeat=args.repeat, target=0.5)
    report("day", day, day_truth, repeat=args.repeat, target=5.0)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS of the whole benchmark process: {rss:.0f} MB (target <= 500 MB)")


if __name__ == "__main__":
    main()
