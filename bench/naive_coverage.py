"""The naive exact coverage method, as a whole program: the baseline of ``bench.coverage``.

What a careful script without our engine does: read the track with the stdlib ``csv`` module,
project to metres (the same transverse Mercator as ours), per spraying pass a 16-segment Shapely
buffer of the raw track, ``union_all``, pairwise pass intersections for overlap, then the field
clip. Prints one JSON object per field: covered, overlap and off-target area in m²; then
``{"compute_s": ...}``, the time of the method alone (after start-up and reading).

    .venv/bin/python -m bench.naive_coverage FIELDS.geojson TRACK.csv
"""

from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry import shape

from fields.projection import LocalPlane

#: Half the 6 m swath of the benchmark's flights.
HALF_SWATH_M = 3.0


def naive_areas(
    targets: dict[str, Any], *, x: Any, y: Any, on: Any, ts: Any, drone: Any
) -> dict[str, tuple[float, float, float]]:
    """(covered, overlap, off-target) m² per field; ``targets`` are field polygons in metres.

    Samples are in drone then time order; a pass is a run of spraying samples at most 2 s and
    20 m apart.
    """
    step = np.hypot(np.diff(x), np.diff(y))
    joined = on[1:] & on[:-1] & (drone[1:] == drone[:-1]) & (np.diff(ts) <= 2000) & (step <= 20)
    runs = []
    i = 0
    n = len(x)
    while i < n:
        if not on[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and joined[j]:
            j += 1
        if j > i:
            line = shapely.LineString(np.column_stack([x[i : j + 1], y[i : j + 1]]))
            runs.append(
                line.buffer(HALF_SWATH_M, quad_segs=16, cap_style="flat", join_style="round")
            )
        i = j + 1
    out = {}
    for fid, target in targets.items():
        mine = [r for r in runs if r.intersects(target) and not r.touches(target)]
        union = shapely.union_all(mine)
        inside = [r.intersection(target) for r in mine]
        pairs = [
            inside[a].intersection(inside[b])
            for a in range(len(inside))
            for b in range(a + 1, len(inside))
            if inside[a].intersects(inside[b])
        ]
        overlap = shapely.union_all(pairs) if pairs else shapely.Polygon()
        out[fid] = (
            union.intersection(target).area,
            overlap.area,
            union.difference(target).area,
        )
    return out


def main(argv: list[str]) -> int:
    """Read the files, compute, print one JSON line per field."""
    fields_path, track_path = argv
    with Path(fields_path).open(encoding="utf-8") as f:
        doc = json.load(f)
    with Path(track_path).open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    lon = np.array([float(r["lon"]) for r in rows])
    lat = np.array([float(r["lat"]) for r in rows])
    ts = np.array([int(r["ts"]) for r in rows], dtype=np.int64)
    on = np.array([r["spraying"].strip().lower() in ("true", "1") for r in rows])
    names: dict[str, int] = {}
    drone = np.array([names.setdefault(r.get("drone") or "", len(names)) for r in rows])
    order = np.lexsort((ts, drone))
    plane = LocalPlane.around(float(np.median(lon)), float(np.median(lat)))
    x, y = plane.forward(lon[order], lat[order])
    props = [feat.get("properties") or {} for feat in doc["features"]]
    targets = {
        str(p["id"]): plane.to_plane(shape(feat["geometry"]))
        for feat, p in zip(doc["features"], props, strict=True)
        if p.get("kind", "field") == "field"
    }
    t0 = time.perf_counter()
    areas = naive_areas(targets, x=x, y=y, on=on[order], ts=ts[order], drone=drone[order])
    compute_s = time.perf_counter() - t0
    for fid, (covered, overlap, off) in areas.items():
        print(
            json.dumps(
                {
                    "field_id": fid,
                    "covered_m2": covered,
                    "overlap_m2": overlap,
                    "off_target_m2": off,
                }
            )
        )
    print(json.dumps({"compute_s": compute_s}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
