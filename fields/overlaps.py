"""Fields that share ground: which pairs overlap, by how much, and which overlaps count (pure).

Two cooperatives' fields may not claim the same ground: an overlap of more than
``OVERLAP_SHARE`` of either field's area, or of more than ``OVERLAP_M2``, is *significant*
(refused at import unless an operator forces it, listed, and it hides flights, see
docs/access.md). Anything smaller is drawing tolerance along a shared bund.

Candidate pairs come from one ``STRtree`` query over the WGS84 outlines (the only frame all
fields share); their intersection areas are exact vector geometry in the first field's
local plane (``fields.projection``), vectorized over the pairs whose fields share a plane.
No-spray zones are not fields: callers pass only ``kind == "field"`` records.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import shapely

from fields.registry import Field

#: An overlap of more than this share of either field's area is significant...
OVERLAP_SHARE: Final = 0.01
#: ...and so is one of more than this many square metres, whatever the fields' sizes.
OVERLAP_M2: Final = 20.0

IntArray = npt.NDArray[np.int64]


def significant(area_m2: float, a_m2: float, b_m2: float) -> bool:
    """Whether an overlap of ``area_m2`` between fields of ``a_m2`` and ``b_m2`` counts."""
    return area_m2 > OVERLAP_M2 or area_m2 > OVERLAP_SHARE * min(a_m2, b_m2)


@dataclass(frozen=True, slots=True, eq=False)
class Overlap:
    """Two fields sharing ``area_m2`` of ground (computed in ``a``'s plane)."""

    a: Field
    b: Field
    area_m2: float

    @property
    def share_a(self) -> float:
        """The overlap as a fraction of ``a``'s area."""
        return self.area_m2 / self.a.area_m2

    @property
    def share_b(self) -> float:
        """The overlap as a fraction of ``b``'s area."""
        return self.area_m2 / self.b.area_m2

    @property
    def significant(self) -> bool:
        """More than ``OVERLAP_SHARE`` of either field, or more than ``OVERLAP_M2``."""
        return significant(self.area_m2, self.a.area_m2, self.b.area_m2)

    @property
    def across_coops(self) -> bool:
        """The fields belong to different cooperatives (no cooperative counts as one)."""
        return self.a.coop != self.b.coop


def overlaps_between(left: Sequence[Field], right: Sequence[Field]) -> list[Overlap]:
    """Every pair (a from ``left``, b from ``right``) sharing a positive area.

    A field that appears in both (the same object) is not paired with itself.
    """
    if not left or not right:
        return []
    left_geoms = np.array([f.geometry for f in left], dtype=object)
    right_geoms = np.array([f.geometry for f in right], dtype=object)
    li, ri = shapely.STRtree(right_geoms).query(left_geoms, predicate="intersects")
    distinct = np.array([left[i] is not right[j] for i, j in zip(li, ri, strict=True)], dtype=bool)
    li, ri = li[distinct], ri[distinct]
    # Neighbours that only share a boundary are the common case: drop them cheaply.
    inner = ~shapely.touches(left_geoms[li], right_geoms[ri])
    li, ri = li[inner], ri[inner]
    areas = _areas(left, right, li, ri)
    return [
        Overlap(left[int(i)], right[int(j)], float(area))
        for i, j, area in zip(li, ri, areas, strict=True)
        if area > 0.0
    ]


def overlaps_within(fields: Sequence[Field]) -> list[Overlap]:
    """Every unordered pair of ``fields`` sharing a positive area, each pair once."""
    index = {id(f): k for k, f in enumerate(fields)}
    return [o for o in overlaps_between(fields, fields) if index[id(o.a)] < index[id(o.b)]]


def import_conflicts(new: Sequence[Field], registered: Iterable[Field]) -> list[Overlap]:
    """Significant overlaps between a field being registered (``a``) and a field of another
    cooperative: a registered one that the import does not replace (same id), or another
    new one."""
    new_ids = {f.id for f in new}
    kept = [f for f in registered if f.id not in new_ids]
    pairs = overlaps_between(new, kept) + overlaps_within(new)
    return [o for o in pairs if o.across_coops and o.significant]


def foreign_overlaps(pairs: Iterable[Overlap]) -> dict[str, frozenset[str]]:
    """For each field in a significant overlap across cooperatives, the cooperatives of the
    fields it overlaps (a field's own cooperative never appears)."""
    found: dict[str, set[str]] = {}
    for o in pairs:
        if o.across_coops and o.significant:
            found.setdefault(o.a.id, set()).add(o.b.coop)
            found.setdefault(o.b.id, set()).add(o.a.coop)
    return {fid: frozenset(coops) for fid, coops in found.items()}


def _areas(
    left: Sequence[Field], right: Sequence[Field], li: IntArray, ri: IntArray
) -> npt.NDArray[np.float64]:
    """Intersection areas (m²) of the pairs, each in its left field's plane."""
    areas = np.zeros(len(li))
    if not len(li):
        return areas
    same = np.array([left[i].plane == right[j].plane for i, j in zip(li, ri, strict=True)])
    if same.any():
        a = np.array([left[i].metric for i in li[same]], dtype=object)
        b = np.array([right[j].metric for j in ri[same]], dtype=object)
        areas[same] = shapely.area(shapely.intersection(a, b))
    for k in np.flatnonzero(~same):
        a_field, b_field = left[li[k]], right[ri[k]]
        other = a_field.plane.to_plane(b_field.geometry)
        areas[k] = shapely.area(shapely.intersection(a_field.metric, other))
    return areas
