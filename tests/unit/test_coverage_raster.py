"""The scanline rasteriser claims exactly the cells whose centres lie inside a shape."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from fields.raster import Grid, paint_quads, polygon_mask


def centres_inside(grid: Grid, geometry: object) -> np.ndarray:
    xs = grid.x0 + (np.arange(grid.nx) + 0.5) * grid.cell
    ys = grid.y0 + (np.arange(grid.ny) + 0.5) * grid.cell
    gx, gy = np.meshgrid(xs, ys)
    return np.asarray(shapely.contains_xy(geometry, gx, gy))


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000))
def test_polygon_mask_agrees_with_point_in_polygon(seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = shapely.MultiPoint(rng.uniform(0, 40, (12, 2))).convex_hull
    hole = shapely.Point(rng.uniform(15, 25, 2)).buffer(rng.uniform(1, 5))
    geometry = shape.difference(hole)
    grid = Grid.covering((0.1, 0.2, 40.3, 40.4), 0.5)
    mask = polygon_mask(grid, geometry)
    assert (mask == centres_inside(grid, geometry)).mean() > 0.999


def test_painted_quads_conserve_what_they_carry() -> None:
    grid = Grid.covering((0, 0, 100, 100), 0.5)
    rng = np.random.default_rng(3)
    centres = rng.uniform(20, 80, (200, 2))
    angles = rng.uniform(0, np.pi, 200)
    u = np.column_stack([np.cos(angles), np.sin(angles)])
    n = np.column_stack([-u[:, 1], u[:, 0]])
    quads = np.stack(
        [
            centres + 3 * u + 2 * n,
            centres - 3 * u + 2 * n,
            centres - 3 * u - 2 * n,
            centres + 3 * u - 2 * n,
        ],
        axis=1,
    )
    density = rng.uniform(0.1, 1.0, 200)
    (dose,) = paint_quads(grid, quads, [density])
    # Each 6 m x 4 m quad carries density x 24 m²; painting by cell centres keeps the sum.
    assert dose.sum() * grid.cell_area == pytest.approx((density * 24).sum(), rel=0.01)


def test_quads_sharing_an_edge_never_both_claim_a_cell() -> None:
    grid = Grid.covering((0, 0, 10, 10), 0.5)
    left = [[1.0, 1.0], [5.0, 1.3], [5.2, 9.0], [1.0, 9.0]]
    right = [[5.0, 1.3], [9.0, 1.0], [9.0, 9.0], [5.2, 9.0]]
    (hits,) = paint_quads(grid, np.array([left, right]), [np.ones(2)])
    assert hits.max() == 1.0
