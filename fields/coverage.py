"""The coverage engine: was the field sprayed, fully, once, at the right rate, only there?

Definitions (docs/coverage.md has the long form):
- a *pass* is a run of consecutive spray-on samples of one drone, broken where two samples
  are more than ``max_gap_s`` or ``max_jump_m`` apart; its footprint is the (smoothed,
  0.2 m-simplified) track buffered by swath/2 with flat ends and round joins;
- ``applied_l`` integrates flow over spray-on time: each sample's flow times the time to the
  drone's next sample, capped at ``max_flow_interval_s``;
- areas are exact vector geometry in a local metric plane per field; the rate map is a
  0.5 m raster painted per sample segment (litres spread evenly over the segment's strip).

A field's running result (``FieldCoverage``) takes one more flight with ``CoverageEngine.add``
without recomputing earlier ones: it keeps the union of footprints, the overlap geometry and
the dose raster.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import shapely
import shapely.errors
from shapely.geometry import mapping

from fields.projection import LocalPlane, metres_per_degree
from fields.raster import Grid, paint_quads, polygon_mask
from fields.registry import (
    M2_PER_HA,
    MAX_EXTENT_DEG,
    SAO_M2,
    Field,
    FieldRegistry,
    geometry_problem,
    polygonal,
)
from storage.records import FIX_QUALITIES, Sample

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: The per-field metric keys, in output order (the CLI's ``json`` adds ``field_id``).
METRIC_KEYS: Final = (
    "field_ha",
    "covered_ha",
    "coverage_pct",
    "missed_ha",
    "overlap_ha",
    "off_target_ha",
    "no_spray_ha",
    "applied_l",
    "mean_rate_l_per_ha",
    "rate_cv_pct",
    "passes",
    "positioning",
    "uncertainty_ha",
    "uncertainty_pct",
)

#: Geometry kinds of ``CoverageGeometry`` and the GeoJSON output.
GEOMETRY_KINDS: Final = ("covered", "missed", "overlap", "off_target", "no_spray")

#: Neighbouring fields and no-spray zones further than this from a field are ignored.
NEIGHBOURHOOD_M: Final = 1_000.0

#: Share of spray samples with ``rtk_fixed`` above which gaps and overlap are trusted.
RTK_SHARE: Final = 0.95

#: The gap limit: two consecutive spray samples further apart in time than this are never
#: bridged as sprayed swath (the pass is cut there). Chosen from speed and swath: it must
#: bridge one lost message of the slowest regular source (DJI Cloud API OSD at 0.5 Hz: 2 s
#: apart, 4 s over a lost one, plus jitter), and it must stay under the time of a headland
#: turn plus the shortest pass, so that a bridged chord cannot cut across a turn into the
#: next pass: at 5 m/s (typical spraying speed, 3-7 m/s) 5 s is 25 m, the length of the
#: smallest Đông Triều plots (0.05 ha, ~20 x 25 m) and 5 swaths of 5 m. ``max_jump_m``
#: (20 m: one 0.5 Hz step at 10 m/s) caps the same chord in distance (docs/coverage.md).
GAP_LIMIT_S: Final = 5.0

#: A pass is *dense* when its samples are at most this many swaths apart (on average):
#: the drone moved at most half a swath between samples, so where each pass starts and
#: ends is known to well under the swath (docs/coverage.md, "Sparse tracks").
DENSE_STEP_SWATHS: Final = 0.5

#: A field's result is ``sparse`` when more than this share of its spray samples belong to
#: sparse passes.
SPARSE_SHARE: Final = 0.05

#: Decimals of the degrees in GeoJSON output: 1e-7 degree is about 1 cm.
GEOJSON_DECIMALS: Final = 7

_EMPTY: Final = shapely.Polygon()

log = logging.getLogger(__name__)


_gc_lock = threading.Lock()
_gc_state = {"depth": 0, "was_enabled": False}


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Hold Python's cyclic garbage collector while an engine is prepared. Preparation
    allocates a few objects per field, none in a reference cycle, yet each allocation burst
    triggers full collections that walk the whole heap (the registry included): at 100k
    plots that was ~1 s of 2.4 s and made preparation grow 19x from 10k to 100k plots.
    Counted, so overlapping preparations in worker threads re-enable it only when the last
    one ends, and only if it was enabled before the first."""
    with _gc_lock:
        if _gc_state["depth"] == 0:
            _gc_state["was_enabled"] = gc.isenabled()
            gc.disable()
        _gc_state["depth"] += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_state["depth"] -= 1
            if _gc_state["depth"] == 0 and _gc_state["was_enabled"]:
                gc.enable()


class CoverageInputError(ValueError):
    """The samples cannot be used as given (the message names the sample and what to do)."""


class UnpreparedFieldError(KeyError):
    """The coverage of a field cannot be computed: the engine left it out (its geometry, or
    a neighbour's, cannot be prepared); the message says why."""

    def __init__(self, field_id: str, reason: str) -> None:
        super().__init__(field_id)
        self.field_id = field_id
        self.reason = reason

    def __str__(self) -> str:
        return f"the coverage of field {self.field_id!r} cannot be computed: {self.reason}"


@dataclass(frozen=True, slots=True)
class CoverageParams:
    """Knobs of the definitions; the defaults are the documented, comparable ones."""

    default_swath_m: float | None = None
    max_gap_s: float = GAP_LIMIT_S
    max_jump_m: float = 20.0
    max_flow_interval_s: float = 2.0
    smooth_s: float = 0.5
    heading_s: float = 1.0
    simplify_m: float = 0.2
    quad_segs: int = 8
    cell_m: float = 0.5
    max_cells: int = 4_000_000
    sliver_m2: float = 1.0
    dense_step_swaths: float = DENSE_STEP_SWATHS


@dataclass(frozen=True, slots=True, eq=False)
class SampleArrays:
    """Samples as parallel numpy arrays, the engine's hot-path input.

    ``flow_lpm`` NaN means unknown (counted as 0 L/min); ``swath_m`` NaN means "use the
    default swath"; ``drone`` holds integer codes (passes never join different codes);
    ``fix`` holds indices into ``storage.records.FIX_QUALITIES`` or -1 when unknown.
    """

    ts_ms: IntArray
    lat: FloatArray
    lon: FloatArray
    spraying: BoolArray
    flow_lpm: FloatArray
    swath_m: FloatArray
    drone: IntArray
    fix: IntArray

    def __len__(self) -> int:
        return len(self.ts_ms)


