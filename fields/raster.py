"""Scanline rasterisation onto a per-field grid: cost grows with outline length, not area.

A cell belongs to a shape when its centre does (half-open on every edge, so shapes that share
an edge never both claim a cell). Shapes become runs of cells per row; runs are summed with
a difference array, so a 10 ha field at 0.5 m costs a few milliseconds per thousand outlines.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Grid:
    """A regular grid of ``ny`` rows by ``nx`` columns of square cells, origin bottom-left."""

    x0: float
    y0: float
    cell: float
    nx: int
    ny: int

    @classmethod
    def covering(cls, bounds: tuple[float, float, float, float], cell: float) -> Grid:
        """The smallest grid of ``cell``-metre cells holding ``bounds`` (minx, miny, maxx, maxy)."""
        minx, miny, maxx, maxy = bounds
        nx = max(1, math.ceil((maxx - minx) / cell))
        ny = max(1, math.ceil((maxy - miny) / cell))
        return cls(minx, miny, cell, nx, ny)

    @property
    def cell_area(self) -> float:
        """Area of one cell in square metres."""
        return self.cell * self.cell

    def zeros(self) -> FloatArray:
        """An all-zero float raster of this grid's shape (rows, columns)."""
        return np.zeros((self.ny, self.nx), dtype=np.float64)


def _first_centre_at_or_after(v: FloatArray, origin: float, cell: float) -> IntArray:
    """Index of the first cell whose centre ``origin + (i + 0.5) * cell`` is ``>= v``."""
    return np.ceil((v - origin) / cell - 0.5).astype(np.int64)


def _accumulate_runs(
    grid: Grid, rows: IntArray, xl: FloatArray, xr: FloatArray, weights: list[FloatArray]
) -> list[FloatArray]:
    """Rasters holding, per weight array, the sum of weights of the runs covering each cell."""
    c0 = np.clip(_first_centre_at_or_after(xl, grid.x0, grid.cell), 0, grid.nx)
    c1 = np.clip(_first_centre_at_or_after(xr, grid.x0, grid.cell), 0, grid.nx)
    ok = (c1 > c0) & (rows >= 0) & (rows < grid.ny)
    rows, c0, c1 = rows[ok], c0[ok], c1[ok]
    width = grid.nx + 1
    size = grid.ny * width
    out = []
    for w in weights:
        wk = w[ok]
        diff = np.bincount(rows * width + c0, weights=wk, minlength=size)
        diff -= np.bincount(rows * width + c1, weights=wk, minlength=size)
        out.append(
            np.asarray(
                np.cumsum(diff.reshape(grid.ny, width), axis=1)[:, : grid.nx], dtype=np.float64
            )
        )
    return out


def paint_quads(grid: Grid, quads: FloatArray, weights: list[FloatArray]) -> list[FloatArray]:
    """Sum ``weights[k][i]`` into every cell whose centre lies in quad ``i`` (n, 4, 2).

    Quads may be non-convex or folded (bow-ties); crossings are paired even-odd per row.
    """
    if len(quads) == 0:
        return [grid.zeros() for _ in weights]
    ys = quads[:, :, 1]
    r_lo = np.clip(_first_centre_at_or_after(ys.min(axis=1), grid.y0, grid.cell), 0, grid.ny)
    r_hi = np.clip(_first_centre_at_or_after(ys.max(axis=1), grid.y0, grid.cell), 0, grid.ny)
    counts = np.maximum(r_hi - r_lo, 0)
    total = int(counts.sum())
    if total == 0:
        return [grid.zeros() for _ in weights]
    qi = np.repeat(np.arange(len(quads)), counts)
    offsets = np.cumsum(counts) - counts
    rows = r_lo[qi] + (np.arange(total) - offsets[qi])
    yc = grid.y0 + (rows + 0.5) * grid.cell
    xs = np.full((total, 4), np.nan)
    for k in range(4):
        a = quads[qi, k]
        b = quads[qi, (k + 1) % 4]
        crosses = ((a[:, 1] <= yc) & (yc < b[:, 1])) | ((b[:, 1] <= yc) & (yc < a[:, 1]))
        with np.errstate(divide="ignore", invalid="ignore"):
            x = a[:, 0] + (yc - a[:, 1]) * (b[:, 0] - a[:, 0]) / (b[:, 1] - a[:, 1])
        xs[:, k] = np.where(crosses, x, np.nan)
    xs.sort(axis=1)
    n_cross = np.count_nonzero(~np.isnan(xs), axis=1)
    first = n_cross >= 2
    second = n_cross == 4
    rows_all = np.concatenate([rows[first], rows[second]])
    xl = np.concatenate([xs[first, 0], xs[second, 2]])
    xr = np.concatenate([xs[first, 1], xs[second, 3]])
    qsel = np.concatenate([qi[first], qi[second]])
    return _accumulate_runs(grid, rows_all, xl, xr, [w[qsel] for w in weights])


def polygon_mask(grid: Grid, geometry: Any) -> BoolArray:
    """Cells whose centre lies inside a (Multi)Polygon with holes (even-odd rule)."""
    if geometry is None or shapely.is_empty(geometry):
        return np.zeros((grid.ny, grid.nx), dtype=bool)
    rings = shapely.get_rings(shapely.get_parts(geometry))
    coords, ring_index = shapely.get_coordinates(rings, return_index=True)
    same_ring = ring_index[1:] == ring_index[:-1]
    a = coords[:-1][same_ring]
    b = coords[1:][same_ring]
    ylo = np.minimum(a[:, 1], b[:, 1])
    yhi = np.maximum(a[:, 1], b[:, 1])
    r_lo = np.clip(_first_centre_at_or_after(ylo, grid.y0, grid.cell), 0, grid.ny)
    r_hi = np.clip(_first_centre_at_or_after(yhi, grid.y0, grid.cell), 0, grid.ny)
    counts = np.maximum(r_hi - r_lo, 0)
    total = int(counts.sum())
    if total == 0:
        return np.zeros((grid.ny, grid.nx), dtype=bool)
    ei = np.repeat(np.arange(len(a)), counts)
    offsets = np.cumsum(counts) - counts
    rows = r_lo[ei] + (np.arange(total) - offsets[ei])
    yc = grid.y0 + (rows + 0.5) * grid.cell
    ea, eb = a[ei], b[ei]
    x = ea[:, 0] + (yc - ea[:, 1]) * (eb[:, 0] - ea[:, 0]) / (eb[:, 1] - ea[:, 1])
    order = np.lexsort((x, rows))
    rows, x = rows[order], x[order]
    inside = _accumulate_runs(grid, rows[0::2], x[0::2], x[1::2], [np.ones(total // 2)])[0]
    return np.asarray(inside > 0.5)
