"""What one flight did: distances, litres, footprint, fields touched, data quality (pure).

Litres, spray passes and footprints follow the coverage engine's definitions
(``fields.coverage``), computed by the engine's own code, so a flight's litres and a field's
coverage never disagree. docs/flights.md states every rule.

A field's running coverage takes this flight later without re-reading samples: the flight's
own ``FieldCoverage`` per touched field is kept (``encode_state``/``decode_state`` make it
JSON-ready) and folded in with ``merge_states``.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
import shapely

from fields.coverage import (
    CoverageEngine,
    CoverageInputError,
    CoverageParams,
    FieldCoverage,
    SampleArrays,
    field_targets,
    index_ranges,
    pass_footprints,
    polygonal_or_empty,
    samples_from_records,
    split_passes,
    zone_applies,
)
from fields.projection import LocalPlane
from fields.registry import M2_PER_HA, SAO_M2
from flights.jobs import JobInfo
from flights.segment import Flight
from storage.records import FIX_QUALITIES

FloatArray = npt.NDArray[np.float64]
Quality = Literal["good", "gaps", "poor_fix", "no_data"]

#: Samples at or below this height (metres above ground) are on the ground.
AIRBORNE_ALT_M: Final = 0.5
#: More than this share of the expected samples missing (``seq`` gaps) flags ``gaps``.
MISSING_SHARE_LIMIT: Final = 0.01
#: More than this share of samples with fix ``none`` or ``2d`` flags ``poor_fix``.
POOR_FIX_SHARE_LIMIT: Final = 0.05
POOR_FIXES: Final = ("none", "2d")
#: A battery reading this much above the previous one is a fresh battery, not noise.
BATTERY_SWAP_RISE_PCT: Final = 5.0
#: ``error`` event codes that mean the drone started a return-to-home (docs/telemetry.md):
#: it lasts until the flight's landing (or end).
RTH_CODES: Final = ("rth", "return_to_home")
#: Most positions kept of the spraying done during return-to-home (thinned by stride).
MAX_RTH_POINTS: Final = 500
#: Version of the ``encode_state`` document.
STATE_VERSION: Final = 1

_EMPTY: Final = shapely.Polygon()


class FlightSummaryError(ValueError):
    """A flight cannot be summarized as given (the message names the flight and sample)."""


class StateMismatchError(ValueError):
    """A stored coverage state no longer fits its field (the field changed): recompute."""


@dataclass(frozen=True, slots=True)
class FieldShare:
    """What one flight did to one field, by the coverage engine's definitions."""

    field_id: str
    covered_ha: float
    coverage_pct: float
    overlap_ha: float
    off_target_ha: float
    applied_l: float
    passes: int
    positioning: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; areas also in sào Bắc Bộ."""
        return {
            "field_id": self.field_id,
            "covered_ha": round(self.covered_ha, 6),
            "covered_sao": round(self.covered_ha * M2_PER_HA / SAO_M2, 3),
            "coverage_pct": round(self.coverage_pct, 3),
            "overlap_ha": round(self.overlap_ha, 6),
            "off_target_ha": round(self.off_target_ha, 6),
            "applied_l": round(self.applied_l, 3),
            "passes": self.passes,
            "positioning": self.positioning,
        }


@dataclass(frozen=True, slots=True)
class FlightSummary:
    """One flight's figures; ``None`` where the samples did not carry the value."""

    flight_id: str
    coop: str
    drone: str
    start_ms: int
    end_ms: int
    start_reason: str
    end_reason: str
    duration_s: float
    distance_flown_m: float
    distance_sprayed_m: float
    sprayed_ha: float
    sprayed_in_fields_ha: float
    sprayed_outside_fields_ha: float
    sprayed_no_spray_ha: float
    applied_l: float
    spray_passes: int
    speed_mean_mps: float | None
    speed_max_mps: float | None
    alt_mean_m: float | None
    alt_min_m: float | None
    alt_max_m: float | None
    battery_start_pct: float | None
    battery_end_pct: float | None
    battery_used_pct: float | None
    battery_swaps: int
    refills: int
    samples_received: int
    samples_missing: int | None
    samples_duplicated: int
    seq_resets: int
    max_gap_s: float
    fix_mix: Mapping[str, int]
    quality: Quality
    quality_reasons: tuple[str, ...]
    fields: tuple[FieldShare, ...] = field(default=())
    jobs: tuple[str, ...] = ()  # the jobs it served (flights.jobs), where announced
    job_fields: tuple[str, ...] = ()  # the fields those jobs named
    #: Seconds of spraying during a return-to-home, and where (lon, lat; thinned).
    rth_spray_s: float = 0.0
    rth_spray_track: tuple[tuple[float, float], ...] = ()

    @property
    def is_open(self) -> bool:
        """Whether the flight had not ended yet when summarized."""
        return self.end_reason == "open"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, times as epoch ms and RFC 3339 UTC, figures rounded for people."""

        def r(value: float | None, digits: int) -> float | None:
            return None if value is None else round(value, digits)

        return {
            "id": self.flight_id,
            "coop": self.coop,
            "drone": self.drone,
            "start": _rfc3339(self.start_ms),
            "end": _rfc3339(self.end_ms),
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "start_reason": self.start_reason,
            "end_reason": self.end_reason,
            "open": self.is_open,
            "duration_s": round(self.duration_s, 3),
            "distance_flown_m": round(self.distance_flown_m, 2),
            "distance_sprayed_m": round(self.distance_sprayed_m, 2),
            "sprayed_ha": round(self.sprayed_ha, 6),
            "sprayed_sao": round(self.sprayed_ha * M2_PER_HA / SAO_M2, 3),
            "sprayed_in_fields_ha": round(self.sprayed_in_fields_ha, 6),
            "sprayed_outside_fields_ha": round(self.sprayed_outside_fields_ha, 6),
            "sprayed_no_spray_ha": round(self.sprayed_no_spray_ha, 6),
            "applied_l": round(self.applied_l, 3),
            "spray_passes": self.spray_passes,
            "speed_mean_mps": r(self.speed_mean_mps, 3),
            "speed_max_mps": r(self.speed_max_mps, 3),
            "alt_mean_m": r(self.alt_mean_m, 3),
            "alt_min_m": r(self.alt_min_m, 3),
            "alt_max_m": r(self.alt_max_m, 3),
            "battery_start_pct": r(self.battery_start_pct, 1),
            "battery_end_pct": r(self.battery_end_pct, 1),
            "battery_used_pct": r(self.battery_used_pct, 1),
            "battery_swaps": self.battery_swaps,
            "refills": self.refills,
            "samples_received": self.samples_received,
            "samples_missing": self.samples_missing,
            "samples_duplicated": self.samples_duplicated,
            "seq_resets": self.seq_resets,
            "max_gap_s": round(self.max_gap_s, 3),
            "fix_mix": dict(self.fix_mix),
            "quality": self.quality,
            "quality_reasons": list(self.quality_reasons),
            "fields": [f.to_dict() for f in self.fields],
            "jobs": list(self.jobs),
            "job_fields": list(self.job_fields),
            "rth_spray_s": round(self.rth_spray_s, 3),
            "rth_spray_track": [list(p) for p in self.rth_spray_track],
        }


@dataclass(frozen=True, slots=True, eq=False)
class FlightResult:
    """A summary plus, per touched field, this flight's own running coverage state."""

    summary: FlightSummary
    field_states: Mapping[str, FieldCoverage]