def sample_arrays(
    ts_ms: npt.ArrayLike,
    lat: npt.ArrayLike,
    lon: npt.ArrayLike,
    spraying: npt.ArrayLike,
    *,
    flow_lpm: npt.ArrayLike | None = None,
    swath_m: npt.ArrayLike | None = None,
    drone: npt.ArrayLike | None = None,
    fix: npt.ArrayLike | None = None,
) -> SampleArrays:
    """Check and convert parallel arrays; missing optional columns become unknown."""
    ts = np.asarray(ts_ms, dtype=np.int64)
    n = len(ts)

    def column(values: npt.ArrayLike | None, dtype: Any, fill: Any = np.nan, *, name: str) -> Any:
        if values is None:
            return np.full(n, fill, dtype=dtype)
        arr = np.asarray(values, dtype=dtype)
        if arr.shape != (n,):
            raise CoverageInputError(f"{name} has shape {arr.shape}; expected ({n},) like ts_ms")
        return arr

    out = SampleArrays(
        ts_ms=ts,
        lat=column(lat, np.float64, np.nan, name="lat"),
        lon=column(lon, np.float64, np.nan, name="lon"),
        spraying=column(spraying, np.bool_, fill=False, name="spraying"),
        flow_lpm=column(flow_lpm, np.float64, np.nan, name="flow_lpm"),
        swath_m=column(swath_m, np.float64, np.nan, name="swath_m"),
        drone=column(drone, np.int64, 0, name="drone"),
        fix=column(fix, np.int64, -1, name="fix"),
    )
    bad = ~(np.isfinite(out.lat) & np.isfinite(out.lon))
    bad |= (np.abs(out.lat) > 90) | (np.abs(out.lon) > 180)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise CoverageInputError(
            f"sample {i} (ts {int(ts[i])}): position lat {out.lat[i]}, lon {out.lon[i]} "
            "is not a WGS84 coordinate"
        )
    return out


def samples_from_records(records: Sequence[Sample]) -> SampleArrays:
    """Convert store records; each (coop, drone) pair gets its own drone code."""
    codes: dict[tuple[str, str], int] = {}
    fix_codes = {name: i for i, name in enumerate(FIX_QUALITIES)}
    nan = float("nan")
    return sample_arrays(
        ts_ms=[r.ts_ms for r in records],
        lat=[r.lat for r in records],
        lon=[r.lon for r in records],
        spraying=[r.spraying for r in records],
        flow_lpm=[nan if r.flow_lpm is None else r.flow_lpm for r in records],
        swath_m=[nan if r.swath_m is None else r.swath_m for r in records],
        drone=[codes.setdefault((r.coop, r.drone), len(codes)) for r in records],
        fix=[fix_codes.get(r.fix, -1) if r.fix else -1 for r in records],
    )


@dataclass(frozen=True, slots=True, eq=False)
class Passes:
    """Samples sorted by (drone, ts), deduplicated, with spray-on runs cut into passes."""

    t_ms: FloatArray
    lon: FloatArray  # smoothed within each pass
    lat: FloatArray
    swath: FloatArray
    litres: FloatArray
    fix: IntArray
    start: IntArray  # first sample of each pass
    stop: IntArray  # one past the last sample of each pass
    bbox: FloatArray  # (n_pass, 4) lon/lat bounds widened by half a swath
    step_m: FloatArray  # mean distance between consecutive samples of each pass (0: one sample)


def split_passes(s: SampleArrays, p: CoverageParams) -> Passes:
    """Sort by (drone, ts), drop duplicate instants, smooth, and cut spray-on runs into passes."""
    order = np.lexsort((s.ts_ms, s.drone))
    ts, drone = s.ts_ms[order], s.drone[order]
    keep = np.ones(len(ts), dtype=bool)
    keep[1:] = (ts[1:] != ts[:-1]) | (drone[1:] != drone[:-1])
    order = order[keep]
    ts, drone = ts[keep], drone[keep]
    lat, lon = s.lat[order], s.lon[order]
    on = s.spraying[order]
    same_prev = np.zeros(len(ts), dtype=bool)
    same_prev[1:] = drone[1:] == drone[:-1]
    litres = _litres(s, order, ts, same_prev, on, p=p)
    swath = _swath(s, order, on, p)

    per_lon, per_lat = metres_per_degree(lat)
    jump = np.zeros(len(ts), dtype=np.float64)
    jump[1:] = np.hypot(np.diff(lon) * per_lon[1:], np.diff(lat) * per_lat[1:])
    gap_ms = np.zeros(len(ts), dtype=np.float64)
    gap_ms[1:] = np.diff(ts)
    starts = on & ~(
        same_prev & np.roll(on, 1) & (gap_ms <= p.max_gap_s * 1000.0) & (jump <= p.max_jump_m)
    )
    start = np.flatnonzero(starts)
    pass_id = np.cumsum(starts) - 1
    lengths = np.bincount(pass_id[on], minlength=len(start)).astype(np.int64)
    stop = start + lengths
    slon, slat = _smooth(ts, lon, lat, start=start, stop=stop, half_window_s=p.smooth_s)
    travelled = np.cumsum(jump)
    steps = np.maximum(lengths - 1, 1)
    step_m = np.where(lengths > 1, (travelled[stop - 1] - travelled[start]) / steps, 0.0)
    return Passes(
        t_ms=ts.astype(np.float64),
        lon=slon,
        lat=slat,
        swath=swath,
        litres=litres,
        fix=s.fix[order],
        start=start,
        stop=stop,
        bbox=_pass_bounds(slon, slat, swath, start, lengths),
        step_m=step_m,
    )


def _litres(
    s: SampleArrays,
    order: IntArray,
    ts: IntArray,
    same_prev: BoolArray,
    on: BoolArray,
    *,
    p: CoverageParams,
) -> FloatArray:
    """Each spray-on sample's flow times the time to the drone's next sample (capped).

    A drone's last sample has no next one: it repeats its previous interval, so that cutting
    a flight in two never loses litres.
    """
    dt_ms = np.zeros(len(ts), dtype=np.float64)
    dt_ms[:-1] = np.where(same_prev[1:], np.diff(ts), 0)
    same_next = np.zeros(len(ts), dtype=bool)
    same_next[:-1] = same_prev[1:]
    last = ~same_next & same_prev
    dt_ms[last] = (ts[last] - ts[np.flatnonzero(last) - 1]).astype(np.float64)
    interval_s = np.minimum(dt_ms / 1000.0, p.max_flow_interval_s)
    flow = np.nan_to_num(s.flow_lpm[order], nan=0.0)
    if (flow < 0).any():
        i = int(order[np.flatnonzero(flow < 0)[0]])
        raise CoverageInputError(f"sample {i} (ts {int(s.ts_ms[i])}): negative flow_lpm")
    return np.where(on, flow * interval_s / 60.0, 0.0)


