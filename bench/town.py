"""A deterministic Đông Triều-like town of N registered plots, for the registry benchmarks.

Plots are rotated, slightly irregular quadrilaterals of 0.03-0.5 ha (most of them a few sào)
laid out in blocks: each block is rows of paddies separated by 1 m bunds, every few rows a
canal, rotated as a whole by up to ±15° and placed on a coarse grid with roads between
blocks, so no two plots overlap at all (whatever their cooperatives). About 4 % of the
larger plots have a pond cut out (a hole). Each block belongs to one cooperative (a few
cooperatives hold neighbouring stretches of the town), each plot to a household.

No-spray zones, in the registry's format (``"kind": "no_spray"``):
- canals (commune-wide): 5 m strips along the 4 m gap between two rows, so they bite 0.5 m
  into the plots on either side;
- houses (commune-wide): 8-12 m squares on the road beside a block's first row;
- schools (commune-wide): one 60 x 40 m yard beside every 25th block, its 10 m buffer
  reaching into the block's first row;
- pond buffers (cooperative-scoped): circles of 8-15 m radius centred on a corner between
  plots of the block's cooperative.

Everything is drawn in metres on one plane at the town's centre (21.08°N, 106.50°E) and
converted to WGS84 once. The same ``n`` and ``seed`` always give the same town.

    .venv/bin/python -m bench.town 10000 /tmp/town-10k.geojson [--seed 0] [--per-coop DIR]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import shapely

from fields.projection import LocalPlane
from fields.registry import MAX_FEATURES

#: The town's centre and the plane its plots are drawn in.
TOWN: Final = LocalPlane(21.08, 106.50)
MIN_PLOT_M2: Final = 300.0  # 0.03 ha
MAX_PLOT_M2: Final = 5_000.0  # 0.5 ha
BUND_M: Final = 1.0  # gap between neighbouring plots
CANAL_GAP_M: Final = 4.0  # gap between rows where a canal runs
CANAL_WIDTH_M: Final = 5.0  # drawn a little wider than its gap: it bites into the plots
CANAL_EVERY_ROWS: Final = 4
ROWS_PER_BLOCK: Final = 8
BLOCK_LENGTH_M: Final = 320.0
ROW_DEPTH_M: Final = (28.0, 55.0)
MAX_TILT_DEG: Final = 15.0
ROAD_M: Final = 30.0  # room between blocks' bounding boxes: roads, houses, schools
HOLE_SHARE: Final = 0.04
POND_EVERY_PLOTS: Final = 40
SCHOOL_EVERY_BLOCKS: Final = 25
CROPS: Final = ("rice", "rice", "rice", "rice", "vegetables", "lychee", "longan")


@dataclass(frozen=True, slots=True)
class Block:
    """One block of plots: where it is, how it is turned, and its rows (block-local metres:
    x along the rows from 0 to ``length_m``, y across them from 0 up)."""

    index: int
    coop: str
    centre: tuple[float, float]  # town-plane metres
    angle_deg: float
    length_m: float
    rows: tuple[tuple[float, float], ...]  # (y0, y1) of each row
    plot_ids: tuple[tuple[str, ...], ...]  # the plots of each row, west to east

    def to_town(self, x: Any, y: Any) -> tuple[Any, Any]:
        """Block-local metres to town-plane metres (numpy arrays or floats)."""
        depth = self.rows[-1][1]
        a = math.radians(self.angle_deg)
        u = np.asarray(x, dtype=np.float64) - self.length_m / 2
        v = np.asarray(y, dtype=np.float64) - depth / 2
        return (
            self.centre[0] + u * math.cos(a) - v * math.sin(a),
            self.centre[1] + u * math.sin(a) + v * math.cos(a),
        )

    def to_local(self, x: Any, y: Any) -> tuple[Any, Any]:
        """Town-plane metres to block-local metres (the inverse of ``to_town``)."""
        depth = self.rows[-1][1]
        a = math.radians(self.angle_deg)
        dx = np.asarray(x, dtype=np.float64) - self.centre[0]
        dy = np.asarray(y, dtype=np.float64) - self.centre[1]
        return (
            dx * math.cos(a) + dy * math.sin(a) + self.length_m / 2,
            -dx * math.sin(a) + dy * math.cos(a) + depth / 2,
        )


@dataclass(frozen=True, slots=True)
class Town:
    """The plots and zones of one generated town, as registry GeoJSON features."""

    n: int
    seed: int
    coops: tuple[str, ...]
    plots: tuple[dict[str, Any], ...]
    zones: tuple[dict[str, Any], ...]
    blocks: tuple[Block, ...]

    def features(self) -> list[dict[str, Any]]:
        """Every plot, then every zone."""
        return [*self.plots, *self.zones]

    def documents(
        self, max_features: int = MAX_FEATURES
    ) -> Iterator[tuple[str | None, dict[str, Any]]]:
        """FeatureCollections the API accepts, each at most ``max_features`` long and with
        one cooperative's plots and zones (key ``coop``) or the commune-wide zones (key
        ``None``, an operator's import)."""
        for coop in (*self.coops, None):
            mine = [f for f in self.features() if (f["properties"].get("coop") or None) == coop]
            for start in range(0, len(mine), max_features):
                yield coop, collection(mine[start : start + max_features])


