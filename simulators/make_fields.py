"""Generate ``simulators/data/dong_trieu_fields.geojson``: plausible plots near Đông Triều.

Deterministic (fixed seed): re-running it rewrites the same file. Rice paddies lie in rows
on both sides of irrigation canals, long and narrow, mostly 0.05-0.3 ha with a few
consolidated plots near 1 ha; lychee/longan orchards sit in blocks on the low hills; a few
plots hold a grave, a pond or a house as a hole; canals and fish ponds are ``no_spray``.
Owners (farmer ids) belong to one of two cooperatives. Run:
``.venv/bin/python -m simulators.make_fields``.
"""

from __future__ import annotations

import math
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import shapely
from shapely.geometry import Point, Polygon, box, mapping
from shapely.geometry.polygon import orient

from simulators.geo import DEFAULT_FIELDS_PATH, LocalFrame

SEED = 20251128
ORIGIN = (21.085, 106.525)  # lat, lon: the middle of the district's rice plain
COORD_DECIMALS = 7  # ~1 cm

COOPS = {
    "htx-hong-phong": "hp",
    "htx-yen-tho": "yt",
}
FARMERS = [
    "ông Hùng", "bà Lan", "ông Thắng", "bà Hoa", "ông Dũng", "bà Mai", "ông Tuấn",
    "bà Hằng", "ông Bình", "bà Nga", "ông Sơn", "bà Thu", "ông Long", "bà Yến",
    "ông Quang", "bà Liên", "ông Khải", "bà Phượng",
]  # fmt: skip


@dataclass
class Plot:
    """One generated feature in local metres, with its properties."""

    geom: Polygon
    props: dict[str, Any]


@dataclass
class Cluster:
    """A group of plots sharing a canal or a hillside, owned by one cooperative."""

    coop: str
    place: str
    centre: tuple[float, float]
    angle_deg: float
    plots: list[Plot] = field(default_factory=list)


def _rotate(points: list[tuple[float, float]], cluster: Cluster) -> Polygon:
    """Cluster-frame (u along the canal, v across it) points placed in the district frame."""
    a = math.radians(cluster.angle_deg)
    cx, cy = cluster.centre
    out = [
        (cx + u * math.cos(a) - v * math.sin(a), cy + u * math.sin(a) + v * math.cos(a))
        for u, v in points
    ]
    return Polygon(out)


def _hole(rng: random.Random, plot: Polygon) -> Polygon | None:
    """A grave, pond or house well inside ``plot``, or None if it is too small to hold one."""
    inner = plot.buffer(-6.0)
    if inner.is_empty or inner.area < 60:
        return None
    c = inner.representative_point()
    kind = rng.choice(["grave", "pond", "house"])
    if kind == "pond":
        return Polygon(Point(c.x, c.y).buffer(rng.uniform(4, 6), quad_segs=4).exterior)
    w, h = (3.0, 4.0) if kind == "grave" else (8.0, 10.0)
    hole = box(c.x - w / 2, c.y - h / 2, c.x + w / 2, c.y + h / 2)
    return hole if inner.contains(hole.centroid) and plot.buffer(-2).contains(hole) else None


def rice_cluster(
    rng: random.Random, cluster: Cluster, per_side: int, zones: list[Plot], big: int = 0
) -> None:
    """Paddies in two rows along a canal (the canal itself is a no-spray zone)."""
    canal_half, bund = 2.0, 0.6
    length = 0.0
    for side in (1, -1):
        u = 0.0
        near_v = canal_half + bund
        slope_left = 0.0
        for i in range(per_side):
            large = i < big and side == 1
            width = rng.uniform(60, 85) if large else rng.uniform(14, 34)
            depth = rng.uniform(110, 140) if large else rng.uniform(38, 80)
            slope_right = rng.uniform(-0.05, 0.05)  # shared with the next plot: bunds parallel
            far_l, far_r = depth + rng.uniform(-3, 3), depth + rng.uniform(-3, 3)
            pts = [
                (u, near_v),
                (u + width, near_v),
                (u + width + slope_right * (far_r - near_v), far_r),
                (u + slope_left * (far_l - near_v), far_l),
            ]
            pts = [(pu, side * pv) for pu, pv in pts]
            cluster.plots.append(Plot(_rotate(pts, cluster), {"crop": "rice"}))
            u += width + bund
            slope_left = slope_right
        length = max(length, u)
    canal = [(-3.0, -canal_half), (length + 3.0, -canal_half)]
    canal += [(length + 3.0, canal_half), (-3.0, canal_half)]
    zones.append(
        Plot(
            _rotate(canal, cluster),
            {"kind": "no_spray", "name": f"Kênh tưới {cluster.place}", "zone": "canal"},
        )
    )


def orchard_cluster(rng: random.Random, cluster: Cluster, rows: int, cols: int) -> None:
    """Lychee and longan blocks on a hillside, separated by paths."""
    path = 3.0
    v = 0.0
    for _ in range(rows):
        height = rng.uniform(50, 95)
        u = 0.0
        for _ in range(cols):
            width = rng.uniform(55, 100)
            pts = [(u, v), (u + width, v), (u + width, v + height), (u, v + height)]
            crop = rng.choice(["lychee", "lychee", "longan"])
            cluster.plots.append(Plot(_rotate(pts, cluster), {"crop": crop}))
            u += width + path
        v += height + path