def _swath(s: SampleArrays, order: IntArray, on: BoolArray, p: CoverageParams) -> FloatArray:
    """Per-sample swath, the default where a sample carries none."""
    swath = s.swath_m[order].copy()
    missing = np.isnan(swath)
    if p.default_swath_m is None and (missing & on).any():
        i = int(order[np.flatnonzero(missing & on)[0]])
        raise CoverageInputError(
            f"sample {i} (ts {int(s.ts_ms[i])}) is spraying without swath_m and no "
            "default swath was given (--swath METRES)"
        )
    if p.default_swath_m is not None:
        swath[missing] = p.default_swath_m
    bad = on & ~(swath > 0)
    if bad.any():
        i = int(order[np.flatnonzero(bad)[0]])
        raise CoverageInputError(f"sample {i} (ts {int(s.ts_ms[i])}): swath_m must be > 0")
    return swath


def _pass_bounds(
    lon: FloatArray, lat: FloatArray, swath: FloatArray, start: IntArray, lengths: IntArray
) -> FloatArray:
    """Lon/lat bounds of each pass widened by half its widest swath (for field look-up)."""
    bbox = np.empty((len(start), 4))
    if len(start) == 0:
        return bbox
    sel = index_ranges(start, lengths)
    firsts = np.cumsum(lengths) - lengths
    half = np.maximum.reduceat(swath[sel], firsts) / 2.0
    mlon, mlat = metres_per_degree(lat[start])
    bbox[:, 0] = np.minimum.reduceat(lon[sel], firsts) - half / mlon - 1e-6
    bbox[:, 1] = np.minimum.reduceat(lat[sel], firsts) - half / mlat - 1e-6
    bbox[:, 2] = np.maximum.reduceat(lon[sel], firsts) + half / mlon + 1e-6
    bbox[:, 3] = np.maximum.reduceat(lat[sel], firsts) + half / mlat + 1e-6
    return bbox


def index_ranges(start: IntArray, lengths: IntArray) -> IntArray:
    """Concatenation of ``arange(start[i], start[i] + lengths[i])`` for every i."""
    firsts = np.cumsum(lengths) - lengths
    return np.repeat(start - firsts, lengths) + np.arange(int(lengths.sum()))


def _smooth(
    ts: IntArray,
    lon: FloatArray,
    lat: FloatArray,
    *,
    start: IntArray,
    stop: IntArray,
    half_window_s: float,
) -> tuple[FloatArray, FloatArray]:
    """Centred moving average in time within each pass; the window shrinks symmetrically at
    pass ends, so straight runs at constant speed keep their exact end points."""
    if half_window_s <= 0 or len(start) == 0:
        return lon, lat
    lengths = stop - start
    sel = index_ranges(start, lengths)
    pid = np.repeat(np.arange(len(start)), lengths)
    t = ts[sel].astype(np.float64) - ts[start][pid]
    span = t[np.cumsum(lengths) - 1]
    offset = np.cumsum(span + 1e7) - (span + 1e7)
    key = t + offset[pid]
    w = np.minimum(np.minimum(half_window_s * 1000.0, t), span[pid] - t)
    lo = np.searchsorted(key, key - w, side="left")
    hi = np.searchsorted(key, key + w, side="right")
    out_lon, out_lat = lon.copy(), lat.copy()
    for src, dst in ((lon, out_lon), (lat, out_lat)):
        base = src[sel] - src[sel][0]
        cs = np.concatenate([[0.0], np.cumsum(base)])
        dst[sel] = (cs[hi] - cs[lo]) / (hi - lo) + src[sel][0]
    return out_lon, out_lat


@dataclass(frozen=True, eq=False)
class PreparedField:
    """A field made ready for the engine: its target area and grid. It depends only on the
    field's own version and the no-spray zones that bind it and touch it (``binding``), so
    an engine over a changed registry reuses it when neither changed (``CoverageEngine``'s
    ``previous``). Neighbours are looked up when a result needs them, through the engine's
    spatial index, not unioned per field in advance."""

    field: Field
    target: Any  # field minus the no-spray zones that apply to it, metres in field.plane
    grid: Grid
    bbox: tuple[float, float, float, float]  # lon/lat bounds of the field
    binding: tuple[Field, ...] = ()  # the zones that bind the field and touch it

    @cached_property
    def inside(self) -> BoolArray:
        """Grid cells whose centre lies in the target (built on first use: a town's worth
        of masks would cost hundreds of MB for fields never flown)."""
        return polygon_mask(self.grid, self.target)


@dataclass(frozen=True, slots=True, eq=False)
class FieldCoverage:
    """A field's running result; ``CoverageEngine.add`` returns a new one per flight."""

    field_id: str
    footprint: Any  # union of the footprints of passes touching the field, metres
    overlap: Any  # part of the target under >= 2 passes
    dose: FloatArray  # litres per square metre, per grid cell
    hits: FloatArray  # sample strips painted per cell
    passes: int = 0
    applied_l: float = 0.0
    fix_counts: tuple[int, ...] = field(default=(0,) * (len(FIX_QUALITIES) + 1))
    #: Spray samples of this field's passes that belong to sparse passes.
    sparse_samples: int = 0
    #: ± m² of covered area from where sparse passes start and end (docs/coverage.md).
    uncertainty_m2: float = 0.0


@dataclass(frozen=True, slots=True)
class CoverageResult:
    """Per-field metrics (``METRIC_KEYS``) plus positioning quality of the spray samples."""

    field_id: str
    field_ha: float
    covered_ha: float
    coverage_pct: float
    missed_ha: float
    overlap_ha: float
    off_target_ha: float
    no_spray_ha: float
    applied_l: float
    mean_rate_l_per_ha: float | None
    rate_cv_pct: float | None
    passes: int
    positioning: str  # "sparse", else the fix: "rtk", "gnss" or "unknown"
    uncertainty_ha: float = 0.0  # ± on covered_ha (and missed_ha) from sparse sampling
    uncertainty_pct: float = 0.0  # the same in points of coverage_pct

    @property
    def uncertain(self) -> bool:
        """Gaps and overlap are within positioning noise unless the fix was RTK (and the
        samples dense)."""
        return self.positioning != "rtk"

    @property
    def sparse(self) -> bool:
        """The samples were further apart than the swath and speed allow (``DENSE_STEP_SWATHS``)."""
        return self.positioning == "sparse"

    @property
    def field_sao(self) -> float:
        """Field area in sào Bắc Bộ."""
        return self.field_ha * M2_PER_HA / SAO_M2

    def metrics(self) -> dict[str, Any]:
        """``field_id`` and exactly the ``METRIC_KEYS``, rounded for people."""
        out: dict[str, Any] = {"field_id": self.field_id}
        for key in METRIC_KEYS:
            value = getattr(self, key)
            if isinstance(value, float):
                value = round(value, 3 if key.endswith(("_pct", "_l", "_per_ha")) else 6)
            out[key] = value
        return out