def collection(features: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A GeoJSON FeatureCollection of ``features``."""
    return {"type": "FeatureCollection", "features": list(features)}


def write(path: str | Path, features: Sequence[dict[str, Any]]) -> Path:
    """Write ``features`` as one GeoJSON FeatureCollection (compact UTF-8 JSON)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(
        json.dumps(collection(features), ensure_ascii=False, separators=(",", ":")),
        encoding="utf-8",
    )
    return p


def write_per_coop(folder: str | Path, town: Town) -> list[Path]:
    """One file per cooperative (its plots and zones, ``<coop>.geojson``) and one of the
    commune-wide zones (``commune.geojson``); files may exceed one API document's limit."""
    out = Path(folder)
    paths = []
    for coop in (*town.coops, None):
        mine = [f for f in town.features() if (f["properties"].get("coop") or None) == coop]
        paths.append(write(out / f"{coop or 'commune'}.geojson", mine))
    return paths


def coop_count(n: int) -> int:
    """A few cooperatives: 3 for 1,000 plots, 5 for 10,000, 7 for 100,000."""
    return 3 + 2 * max(0, round(math.log10(max(n, 1) / 1000)))


def town(n: int, seed: int = 0, coops: int | None = None) -> Town:
    """A town of exactly ``n`` plots (and its zones), the same for the same arguments."""
    if n < 1:
        raise ValueError(f"a town needs at least one plot, asked for {n}")
    rng = np.random.default_rng(seed)
    coop_ids = tuple(f"htx-{k + 1:02d}" for k in range(coops or coop_count(n)))
    builder = _Builder(rng, n, coop_ids)
    builder.build()
    return Town(
        n=n,
        seed=seed,
        coops=coop_ids,
        plots=tuple(builder.plots),
        zones=tuple(builder.zones),
        blocks=tuple(builder.blocks),
    )


class _Builder:
    """Draws blocks until ``n`` plots exist; geometry converted to WGS84 in one batch."""

    def __init__(self, rng: np.random.Generator, n: int, coops: tuple[str, ...]) -> None:
        self.rng = rng
        self.n = n
        self.coops = coops
        self.blocks: list[Block] = []
        self.plots: list[dict[str, Any]] = []
        self.zones: list[dict[str, Any]] = []
        self._plot_rings: list[list[np.ndarray]] = []  # town-plane metres, per plot
        self._plot_props: list[dict[str, Any]] = []
        self._zone_rings: list[list[np.ndarray]] = []
        self._zone_props: list[dict[str, Any]] = []

    def build(self) -> None:
        blocks_needed = self._estimate_blocks()
        side = max(1, math.ceil(math.sqrt(blocks_needed)))
        pitch = self._pitch()
        index = 0
        while len(self._plot_rings) < self.n:
            gx, gy = index % side, index // side
            # Cooperatives hold neighbouring stretches of columns, as villages do.
            coop = self.coops[min(len(self.coops) - 1, gx * len(self.coops) // side)]
            centre = ((gx - (side - 1) / 2) * pitch, (gy - (side - 1) / 2) * pitch)
            self._block(index, coop, centre)
            index += 1
        self._finish()

    def _estimate_blocks(self) -> int:
        mean_m2 = float(np.mean(self._areas(2_000)))
        mean_depth = sum(ROW_DEPTH_M) / 2
        per_row = BLOCK_LENGTH_M / (mean_m2 / mean_depth + BUND_M)
        return math.ceil(self.n / (per_row * ROWS_PER_BLOCK) * 1.05)

    @staticmethod
    def _pitch() -> float:
        depth = ROWS_PER_BLOCK * (ROW_DEPTH_M[1] + CANAL_GAP_M)
        a = math.radians(MAX_TILT_DEG)
        width = BLOCK_LENGTH_M * math.cos(a) + depth * math.sin(a)
        height = BLOCK_LENGTH_M * math.sin(a) + depth * math.cos(a)
        return max(width, height) + ROAD_M

    def _areas(self, count: int) -> np.ndarray:
        """Plot areas: log-normal round 2.5 sào (900 m²), kept within 0.03-0.5 ha."""
        raw = self.rng.lognormal(mean=math.log(900.0), sigma=0.7, size=count)
        return np.clip(raw, MIN_PLOT_M2 * 1.15, MAX_PLOT_M2 * 0.97)

    def _block(self, index: int, coop: str, centre: tuple[float, float]) -> None:
        rng = self.rng
        rows: list[tuple[float, float]] = []
        ids: list[tuple[str, ...]] = []
        y = 0.0
        for r in range(ROWS_PER_BLOCK):
            if r:
                y += CANAL_GAP_M if r % CANAL_EVERY_ROWS == 0 else BUND_M
            depth = float(rng.uniform(*ROW_DEPTH_M))
            rows.append((y, y + depth))
            y += depth
        block = Block(
            index=index,
            coop=coop,
            centre=centre,
            angle_deg=float(rng.uniform(-MAX_TILT_DEG, MAX_TILT_DEG)),
            length_m=BLOCK_LENGTH_M,
            rows=tuple(rows),
            plot_ids=(),
        )
        households = [f"hh-{index:05d}-{k:02d}" for k in range(int(rng.integers(8, 20)))]
        corners: list[tuple[float, float]] = []
        for y0, y1 in rows:
            row_ids: list[str] = []
            x = 0.0
            for area in self._areas(64):
                if len(self._plot_rings) >= self.n:
                    break
                width = float(area) / (y1 - y0)
                if x + width > BLOCK_LENGTH_M:
                    break
                pid = f"plot-{len(self._plot_rings) + 1:06d}"
                row_ids.append(pid)
                self._plot(block, pid, (x, y0, x + width, y1), coop, households)
                if x > 0:
                    corners.append((x - BUND_M / 2, y0))
                x += width + BUND_M
            ids.append(tuple(row_ids))
        block = Block(
            index=block.index,
            coop=coop,
            centre=centre,
            angle_deg=block.angle_deg,
            length_m=BLOCK_LENGTH_M,
            rows=block.rows,
            plot_ids=tuple(ids),
        )
        self.blocks.append(block)
        self._block_zones(block, corners)

    def _plot(
        self,
        block: Block,
        pid: str,
        box: tuple[float, float, float, float],
        coop: str,
        households: list[str],
    ) -> None:
        rng = self.rng
        x0, y0, x1, y1 = box
        # Rectangular-ish: every corner pulled inward by up to 0.3 m (stays convex, in its cell).
        jitter = rng.uniform(0.0, 0.3, size=(4, 2))
        xs = np.array([x0 + jitter[0, 0], x1 - jitter[1, 0], x1 - jitter[2, 0], x0 + jitter[3, 0]])
        ys = np.array([y0 + jitter[0, 1], y0 + jitter[1, 1], y1 - jitter[2, 1], y1 - jitter[3, 1]])
        rings = [np.column_stack(block.to_town(np.append(xs, xs[0]), np.append(ys, ys[0])))]
        area = (x1 - x0) * (y1 - y0)
        if area > 1_000.0 and rng.random() < HOLE_SHARE:
            side = math.sqrt(area * float(rng.uniform(0.04, 0.1)))
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            side = min(side, (x1 - x0) / 2, (y1 - y0) / 2)
            hx = np.array(
                [cx - side / 2, cx - side / 2, cx + side / 2, cx + side / 2, cx - side / 2]
            )
            hy = np.array(
                [cy - side / 2, cy + side / 2, cy + side / 2, cy - side / 2, cy - side / 2]
            )
            rings.append(np.column_stack(block.to_town(hx, hy)))
        self._plot_rings.append(rings)
        self._plot_props.append(
            {
                "id": pid,
                "name": f"Thửa {pid[5:]}",
                "owner": households[int(rng.integers(len(households)))],
                "coop": coop,
                "crop": CROPS[int(rng.integers(len(CROPS)))],
            }
        )

    def _block_zones(self, block: Block, corners: list[tuple[float, float]]) -> None:
        rng = self.rng
        rows = block.rows
        for r in range(CANAL_EVERY_ROWS, len(rows), CANAL_EVERY_ROWS):
            mid = (rows[r - 1][1] + rows[r][0]) / 2
            half = CANAL_WIDTH_M / 2
            self._zone(
                block,
                _box(-5.0, mid - half, block.length_m + 5.0, mid + half),
                {"name": f"Mương {block.index}-{r}", "landuse": "canal"},
            )
        for k in range(int(rng.integers(1, 4))):
            side = float(rng.uniform(8.0, 12.0))
            x = float(rng.uniform(0.0, block.length_m - side))
            self._zone(
                block,
                _box(x, -2.0 - side, x + side, -2.0),
                {"name": f"Nhà {block.index}-{k}", "landuse": "house"},
            )
        if block.index % SCHOOL_EVERY_BLOCKS == 0:
            # The yard is 60 x 40 m, 12 m off the block; its 10 m buffer reaches 2 m in.
            self._zone(
                block,
                shapely.box(20.0, -52.0, 80.0, -12.0).buffer(10.0),
                {"name": f"Trường {block.index}", "landuse": "school"},
            )
        plots_here = sum(len(ids) for ids in block.plot_ids)
        for _ in range(max(0, round(plots_here / POND_EVERY_PLOTS))):
            if not corners:
                break
            cx, cy = corners[int(rng.integers(len(corners)))]
            self._zone(
                block,
                shapely.Point(cx, cy).buffer(float(rng.uniform(8.0, 15.0)), quad_segs=4),
                {"name": f"Ao {block.index}", "landuse": "pond", "coop": block.coop},
            )

    def _zone(self, block: Block, shape_m: Any, props: dict[str, Any]) -> None:
        ring = np.asarray(shape_m.exterior.coords)
        self._zone_rings.append([np.column_stack(block.to_town(ring[:, 0], ring[:, 1]))])
        zid = f"ns-{len(self._zone_rings):06d}"
        scope = "coop" if props.get("coop") else "commune"
        self._zone_props.append({"id": zid, "kind": "no_spray", "scope": scope, **props})

    def _finish(self) -> None:
        """Every ring to WGS84 in one pyproj call, then the GeoJSON features."""
        all_rings = [r for rings in (*self._plot_rings, *self._zone_rings) for r in rings]
        xy = np.concatenate(all_rings)
        lon, lat = TOWN.inverse(xy[:, 0], xy[:, 1])
        lonlat = np.round(np.column_stack([lon, lat]), 8).tolist()
        at = 0

        def take(rings: list[np.ndarray]) -> list[list[list[float]]]:
            nonlocal at
            out = []
            for ring in rings:
                out.append(lonlat[at : at + len(ring)])
                at += len(ring)
            return out

        for rings, props in zip(self._plot_rings, self._plot_props, strict=True):
            self.plots.append(_feature(props, take(rings)))
        for rings, props in zip(self._zone_rings, self._zone_props, strict=True):
            self.zones.append(_feature(props, take(rings)))


def _box(x0: float, y0: float, x1: float, y1: float) -> Any:
    return shapely.box(x0, y0, x1, y1)


def _feature(props: dict[str, Any], rings: list[list[list[float]]]) -> dict[str, Any]:
    # GeoJSON (RFC 7946) outer rings run anticlockwise, holes clockwise.
    oriented = [ring if _ccw(ring) == (k == 0) else ring[::-1] for k, ring in enumerate(rings)]
    return {
        "type": "Feature",
        "properties": props,
        "geometry": {"type": "Polygon", "coordinates": oriented},
    }


def _ccw(ring: list[list[float]]) -> bool:
    area2 = sum(a[0] * b[1] - b[0] * a[1] for a, b in itertools.pairwise(ring))
    return area2 > 0


def main(argv: Sequence[str] | None = None) -> None:
    """Write a town as one GeoJSON file (and optionally one file per cooperative)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("n", type=int, help="number of plots")
    parser.add_argument("out", type=Path, help="GeoJSON file to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-coop", type=Path, help="also write one file per cooperative here")
    args = parser.parse_args(argv)
    t = town(args.n, args.seed)
    write(args.out, t.features())
    if args.per_coop:
        write_per_coop(args.per_coop, t)
    print(
        f"{args.out}: {len(t.plots)} plots, {len(t.zones)} no-spray zones, "
        f"{len(t.blocks)} blocks, cooperatives {', '.join(t.coops)}"
    )


if __name__ == "__main__":
    main()