def generate() -> dict[str, Any]:
    """The fields FeatureCollection (WGS84, RFC 7946 orientation)."""
    rng = random.Random(SEED)
    zones: list[Plot] = []
    clusters = [
        Cluster("htx-hong-phong", "Đồng Cửa", (-4000, -1500), 20),
        Cluster("htx-hong-phong", "Đồng Trên", (-2500, 500), 100),
        Cluster("htx-yen-tho", "Đồng Bãi", (3500, -2000), -15),
        Cluster("htx-yen-tho", "Đồng Sau", (5000, 1000), 75),
        Cluster("htx-hong-phong", "Đồi Vải", (-1000, 2800), 10),
        Cluster("htx-yen-tho", "Đồi Nhãn", (2000, 2500), -25),
    ]
    rice_cluster(rng, clusters[0], 6, zones, big=1)
    rice_cluster(rng, clusters[1], 5, zones)
    rice_cluster(rng, clusters[2], 6, zones, big=2)
    rice_cluster(rng, clusters[3], 5, zones)
    orchard_cluster(rng, clusters[4], 2, 2)
    orchard_cluster(rng, clusters[5], 2, 3)
    for crop_plot in clusters[3].plots[-3:]:
        crop_plot.props["crop"] = "vegetables"
    pond_corners = [(-70, 30), (-50, -100), (-60, -50), (-75, 20)]
    for cluster, (du, dv) in zip(clusters[:4], pond_corners, strict=True):
        pond = _rotate([(du, dv), (du + 35, dv), (du + 35, dv + 28), (du, dv + 28)], cluster)
        zones.append(
            Plot(pond, {"kind": "no_spray", "name": f"Ao cá {cluster.place}", "zone": "fish_pond"})
        )

    features: list[dict[str, Any]] = []
    frame = LocalFrame(*ORIGIN)
    counters = dict.fromkeys(COOPS, 0)
    holes_left = 6
    for cluster in clusters:
        prefix = COOPS[cluster.coop]
        farmers = rng.sample(FARMERS, 8)
        for plot in cluster.plots:
            geom = plot.geom
            if holes_left and geom.area > 1500 and rng.random() < 0.45:
                hole = _hole(rng, geom)
                if hole is not None:
                    geom = Polygon(geom.exterior, [hole.exterior])
                    holes_left -= 1
            counters[cluster.coop] += 1
            n = counters[cluster.coop]
            farmer_index = rng.randrange(len(farmers))
            farmer = farmers[farmer_index]
            kind = "Ruộng" if plot.props["crop"] in ("rice", "vegetables") else "Vườn"
            crop_word = {"lychee": " vải", "longan": " nhãn"}.get(plot.props["crop"], "")
            props = {
                "id": f"dt-{prefix}-{n:03d}",
                "name": f"{kind}{crop_word} {farmer} — Xứ {cluster.place}",
                "owner": f"nd-{prefix}-{FARMERS.index(farmer):02d}",
                "coop": cluster.coop,
                "crop": plot.props["crop"],
            }
            features.append(_feature(frame, geom, props))
    for i, zone in enumerate(zones, 1):
        features.append(_feature(frame, zone.geom, {"id": f"dt-ns-{i:02d}", **zone.props}))
    return {"type": "FeatureCollection", "features": features}


def _feature(frame: LocalFrame, geom: Polygon, props: dict[str, Any]) -> dict[str, Any]:
    wgs = frame.polygon_to_wgs84(geom)
    rounded = shapely.set_precision(wgs, 10**-COORD_DECIMALS)
    oriented = orient(rounded, sign=1.0)
    if not oriented.is_valid:
        raise ValueError(f"{props['id']}: generated an invalid polygon")
    gj = mapping(oriented)
    coords = [
        [[round(c, COORD_DECIMALS) for c in xy] for xy in np.asarray(ring).tolist()]
        for ring in gj["coordinates"]
    ]
    return {
        "type": "Feature",
        "properties": props,
        "geometry": {"type": "Polygon", "coordinates": coords},
    }


def dumps(collection: dict[str, Any]) -> bytes:
    """One feature per line: small diffs, still plain GeoJSON."""
    lines = [orjson.dumps(f) for f in collection["features"]]
    return b'{"type":"FeatureCollection","features":[\n' + b",\n".join(lines) + b"\n]}\n"


def main(argv: list[str]) -> int:
    """Write the file (to argv[0] if given) and print a one-line summary."""
    target = Path(argv[0]) if argv else DEFAULT_FIELDS_PATH
    collection = generate()
    target.write_bytes(dumps(collection))
    plots = [f for f in collection["features"] if f["properties"].get("kind") != "no_spray"]
    sys.stdout.write(
        f"wrote {target}: {len(plots)} plots, "
        f"{len(collection['features']) - len(plots)} no-spray zones\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