@dataclass(frozen=True, slots=True, eq=False)
class CoverageGeometry:
    """The polygons behind a result, in the field's metric plane."""

    field_id: str
    plane: LocalPlane
    covered: Any
    missed: Any
    overlap: Any
    off_target: Any
    no_spray: Any

    def features(self, *, uncertain: bool = False) -> list[dict[str, Any]]:
        """GeoJSON Features in WGS84 (RFC 7946: ``rfc7946_polygons``), one per kind that is
        not empty, with ``kind`` and ``area_ha`` (the exact metric area)."""
        out = []
        for kind in GEOMETRY_KINDS:
            geom = getattr(self, kind)
            if geom.is_empty:
                continue
            wgs = rfc7946_polygons(self.plane.to_wgs84(geom))
            if wgs.is_empty:
                continue
            props: dict[str, Any] = {
                "field_id": self.field_id,
                "kind": kind,
                "area_ha": round(float(geom.area) / M2_PER_HA, 6),
            }
            if kind in ("missed", "overlap"):
                props["uncertain"] = uncertain
            out.append({"type": "Feature", "properties": props, "geometry": mapping(wgs)})
        return out


@dataclass(frozen=True, slots=True, eq=False)
class _Batch:
    """The passes of one sample batch that touch one field, in the field's plane."""

    footprints: Any  # ndarray of polygons, one per pass
    quads: FloatArray
    density: FloatArray  # litres per square metre on each quad
    litres: float
    fix_counts: IntArray
    sparse_samples: int
    uncertainty_m2: float


@dataclass(frozen=True, slots=True)
class PrepareStats:
    """How an engine got its fields: prepared afresh, or reused from the previous engine."""

    prepared: int
    reused: int