def summarize_flight(
    flight: Flight,
    engine: CoverageEngine | None = None,
    *,
    params: CoverageParams | None = None,
    job: JobInfo | None = None,
) -> FlightResult:
    """Summarize one flight; with an ``engine``, also its coverage of each field it touched.

    ``job`` is what the drone's job events say it was sent to do (``flights.jobs.job_of``).

    ``params`` (default: the engine's, else ``CoverageParams()``) decide passes, litres and
    footprints; a spraying sample without ``swath_m`` needs ``params.default_swath_m``.
    """
    p = params or (engine.params if engine is not None else CoverageParams())
    try:
        return _summarize(flight, engine, p, job or JobInfo())
    except CoverageInputError as err:
        raise FlightSummaryError(f"flight {flight.id}: {err}") from err


def _summarize(
    flight: Flight, engine: CoverageEngine | None, p: CoverageParams, job: JobInfo
) -> FlightResult:
    samples = flight.samples
    n = len(samples)
    arrays = samples_from_records(samples)
    lon, lat = arrays.lon, arrays.lat
    plane = LocalPlane.around(float(lon.mean()), float(lat.mean())) if n else None
    x, y = plane.forward(lon, lat) if plane else (np.zeros(0), np.zeros(0))
    seg_m = np.hypot(np.diff(x), np.diff(y))
    dt_s = np.diff(arrays.ts_ms).astype(np.float64) / 1000.0

    footprint, passes_m, litres, n_pass = _spray(arrays, seg_m, plane, p)
    in_f, out_f, no_sp = _footprint_split(footprint, plane, engine, flight.coop)
    states = engine.add({}, arrays) if engine is not None and n else {}
    shares = tuple(_share(engine, s) for s in states.values()) if engine else ()

    alt = _column(samples, "alt_m")
    airborne = ~(alt <= AIRBORNE_ALT_M)  # unknown height counts as airborne
    speed = _speeds(_column(samples, "speed_mps"), seg_m, dt_s)
    battery = _column(samples, "battery_pct")
    missing, dups, resets = _seq_stats(samples)
    fix_mix = _fix_mix(arrays.fix)
    max_gap = float(dt_s.max()) if len(dt_s) else 0.0
    quality, reasons = _quality(n, missing, max_gap, fix_mix, p)
    events = (*flight.ground_events, *flight.events)
    air_alt = alt[airborne & np.isfinite(alt)]
    air_speed = speed[airborne & np.isfinite(speed)]
    known_batt = battery[np.isfinite(battery)]
    rth_s, rth_track = rth_spraying(flight)

    summary = FlightSummary(
        flight_id=flight.id,
        coop=flight.coop,
        drone=flight.drone,
        start_ms=flight.start_ms,
        end_ms=flight.end_ms,
        start_reason=flight.start_reason,
        end_reason=flight.end_reason,
        duration_s=flight.duration_s,
        distance_flown_m=float(seg_m.sum()),
        distance_sprayed_m=passes_m,
        sprayed_ha=float(footprint.area) / M2_PER_HA,
        sprayed_in_fields_ha=in_f / M2_PER_HA,
        sprayed_outside_fields_ha=out_f / M2_PER_HA,
        sprayed_no_spray_ha=no_sp / M2_PER_HA,
        applied_l=litres,
        spray_passes=n_pass,
        speed_mean_mps=float(air_speed.mean()) if air_speed.size else None,
        speed_max_mps=float(air_speed.max()) if air_speed.size else None,
        alt_mean_m=float(air_alt.mean()) if air_alt.size else None,
        alt_min_m=float(air_alt.min()) if air_alt.size else None,
        alt_max_m=float(air_alt.max()) if air_alt.size else None,
        battery_start_pct=float(known_batt[0]) if known_batt.size else None,
        battery_end_pct=float(known_batt[-1]) if known_batt.size else None,
        battery_used_pct=battery_used(known_batt) if known_batt.size else None,
        battery_swaps=sum(e.type == "battery_swap" for e in events),
        refills=sum(e.type == "refill" for e in events),
        samples_received=n,
        samples_missing=missing,
        samples_duplicated=dups + flight.duplicates,
        seq_resets=resets,
        max_gap_s=max_gap,
        fix_mix=fix_mix,
        quality=quality,
        quality_reasons=reasons,
        fields=tuple(sorted(shares, key=lambda s: s.field_id)),
        jobs=job.jobs,
        job_fields=job.fields,
        rth_spray_s=rth_s,
        rth_spray_track=rth_track,
    )
    return FlightResult(summary, states)