class CoverageEngine:
    """Coverage of a registry's fields; holds only immutable prepared data, so it is pure.

    Preparation is linear in the number of fields: one spatial-index query finds the zones
    touching every field, and each field is prepared against those alone. Given the
    ``previous`` engine (of an earlier registry), every field whose version (the same
    ``Field`` object: ``FieldHistory`` parses each stored version once) and binding zones
    did not change keeps its ``PreparedField``; ``stats`` counts both kinds.
    """

    def __init__(
        self,
        registry: FieldRegistry,
        params: CoverageParams | None = None,
        *,
        previous: CoverageEngine | None = None,
    ) -> None:
        with _cyclic_gc_paused():
            self._prepare(registry, params, previous)

    def _prepare(
        self,
        registry: FieldRegistry,
        params: CoverageParams | None,
        previous: CoverageEngine | None,
    ) -> None:
        self.params = params or CoverageParams()
        #: Fields left out because they cannot be prepared, with why (logged one line each):
        #: one broken outline must not take coverage away from every other field.
        self.unprepared: dict[str, str] = {}
        #: Fields and zones whose own geometry passed the screening (not checked again by
        #: an engine built with this one as ``previous``).
        self._sound: set[Field] = set()
        self.registry = self._screened(registry, previous)
        fields, zones = self.registry.fields, self.registry.no_spray
        self._field_tree = shapely.STRtree([f.geometry for f in fields])
        self._zone_tree = shapely.STRtree([z.geometry for z in zones])
        reusable: dict[Field, PreparedField] = {}
        if previous is not None and _same_grids(previous.params, self.params):
            reusable = {pf.field: pf for pf in previous.fields.values()}
        self.fields: dict[str, PreparedField] = {}
        todo: list[tuple[Field, tuple[Field, ...]]] = []
        reused = 0
        for f, binding in zip(fields, self._binding_zones(), strict=True):
            old = reusable.get(f)
            if old is not None and old.binding == binding:
                reused += 1
            else:
                todo.append((f, binding))
        fresh: dict[str, PreparedField] = {}
        for f, outcome in zip((f for f, _ in todo), _prepare_many(todo, self.params), strict=True):
            if isinstance(outcome, PreparedField):
                fresh[f.id] = outcome
            else:
                self._leave_out(f, f"geometry error while preparing it ({outcome})")
        for f in fields:  # registry order, whichever way each field was got
            pf = fresh.get(f.id)
            if pf is None:
                old = reusable.get(f)
                if old is None or f.id in self.unprepared:
                    continue
                pf = old
            self.fields[f.id] = pf
        prepared = len(fresh)
        #: How many fields were prepared afresh and how many reused from ``previous``.
        self.stats = PrepareStats(prepared=prepared, reused=reused)
        self._ids = list(self.fields)
        bbox = np.array([pf.bbox for pf in self.fields.values()]).reshape(-1, 4)
        self._box_tree = shapely.STRtree(
            shapely.box(bbox[:, 0], bbox[:, 1], bbox[:, 2], bbox[:, 3])
        )

    def _screened(self, registry: FieldRegistry, previous: CoverageEngine | None) -> FieldRegistry:
        """The registry without the fields and zones whose own geometry cannot be used
        (they would break the preparation of every field near them). Checked in bulk;
        ``geometry_problem`` names the reason of each suspect."""
        known = previous._sound if previous is not None else set()
        items = [f for f in (*registry.fields, *registry.no_spray) if f not in known]
        bad = {}
        if items:
            bounds = shapely.bounds(np.array([f.geometry for f in items], dtype=object))
            wide = (bounds[:, 2] - bounds[:, 0] > MAX_EXTENT_DEG) | (
                bounds[:, 3] - bounds[:, 1] > MAX_EXTENT_DEG
            )
            valid = shapely.is_valid(np.array([f.metric for f in items], dtype=object))
            for i in np.flatnonzero(wide | ~valid):
                f = items[int(i)]
                problem = geometry_problem(f)
                if problem:
                    bad[f.id] = problem
                    self._leave_out(f, problem)
        self._sound = {f for f in (*registry.fields, *registry.no_spray) if f.id not in bad}
        if not bad:
            return registry
        return replace(
            registry,
            fields=tuple(f for f in registry.fields if f.id not in bad),
            no_spray=tuple(z for z in registry.no_spray if z.id not in bad),
        )

    def _binding_zones(self) -> list[tuple[Field, ...]]:
        """For every field, in registry order, the zones that touch it and bind it (one
        bulk query of the zones' index)."""
        fields, zones = self.registry.fields, self.registry.no_spray
        out: list[list[Field]] = [[] for _ in fields]
        if zones and fields:
            fi, zi = self._zone_tree.query([f.geometry for f in fields], predicate="intersects")
            order = np.lexsort((zi, fi))
            for i, j in zip(fi[order].tolist(), zi[order].tolist(), strict=True):
                z = zones[j]
                if zone_applies(z, fields[i].coop):
                    out[i].append(z)
        return [tuple(b) for b in out]

    def near(self, region: Any) -> tuple[list[Field], list[Field]]:
        """The fields and the zones whose outlines intersect ``region`` (WGS84), in
        registry order: one query of each spatial index."""
        fields, zones = self.registry.fields, self.registry.no_spray
        fi = np.sort(self._field_tree.query(region, predicate="intersects"))
        zi = np.sort(self._zone_tree.query(region, predicate="intersects"))
        return [fields[int(i)] for i in fi], [zones[int(i)] for i in zi]

    def _leave_out(self, f: Field, reason: str) -> None:
        self.unprepared[f.id] = reason
        log.warning(
            "coverage_field_left_out field=%s kind=%s coop=%s reason=%r",
            f.id,
            f.kind,
            f.coop,
            reason,
        )

    def start(self) -> dict[str, FieldCoverage]:
        """Empty running results for every field."""
        return {fid: self.empty(fid) for fid in self.fields}

    def empty(self, field_id: str) -> FieldCoverage:
        """An empty running result for one field (``UnpreparedFieldError`` for a field left
        out, naming why)."""
        prepared = self.fields.get(field_id)
        if prepared is None:
            if field_id in self.unprepared:
                raise UnpreparedFieldError(field_id, self.unprepared[field_id])
            raise KeyError(field_id)
        grid = prepared.grid
        return FieldCoverage(field_id, _EMPTY, _EMPTY, grid.zeros(), grid.zeros())

    def add(
        self, states: Mapping[str, FieldCoverage], samples: SampleArrays | Sequence[Sample]
    ) -> dict[str, FieldCoverage]:
        """New running results with one more flight (or day) of samples added."""
        if not isinstance(samples, SampleArrays):
            samples = samples_from_records(samples)
        out = dict(states)
        if len(samples) == 0:
            return out
        passes = split_passes(samples, self.params)
        if len(passes.start) == 0:
            return out
        b = passes.bbox
        pi, fj = self._box_tree.query(shapely.box(b[:, 0], b[:, 1], b[:, 2], b[:, 3]))
        order = np.lexsort((pi, fj))
        pi, fj = pi[order], fj[order]
        cuts = np.flatnonzero(np.diff(fj)) + 1
        for js, candidates in zip(np.split(fj, cuts), np.split(pi, cuts), strict=True):
            if not len(js):
                continue
            fid = self._ids[int(js[0])]
            pf = self.fields[fid]
            batch = _batch(pf, passes, candidates.astype(np.int64), self.params)
            if batch is None:
                continue
            state = out.get(fid) or self.empty(fid)
            out[fid] = _merge(pf, state, batch)
        return out

    def run(self, samples: SampleArrays | Sequence[Sample]) -> dict[str, FieldCoverage]:
        """Running results of every field from one set of samples."""
        return self.add(self.start(), samples)

    def result(self, state: FieldCoverage) -> CoverageResult:
        """The metrics of a running result."""
        pf = self.fields[state.field_id]
        field_m2 = float(pf.target.area)
        covered_m2 = float(shapely.intersection(state.footprint, pf.target).area)
        covered_m2 = min(covered_m2, field_m2)
        geo = self._off_target(pf, state)
        covered_cells = pf.inside & (state.hits > 0)
        litres_inside = float(state.dose[pf.inside].sum()) * pf.grid.cell_area
        rates = state.dose[covered_cells] * M2_PER_HA
        mean_rate = rate_cv = None
        if covered_m2 > 0 and rates.size and rates.mean() > 0:
            mean_rate = litres_inside / (covered_m2 / M2_PER_HA)
            rate_cv = float(rates.std() / rates.mean() * 100.0)
        return CoverageResult(
            field_id=state.field_id,
            field_ha=field_m2 / M2_PER_HA,
            covered_ha=covered_m2 / M2_PER_HA,
            coverage_pct=100.0 * covered_m2 / field_m2 if field_m2 else 0.0,
            missed_ha=(field_m2 - covered_m2) / M2_PER_HA,
            overlap_ha=float(state.overlap.area) / M2_PER_HA,
            off_target_ha=float(geo[0].area) / M2_PER_HA,
            no_spray_ha=float(geo[1].area) / M2_PER_HA,
            applied_l=state.applied_l,
            mean_rate_l_per_ha=mean_rate,
            rate_cv_pct=rate_cv,
            passes=state.passes,
            positioning=_positioning(state.fix_counts, state.sparse_samples),
            uncertainty_ha=min(state.uncertainty_m2, field_m2) / M2_PER_HA,
            uncertainty_pct=(
                100.0 * min(state.uncertainty_m2, field_m2) / field_m2 if field_m2 else 0.0
            ),
        )

    def geometry(self, state: FieldCoverage) -> CoverageGeometry:
        """The covered, missed (slivers dropped), overlap, off-target and no-spray polygons."""
        pf = self.fields[state.field_id]
        missed = polygonal_or_empty(shapely.difference(pf.target, state.footprint))
        parts = shapely.get_parts(missed)
        parts = parts[shapely.area(parts) >= self.params.sliver_m2]
        off, no_spray = self._off_target(pf, state)
        return CoverageGeometry(
            field_id=state.field_id,
            plane=pf.field.plane,
            covered=polygonal_or_empty(shapely.intersection(state.footprint, pf.target)),
            missed=shapely.multipolygons(parts) if len(parts) else _EMPTY,
            overlap=state.overlap,
            off_target=off,
            no_spray=no_spray,
        )

    def surroundings(self, pf: PreparedField, bounds_m: Sequence[float]) -> tuple[Any, Any]:
        """(the other fields' targets, the zones binding ``pf``'s field minus those
        targets), in the field's plane, as far as they reach into ``bounds_m`` (metres in
        that plane) and lie within ``NEIGHBOURHOOD_M`` of the field: a query of the
        spatial indexes, so a result costs what its footprint touches, not the town."""
        plane = pf.field.plane
        minx, miny, maxx, maxy = (float(v) for v in bounds_m)
        lon, lat = plane.inverse([minx, maxx, maxx, minx], [miny, miny, maxy, maxy])
        pad = 1e-5  # ~1 m: the plane's straight edges bow slightly in degrees
        box = shapely.box(lon.min() - pad, lat.min() - pad, lon.max() + pad, lat.max() + pad)
        area = shapely.intersection(box, neighbourhood(pf.field))
        if area.is_empty:
            return _EMPTY, _EMPTY
        fields, zones = self.near(area)
        others = field_targets([g for g in fields if g is not pf.field], zones, plane)
        binding = [z.geometry for z in zones if zone_applies(z, pf.field.coop)]
        no_spray = plane.to_plane(shapely.union_all(binding)) if binding else _EMPTY
        if not others.is_empty and not no_spray.is_empty:
            # Where another cooperative's field lies under this field's zone, spray there is
            # that field's coverage, not forbidden spray (the zone does not bind it).
            no_spray = polygonal_or_empty(shapely.difference(no_spray, others))
        return others, no_spray

    def _off_target(self, pf: PreparedField, state: FieldCoverage) -> tuple[Any, Any]:
        if state.footprint.is_empty:
            return _EMPTY, _EMPTY
        others, zones = self.surroundings(pf, state.footprint.bounds)
        outside = shapely.difference(state.footprint, pf.target)
        off = polygonal_or_empty(shapely.difference(outside, others))
        no_spray = polygonal_or_empty(shapely.intersection(state.footprint, zones))
        return off, no_spray


def _same_grids(a: CoverageParams, b: CoverageParams) -> bool:
    """Whether prepared fields of engines with parameters ``a`` fit ``b`` (only the grid
    depends on parameters; a default swath, say, does not)."""
    return a.cell_m == b.cell_m and a.max_cells == b.max_cells


def neighbourhood(f: Field) -> Any:
    """The lon/lat box ``NEIGHBOURHOOD_M`` around a field: neighbouring fields and zones
    further than this are ignored."""
    minx, miny, maxx, maxy = (float(v) for v in f.geometry.bounds)
    mlon, mlat = metres_per_degree((miny + maxy) / 2)
    dlon, dlat = NEIGHBOURHOOD_M / float(mlon), NEIGHBOURHOOD_M / float(mlat)
    return shapely.box(minx - dlon, miny - dlat, maxx + dlon, maxy + dlat)


def zone_applies(zone: Field, coop: str) -> bool:
    """Whether a no-spray zone binds fields of cooperative ``coop``: a commune-wide zone binds
    every field, a cooperative's zone only its own members' fields."""
    return zone.scope == "commune" or zone.coop == coop


def field_targets(fields: Sequence[Field], zones: Sequence[Field], plane: LocalPlane) -> Any:
    """The union of the fields' targets (each field minus the zones that apply to it), in
    ``plane`` metres: the ground a spray may legitimately land on as some field's coverage."""
    by_coop: dict[str, list[Any]] = {}
    for g in fields:
        by_coop.setdefault(g.coop, []).append(g.geometry)
    parts = []
    for coop, geoms in by_coop.items():
        land = plane.to_plane(shapely.union_all(geoms))
        binding = [z.geometry for z in zones if zone_applies(z, coop)]
        if binding:
            land = shapely.difference(land, plane.to_plane(shapely.union_all(binding)))
        parts.append(land)
    return polygonal_or_empty(shapely.union_all(parts)) if parts else _EMPTY


def _prepare_many(
    todo: Sequence[tuple[Field, tuple[Field, ...]]], p: CoverageParams
) -> list[PreparedField | shapely.errors.GEOSException]:
    """Prepare fields against the zones that bind them, in bulk: each zone projected once
    per plane, one vectorized difference for all targets. A GEOS error in the bulk call is
    retried field by field, so it costs only the field that causes it."""
    if not todo:
        return []
    metric = np.array([f.metric for f, _ in todo], dtype=object)
    zoned = np.array([bool(b) for _, b in todo], dtype=bool)
    targets = metric.copy()
    if zoned.any():
        projected: dict[tuple[int, LocalPlane], Any] = {}
        by_plane: dict[LocalPlane, dict[int, Field]] = {}
        for f, binding in todo:
            for z in binding:
                by_plane.setdefault(f.plane, {})[id(z)] = z
        for plane, zones in by_plane.items():
            shapes = plane.to_plane(np.array([z.geometry for z in zones.values()], dtype=object))
            projected.update(((key, plane), g) for key, g in zip(zones, shapes, strict=True))
        no_spray = np.array(
            [
                _union([projected[id(z), f.plane] for z in binding])
                for f, binding in (todo[int(i)] for i in np.flatnonzero(zoned))
            ],
            dtype=object,
        )
        try:
            targets[zoned] = _targets(metric[zoned], no_spray)
        except shapely.errors.GEOSException:
            rows = np.flatnonzero(zoned)
            for k, i in enumerate(rows):
                try:
                    targets[i] = _targets(metric[i : i + 1], no_spray[k : k + 1])[0]
                except shapely.errors.GEOSException as exc:
                    targets[i] = exc
    lonlat = shapely.bounds(np.array([f.geometry for f, _ in todo], dtype=object)).tolist()
    metres = shapely.bounds(metric).tolist()
    out: list[PreparedField | shapely.errors.GEOSException] = []
    for (f, binding), target, box, bounds in zip(todo, targets, lonlat, metres, strict=True):
        if isinstance(target, shapely.errors.GEOSException):
            out.append(target)
            continue
        cell = p.cell_m
        area_box = (bounds[2] - bounds[0]) * (bounds[3] - bounds[1])
        if area_box / (cell * cell) > p.max_cells:
            cell = float(np.sqrt(area_box / p.max_cells))
        out.append(
            PreparedField(
                field=f,
                target=target,
                grid=Grid.covering((bounds[0], bounds[1], bounds[2], bounds[3]), cell),
                bbox=(box[0], box[1], box[2], box[3]),
                binding=binding,
            )
        )
    return out


def _union(shapes: Sequence[Any]) -> Any:
    return shapes[0] if len(shapes) == 1 else shapely.union_all(shapes)


def _targets(metric: Any, no_spray: Any) -> Any:
    """Fields minus their zones (arrays, element by element), keeping only polygons."""
    out = shapely.difference(metric, no_spray)
    odd = ~np.isin(shapely.get_type_id(out), (3, 6))  # not Polygon / MultiPolygon
    for i in np.flatnonzero(odd):
        out[i] = polygonal_or_empty(out[i])
    return out