def rth_spraying(flight: Flight) -> tuple[float, tuple[tuple[float, float], ...]]:
    """Seconds the sprayer was open during a return-to-home (from an ``error`` event whose
    ``code`` is one of ``RTH_CODES`` to the flight's landing or end), counted between
    consecutive spraying samples, and their positions (lon, lat to 1e-7 degree, thinned to
    ``MAX_RTH_POINTS``)."""
    starts = [
        e.ts_ms
        for e in flight.events
        if e.type == "error" and str(e.attrs.get("code", "")).lower() in RTH_CODES
    ]
    if not starts:
        return 0.0, ()
    since = min(starts)
    during = [s for s in flight.samples if s.ts_ms >= since and s.spraying]
    seconds = 0.0
    previous: int | None = None
    for s in flight.samples:
        if s.ts_ms < since:
            continue
        if s.spraying and previous is not None:
            seconds += (s.ts_ms - previous) / 1000.0
        previous = s.ts_ms if s.spraying else None
    stride = max(1, -(-len(during) // MAX_RTH_POINTS))
    kept = during[::stride]
    return seconds, tuple((round(s.lon, 7), round(s.lat, 7)) for s in kept)


def _spray(
    arrays: SampleArrays,
    seg_m: FloatArray,
    plane: LocalPlane | None,
    p: CoverageParams,
) -> tuple[Any, float, float, int]:
    """(footprint in ``plane``, metres flown within passes, litres, pass count)."""
    if plane is None:
        return _EMPTY, 0.0, 0.0, 0
    ps = split_passes(arrays, p)  # samples are already sorted and unique, so indices match
    litres = float(ps.litres.sum())
    if len(ps.start) == 0:
        return _EMPTY, 0.0, litres, 0
    lengths = ps.stop - ps.start
    sel = index_ranges(ps.start, lengths)
    owner = np.repeat(np.arange(len(ps.start)), lengths)
    pass_of = np.full(len(arrays), -1, dtype=np.int64)
    pass_of[sel] = owner
    within = (pass_of[1:] == pass_of[:-1]) & (pass_of[1:] >= 0)
    sx, sy = plane.forward(ps.lon[sel], ps.lat[sel])
    fps = pass_footprints(sx, sy, ps.swath[sel], owner, n_pass=len(ps.start), p=p)
    fps = fps[~shapely.is_empty(fps)]
    footprint = shapely.disjoint_subset_union_all(fps) if len(fps) else _EMPTY
    return footprint, float(seg_m[within].sum()), litres, len(ps.start)


def _footprint_split(
    footprint: Any, plane: LocalPlane | None, engine: CoverageEngine | None, coop: str
) -> tuple[float, float, float]:
    """Footprint area (m²) inside registered fields, outside them, and in no-spray zones.

    Inside fields means on a field's target (the field minus the zones that apply to it);
    in a zone means in a zone that binds the drone's cooperative (commune-wide or its own)
    and on no field's target.
    """
    total = float(footprint.area)
    if engine is None or plane is None or footprint.is_empty:
        return 0.0, total, 0.0
    minx, miny, maxx, maxy = footprint.bounds
    lon, lat = plane.inverse([minx, maxx, maxx, minx], [miny, miny, maxy, maxy])
    region = shapely.box(lon.min() - 1e-4, lat.min() - 1e-4, lon.max() + 1e-4, lat.max() + 1e-4)

    fields, zones = engine.near(region)
    fields_m = field_targets(fields, zones, plane)
    binding = [z.geometry for z in zones if zone_applies(z, coop)]
    no_spray = plane.to_plane(shapely.union_all(binding)) if binding else _EMPTY
    inside = float(shapely.intersection(footprint, fields_m).area)
    in_zone = float(shapely.difference(shapely.intersection(footprint, no_spray), fields_m).area)
    return inside, max(total - inside - in_zone, 0.0), in_zone


def _share(engine: CoverageEngine, state: FieldCoverage) -> FieldShare:
    r = engine.result(state)
    return FieldShare(
        field_id=r.field_id,
        covered_ha=r.covered_ha,
        coverage_pct=r.coverage_pct,
        overlap_ha=r.overlap_ha,
        off_target_ha=r.off_target_ha,
        applied_l=r.applied_l,
        passes=r.passes,
        positioning=r.positioning,
    )


def _column(samples: Sequence[Any], name: str) -> FloatArray:
    """An optional numeric column, NaN where a sample has none."""
    nan = float("nan")
    values = (getattr(s, name) for s in samples)
    return np.fromiter(
        (nan if v is None else v for v in values), dtype=np.float64, count=len(samples)
    )


def _speeds(reported: FloatArray, seg_m: FloatArray, dt_s: FloatArray) -> FloatArray:
    """Reported speed where the drone sent one, else distance over time from the previous
    sample (the first sample takes the first segment's speed)."""
    if len(reported) < 2:
        return reported
    with np.errstate(invalid="ignore", divide="ignore"):
        derived = np.where(dt_s > 0, seg_m / dt_s, np.nan)
    derived = np.concatenate([derived[:1], derived])
    return np.where(np.isfinite(reported), reported, derived)


def battery_used(battery_pct: npt.ArrayLike) -> float:
    """Percentage points used: first minus last, summed over each battery when readings
    jump up by more than ``BATTERY_SWAP_RISE_PCT`` (a swap inside the flight)."""
    b = np.asarray(battery_pct, dtype=np.float64)
    if b.size == 0:
        return 0.0
    cut = np.flatnonzero(np.diff(b) > BATTERY_SWAP_RISE_PCT) + 1
    firsts = np.concatenate([[0], cut])
    lasts = np.concatenate([cut - 1, [len(b) - 1]])
    return float((b[firsts] - b[lasts]).sum())


def seq_stats(seq: npt.ArrayLike) -> tuple[int, int, int]:
    """(missing, duplicated, resets) of ``seq`` values in time order.

    A step up by k > 1 is k - 1 missing samples; a value seen before is a duplicate; a step
    down to a value not seen before is a counter reset (drone restart), not a loss.
    """
    s = np.asarray(seq, dtype=np.int64)
    if s.size == 0:
        return 0, 0, 0
    d = np.diff(s)
    missing = int((d[d > 1] - 1).sum())
    _, first = np.unique(s, return_index=True)
    seen_before = np.ones(len(s), dtype=bool)
    seen_before[first] = False
    resets = int(np.count_nonzero((d < 0) & ~seen_before[1:]))
    return missing, int(np.count_nonzero(seen_before)), resets


def _seq_stats(samples: Sequence[Any]) -> tuple[int | None, int, int]:
    seq = [s.seq for s in samples if s.seq is not None]
    if not seq:
        return None, 0, 0
    missing, dups, resets = seq_stats(seq)
    return missing, dups, resets


def _fix_mix(fix: npt.NDArray[np.int64]) -> dict[str, int]:
    counts = np.bincount(np.where(fix < 0, len(FIX_QUALITIES), fix), minlength=7)
    names = (*FIX_QUALITIES, "unknown")
    return {name: int(c) for name, c in zip(names, counts, strict=True) if c}


def _quality(
    n: int, missing: int | None, max_gap_s: float, fix_mix: Mapping[str, int], p: CoverageParams
) -> tuple[Quality, tuple[str, ...]]:
    """The data-quality flag and every reason behind it (docs/flights.md, "Data quality")."""
    if n == 0:
        return "no_data", ("no samples between takeoff and landing",)
    reasons: list[str] = []
    flag: Quality = "good"
    expected = n + (missing or 0)
    if missing and missing > MISSING_SHARE_LIMIT * expected:
        reasons.append(
            f"{missing} of {expected} samples missing ({100.0 * missing / expected:.1f} %, "
            f"limit {100.0 * MISSING_SHARE_LIMIT:g} %)"
        )
        flag = "gaps"
    if max_gap_s > p.max_gap_s:
        reasons.append(
            f"longest silence {max_gap_s:.1f} s (over {p.max_gap_s:g} s a spray pass is broken)"
        )
        flag = "gaps"
    poor = sum(fix_mix.get(q, 0) for q in POOR_FIXES)
    if poor > POOR_FIX_SHARE_LIMIT * n:
        reasons.append(
            f"{poor} of {n} samples with fix {'/'.join(POOR_FIXES)} "
            f"(limit {100.0 * POOR_FIX_SHARE_LIMIT:g} %)"
        )
        if flag == "good":
            flag = "poor_fix"
    return flag, tuple(reasons)


def _rfc3339(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000.0, tz=UTC).isoformat(timespec="milliseconds")


# --- Running coverage states: keep a flight's share, fold it into a field later ---------


def merge_states(engine: CoverageEngine, a: FieldCoverage, b: FieldCoverage) -> FieldCoverage:
    """One field's running result from two disjoint sets of flights (order does not matter).

    Equal to ``engine.add`` of the second set's samples onto the first's state: overlap is
    both overlaps plus where the two footprints meet inside the field.
    """
    if a.field_id != b.field_id:
        raise ValueError(f"cannot merge coverage of field {a.field_id!r} into {b.field_id!r}")
    pf = engine.fields[a.field_id]
    if a.dose.shape != pf.grid.zeros().shape or b.dose.shape != a.dose.shape:
        raise StateMismatchError(
            f"field {a.field_id}: coverage grids {a.dose.shape} and {b.dose.shape} do not "
            f"match the field's {(pf.grid.ny, pf.grid.nx)}; recompute with flights rebuild"
        )
    both = shapely.intersection(
        shapely.intersection(a.footprint, pf.target), shapely.intersection(b.footprint, pf.target)
    )
    pieces = [g for g in (a.overlap, b.overlap, both) if not g.is_empty]
    return replace(
        a,
        footprint=shapely.union(a.footprint, b.footprint),
        overlap=polygonal_or_empty(shapely.union_all(pieces)) if pieces else _EMPTY,
        dose=a.dose + b.dose,
        hits=a.hits + b.hits,
        passes=a.passes + b.passes,
        applied_l=a.applied_l + b.applied_l,
        fix_counts=tuple(x + y for x, y in zip(a.fix_counts, b.fix_counts, strict=True)),
        sparse_samples=a.sparse_samples + b.sparse_samples,
        uncertainty_m2=a.uncertainty_m2 + b.uncertainty_m2,
    )


def encode_state(engine: CoverageEngine, state: FieldCoverage) -> dict[str, Any]:
    """A JSON-ready document of one field's state: geometry as WKB, the rasters' touched
    window zlib-compressed (dose float64 exact, hit counts uint16), all base64.

    The field's grid is recorded so that ``decode_state`` refuses a state whose field has
    since been redrawn.
    """
    grid = engine.fields[state.field_id].grid
    touched = (state.hits != 0) | (state.dose != 0)
    rows, cols = np.flatnonzero(touched.any(axis=1)), np.flatnonzero(touched.any(axis=0))
    r0, c0 = (int(rows[0]), int(cols[0])) if rows.size else (0, 0)
    r1, c1 = (int(rows[-1]) + 1, int(cols[-1]) + 1) if rows.size else (0, 0)
    hits = state.hits[r0:r1, c0:c1]
    if hits.size and (hits.max() > np.iinfo(np.uint16).max or (hits != np.round(hits)).any()):
        raise ValueError(f"field {state.field_id}: hit counts are not small whole numbers")
    return {
        "v": STATE_VERSION,
        "field_id": state.field_id,
        "grid": [grid.x0, grid.y0, grid.cell, grid.nx, grid.ny],
        "window": [r0, c0, r1, c1],
        "footprint": _b64(shapely.to_wkb(state.footprint)),
        "overlap": _b64(shapely.to_wkb(state.overlap)),
        "dose": _b64(zlib.compress(state.dose[r0:r1, c0:c1].astype("<f8").tobytes())),
        "hits": _b64(zlib.compress(hits.astype("<u2").tobytes())),
        "passes": state.passes,
        "applied_l": state.applied_l,
        "fix_counts": list(state.fix_counts),
        "sparse_samples": state.sparse_samples,
        "uncertainty_m2": state.uncertainty_m2,
    }


def decode_state(engine: CoverageEngine, doc: Mapping[str, Any]) -> FieldCoverage:
    """The state ``encode_state`` wrote, checked against the engine's current field."""
    fid = str(doc.get("field_id"))
    if doc.get("v") != STATE_VERSION:
        raise StateMismatchError(f"field {fid}: coverage state version {doc.get('v')!r} unknown")
    if fid not in engine.fields:
        raise StateMismatchError(f"field {fid}: not in the registry any more")
    grid = engine.fields[fid].grid
    want = [grid.x0, grid.y0, grid.cell, grid.nx, grid.ny]
    if list(doc["grid"]) != want:
        raise StateMismatchError(
            f"field {fid}: stored coverage grid {doc['grid']} differs from the field's {want} "
            "(the field was redrawn); recompute with flights rebuild"
        )
    r0, c0, r1, c1 = (int(v) for v in doc["window"])
    shape = (r1 - r0, c1 - c0)
    dose, hits = grid.zeros(), grid.zeros()
    raw_dose = zlib.decompress(base64.b64decode(doc["dose"]))
    raw_hits = zlib.decompress(base64.b64decode(doc["hits"]))
    dose[r0:r1, c0:c1] = np.frombuffer(raw_dose, dtype="<f8").reshape(shape)
    hits[r0:r1, c0:c1] = np.frombuffer(raw_hits, dtype="<u2").reshape(shape)
    return FieldCoverage(
        field_id=fid,
        footprint=shapely.from_wkb(base64.b64decode(doc["footprint"])),
        overlap=shapely.from_wkb(base64.b64decode(doc["overlap"])),
        dose=dose,
        hits=hits,
        passes=int(doc["passes"]),
        applied_l=float(doc["applied_l"]),
        fix_counts=tuple(int(c) for c in doc["fix_counts"]),
        # States stored before sparse tracks were told apart hold neither: dense, 0 m².
        sparse_samples=int(doc.get("sparse_samples", 0)),
        uncertainty_m2=float(doc.get("uncertainty_m2", 0.0)),
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