def _batch(pf: PreparedField, ps: Passes, candidates: IntArray, p: CoverageParams) -> _Batch | None:
    starts, stops = ps.start[candidates], ps.stop[candidates]
    lengths = stops - starts
    sel = index_ranges(starts, lengths)
    local = np.repeat(np.arange(len(starts)), lengths)
    x, y = pf.field.plane.forward(ps.lon[sel], ps.lat[sel])
    footprints = pass_footprints(x, y, ps.swath[sel], local, n_pass=len(starts), p=p)
    metric = pf.field.metric
    touching = shapely.intersects(footprints, metric) & ~shapely.touches(footprints, metric)
    point_like = shapely.is_empty(footprints)
    if point_like.any():
        # A single sample, or a drone hovering while spraying: no area, but its litres count.
        first = (np.cumsum(lengths) - lengths)[point_like]
        points = shapely.points(x[first], y[first])
        touching[point_like] = shapely.dwithin(points, metric, ps.swath[sel][first] / 2.0)
    if not touching.any():
        return None
    keep_sample = touching[local]
    sel = sel[keep_sample]
    quads, density = _strips(
        x[keep_sample],
        y[keep_sample],
        ps.t_ms[sel],
        half=ps.swath[sel] / 2.0,
        litres=ps.litres[sel],
        pass_index=local[keep_sample],
        heading_s=p.heading_s,
    )
    sparse_samples, uncertainty_m2 = _sparse_ends(
        pf, ps, candidates[touching], (x, y), np.cumsum(lengths)[touching] - 1, p=p
    )
    fix = ps.fix[sel]
    fix_counts = np.bincount(
        np.where(fix < 0, len(FIX_QUALITIES), fix), minlength=len(FIX_QUALITIES) + 1
    )
    return _Batch(
        footprints=footprints[touching],
        quads=quads,
        density=density,
        litres=float(ps.litres[sel].sum()),
        fix_counts=fix_counts,
        sparse_samples=sparse_samples,
        uncertainty_m2=uncertainty_m2,
    )


def _sparse_ends(
    pf: PreparedField,
    ps: Passes,
    passes: IntArray,
    xy: tuple[FloatArray, FloatArray],
    last_local: IntArray,
    *,
    p: CoverageParams,
) -> tuple[int, float]:
    """(spray samples in sparse passes, ± m² of covered area) for passes touching a field.

    A pass is sparse when its mean sample step ``d`` exceeds ``dense_step_swaths`` swaths.
    Its footprint runs from its first to its last spray sample, but the sprayer may have
    opened anywhere in the step before the first and closed anywhere in the step after the
    last: each end is uncertain by ``swath x d``, counted where that end lies within
    ``d + swath/2`` of the field's target (an end far outside cannot move its covered area).
    ``xy`` are the batch's samples in the field's plane; ``last_local`` the index there of
    each pass's last sample.
    """
    x, y = xy
    step = ps.step_m[passes]
    swath = ps.swath[ps.start[passes]]
    sparse = step > p.dense_step_swaths * swath
    if not sparse.any():
        return 0, 0.0
    lengths = (ps.stop - ps.start)[passes]
    first_local = last_local - lengths + 1
    reach = (step + swath / 2.0)[sparse]
    ends = shapely.points(
        np.concatenate([x[first_local[sparse]], x[last_local[sparse]]]),
        np.concatenate([y[first_local[sparse]], y[last_local[sparse]]]),
    )
    near = shapely.dwithin(ends, pf.target, np.concatenate([reach, reach]))
    per_end = np.concatenate([(swath * step)[sparse]] * 2)
    return int(lengths[sparse].sum()), float(per_end[near].sum())


def pass_footprints(
    x: FloatArray,
    y: FloatArray,
    swath: FloatArray,
    pass_index: IntArray,
    *,
    n_pass: int,
    p: CoverageParams,
) -> Any:
    """One polygon per pass: simplified track buffered by swath/2, flat ends, round joins.

    A pass whose swath changes is cut into pieces of constant swath (sharing their end
    sample), buffered piecewise and unioned.
    """
    change = np.ones(len(x), dtype=bool)
    change[1:] = (pass_index[1:] != pass_index[:-1]) | (np.abs(np.diff(swath)) > 1e-6)
    piece = np.cumsum(change) - 1
    # Each piece also takes the first sample of the next piece of the same pass.
    first = np.flatnonzero(change)
    shared = first[1:][pass_index[first[1:]] == pass_index[first[1:] - 1]]
    idx = np.concatenate([np.arange(len(x)), shared])
    pid = np.concatenate([piece, piece[shared] - 1])
    order = np.argsort(pid * (len(x) + 1) + idx, kind="stable")
    idx, pid = idx[order], pid[order]
    counts = np.bincount(pid, minlength=int(piece[-1]) + 1)
    valid = counts[pid] >= 2
    idx, pid = idx[valid], pid[valid]
    piece_pass = pass_index[first]
    piece_half = swath[first] / 2.0
    out = np.array([_EMPTY] * n_pass, dtype=object)
    if len(idx) == 0:
        return out
    used, pid = np.unique(pid, return_inverse=True)
    lines = shapely.linestrings(np.column_stack([x[idx], y[idx]]), indices=pid)
    lines = shapely.simplify(lines, p.simplify_m, preserve_topology=False)
    polys = shapely.buffer(
        lines, piece_half[used], quad_segs=p.quad_segs, cap_style="flat", join_style="round"
    )
    owners = piece_pass[used]
    single = np.bincount(owners, minlength=n_pass) == 1
    simple = single[owners]
    out[owners[simple]] = polys[simple]
    for k in np.unique(owners[~simple]):
        out[k] = shapely.union_all(polys[owners == k])
    return out


def _strips(
    x: FloatArray,
    y: FloatArray,
    t_ms: FloatArray,
    *,
    half: FloatArray,
    litres: FloatArray,
    pass_index: IntArray,
    heading_s: float,
) -> tuple[FloatArray, FloatArray]:
    """Quads between consecutive samples of a pass, cut across the heading smoothed over
    ±``heading_s`` so that strips tile the swept band, and the dose (L/m²) on each.

    Sample i's litres are spread evenly over the strip from i to i+1. A strip whose cuts
    cross (a sharp turn) falls back to the rectangle of its own segment.
    """
    seg = (pass_index[1:] == pass_index[:-1]).nonzero()[0]
    starts = np.flatnonzero(np.r_[True, pass_index[1:] != pass_index[:-1]])
    lengths = np.diff(np.r_[starts, len(x)])
    owner = np.repeat(np.arange(len(starts)), lengths)
    t_rel = t_ms - t_ms[starts][owner]
    span = t_rel[starts + lengths - 1]
    key = t_rel + (np.cumsum(span + 1e7) - (span + 1e7))[owner]
    lo = np.maximum(np.searchsorted(key, key - heading_s * 1000.0, side="left"), starts[owner])
    hi = np.searchsorted(key, key + heading_s * 1000.0, side="right") - 1
    hi = np.minimum(hi, (starts + lengths - 1)[owner])
    hx, hy = x[hi] - x[lo], y[hi] - y[lo]
    norm = np.hypot(hx, hy)
    with np.errstate(invalid="ignore", divide="ignore"):
        vnx, vny = np.where(norm > 0, -hy / norm, 0.0), np.where(norm > 0, hx / norm, 0.0)
    a, b = seg, seg + 1
    quads = np.empty((len(seg), 4, 2))
    quads[:, 0, 0], quads[:, 0, 1] = x[a] + vnx[a] * half[a], y[a] + vny[a] * half[a]
    quads[:, 1, 0], quads[:, 1, 1] = x[b] + vnx[b] * half[a], y[b] + vny[b] * half[a]
    quads[:, 2, 0], quads[:, 2, 1] = x[b] - vnx[b] * half[a], y[b] - vny[b] * half[a]
    quads[:, 3, 0], quads[:, 3, 1] = x[a] - vnx[a] * half[a], y[a] - vny[a] * half[a]
    folded = ~_convex(quads)
    if folded.any():
        dx, dy = x[b] - x[a], y[b] - y[a]
        length = np.hypot(dx, dy)
        with np.errstate(invalid="ignore", divide="ignore"):
            nx = np.where(length > 0, -dy / length, 0.0)[folded]
            ny = np.where(length > 0, dx / length, 0.0)[folded]
        fa, fb, h = a[folded], b[folded], half[a][folded]
        quads[folded, 0] = np.column_stack([x[fa] + nx * h, y[fa] + ny * h])
        quads[folded, 1] = np.column_stack([x[fb] + nx * h, y[fb] + ny * h])
        quads[folded, 2] = np.column_stack([x[fb] - nx * h, y[fb] - ny * h])
        quads[folded, 3] = np.column_stack([x[fa] - nx * h, y[fa] - ny * h])
    # Shoelace area of each strip (positive for the vertex order above, folded ones less).
    qx, qy = quads[:, :, 0], quads[:, :, 1]
    area = np.abs(0.5 * (qx * np.roll(qy, -1, axis=1) - np.roll(qx, -1, axis=1) * qy).sum(axis=1))
    area = np.where(area > 1e-9, area, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        density = np.where(area > 0, litres[seg] / area, 0.0)
    # The last sample of a pass sprays past the footprint's end; its litres are spread over
    # the pass in proportion to area, so litres stay conserved without a spike at the end.
    strip_pass = pass_index[seg]
    last = np.ones(len(x), dtype=bool)
    last[:-1] = pass_index[1:] != pass_index[:-1]
    tail = np.zeros(int(pass_index.max()) + 1 if len(x) else 0)
    tail[pass_index[last]] = litres[last]
    pass_area = np.bincount(strip_pass, weights=area, minlength=len(tail))
    with np.errstate(invalid="ignore", divide="ignore"):
        extra = np.where(pass_area > 0, tail / pass_area, 0.0)
    density += np.where(area > 0, extra[strip_pass], 0.0)
    return quads, density


def _convex(quads: FloatArray) -> BoolArray:
    """Quads whose four corner turns all have the same (non-zero) sign."""
    v = quads
    e = np.roll(v, -1, axis=1) - v
    turn = (
        e[:, :, 0] * np.roll(e, -1, axis=1)[:, :, 1] - e[:, :, 1] * np.roll(e, -1, axis=1)[:, :, 0]
    )
    return np.asarray(np.all(turn > 0, axis=1) | np.all(turn < 0, axis=1))


def _merge(pf: PreparedField, state: FieldCoverage, b: _Batch) -> FieldCoverage:
    new = b.footprints
    inside = shapely.intersection(new, pf.target)
    tree = shapely.STRtree(inside)
    left, right = tree.query(inside, predicate="intersects")
    pair = left < right
    pieces = [state.overlap]
    if pair.any():
        pieces.extend(shapely.intersection(inside[left[pair]], inside[right[pair]]))
    new_union = shapely.disjoint_subset_union_all(new)
    old_inside = shapely.intersection(state.footprint, pf.target)
    if not old_inside.is_empty:
        pieces.append(shapely.intersection(old_inside, shapely.intersection(new_union, pf.target)))
    overlap = polygonal_or_empty(shapely.union_all([g for g in pieces if not g.is_empty]))
    dose, hits = paint_quads(pf.grid, b.quads, [b.density, np.ones(len(b.density))])
    return replace(
        state,
        footprint=shapely.union(state.footprint, new_union),
        overlap=overlap,
        dose=state.dose + dose,
        hits=state.hits + hits,
        passes=state.passes + len(new),
        applied_l=state.applied_l + b.litres,
        fix_counts=tuple(int(a + c) for a, c in zip(state.fix_counts, b.fix_counts, strict=True)),
        sparse_samples=state.sparse_samples + b.sparse_samples,
        uncertainty_m2=state.uncertainty_m2 + b.uncertainty_m2,
    )


def rfc7946_polygons(geometry: Any) -> Any:
    """WGS84 polygons as RFC 7946 wants them: coordinates on the 1e-7 degree grid (about
    1 cm; ``GEOJSON_DECIMALS``), valid (the move to degrees and the rounding can make rings
    cross or touch, so the geometry is repaired, snapped with a valid-output precision
    model and checked again), no part of zero area, exterior rings counter-clockwise and
    holes clockwise."""
    grid = 10.0**-GEOJSON_DECIMALS
    out = _valid_polygons(geometry)
    for _ in range(3):
        try:
            out = shapely.set_precision(out, grid)
        except shapely.errors.GEOSException:
            out = shapely.set_precision(out, grid, mode="pointwise")
        out = shapely.transform(out, lambda c: np.round(c, GEOJSON_DECIMALS))
        if out.is_valid:
            break
        out = _valid_polygons(out)
    parts = [p for p in shapely.get_parts(out) if p.area > 0.0]
    if not parts:
        return _EMPTY
    merged = parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)
    return shapely.orient_polygons(merged, exterior_cw=False)


def _valid_polygons(geometry: Any) -> Any:
    """The polygon parts of a geometry, repaired when it is not valid."""
    return polygonal_or_empty(geometry if geometry.is_valid else shapely.make_valid(geometry))


def polygonal_or_empty(geometry: Any) -> Any:
    """The polygon parts of a geometry, or an empty polygon (never None)."""
    found = polygonal(geometry)
    return _EMPTY if found is None else found


def _positioning(fix_counts: Sequence[int], sparse_samples: int = 0) -> str:
    total = sum(fix_counts)
    if total and sparse_samples > SPARSE_SHARE * total:
        return "sparse"
    unknown = fix_counts[-1]
    if total in (0, unknown):
        return "unknown"
    rtk = fix_counts[FIX_QUALITIES.index("rtk_fixed")]
    return "rtk" if rtk >= RTK_SHARE * (total - unknown) and unknown == 0 else "gnss"
