"""Compliance flags of a diary entry (pure): where a job's spraying on a field broke a rule.

Each flag has a ``code``, a Vietnamese and an English message, and ``where`` it happened as
a GeoJSON geometry (WGS84, RFC 7946; ``None`` when the rule has no place). The rules and
their defaults (``ComplianceParams``):

- ``no_spray_buffer``: spray within ``buffer_m`` (15 m: drift over rice at 1-3 m height
  reaches 12-19 m) of a no-spray zone that binds the field (water, houses, beehives); the
  place is the sprayed ground inside the buffer (the zone itself included);
- ``off_target``: spray around the field that landed on no registered field, more than
  ``off_target_tolerance_m2`` (25 m²);
- ``not_job_field``: the job sprayed this field although it named other fields, more than
  ``off_target_tolerance_m2`` (drift or overshoot onto a neighbour's crop);
- ``dose_deviation``: applied L/ha more than ``dose_tolerance_pct`` (±20 %) from the
  planned dose;
- ``rate_cv``: the rate's coefficient of variation over the covered cells above
  ``cv_limit_pct`` (25 %: an unacceptable swath);
- ``wind``: the job reported wind above ``wind_limit_mps`` (3.4 m/s, the top of the "light"
  class);
- ``phi_conflict``: sprayed before an earlier product's safe-harvest date on the field.

``attribute`` says which of the entry's flights each flag concerns (``flights``, ``scope``):
a flag with a place, the flights whose own spray lies in it; a flag judged over the whole
job (dose, deposit CV, the job's wind, PHI, the job's details), every flight of the job.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import shapely
from shapely.geometry import mapping

from fields.coverage import (
    CoverageEngine,
    FieldCoverage,
    polygonal_or_empty,
    rfc7946_polygons,
    zone_applies,
)
from fields.projection import LocalPlane

#: Pieces of flagged ground smaller than this (m²) are GNSS noise, not a place.
MIN_FLAG_M2: Final = 0.5


@dataclass(frozen=True, slots=True)
class ComplianceParams:
    """The thresholds of the rules (docs/diary.md, "Compliance flags")."""

    buffer_m: float = 15.0
    off_target_tolerance_m2: float = 25.0
    dose_tolerance_pct: float = 20.0
    cv_limit_pct: float = 25.0
    wind_limit_mps: float = 3.4

    @classmethod
    def of(cls, rules: Mapping[str, float]) -> ComplianceParams:
        """The defaults with a cooperative's own thresholds laid over them (unknown names
        ignored: they were checked when set)."""
        known = {k: float(v) for k, v in rules.items() if k in RULE_RANGES}
        return cls(**known)


#: Each threshold a cooperative may set, with its accepted range (inclusive).
RULE_RANGES: Final[dict[str, tuple[float, float]]] = {
    "buffer_m": (0.0, 200.0),
    "off_target_tolerance_m2": (0.0, 10_000.0),
    "dose_tolerance_pct": (1.0, 100.0),
    "cv_limit_pct": (1.0, 200.0),
    "wind_limit_mps": (0.5, 30.0),
}


def check_rules(rules: Mapping[str, float]) -> str | None:
    """Why these thresholds cannot be set, or ``None``."""
    for name, value in rules.items():
        if name not in RULE_RANGES:
            return f"unknown rule {name!r}; the rules are {', '.join(RULE_RANGES)}"
        lo, hi = RULE_RANGES[name]
        if not lo <= value <= hi:
            return f"{name} {value:g} is not in {lo:g}..{hi:g}"
    return None


@dataclass(frozen=True, slots=True)
class Places:
    """The flagged ground of one entry, in the field's metric plane."""

    plane: LocalPlane
    covered: Any
    off_target: Any
    near_zone: Any


def places(engine: CoverageEngine, state: FieldCoverage, params: ComplianceParams) -> Places:
    """Where the merged spraying of one entry lies: covered part of the field, off-target
    spray around it, and spray within the buffer of the zones that bind the field."""
    pf = engine.fields[state.field_id]
    geometry = engine.geometry(state)
    plane = pf.field.plane
    near_zone: Any = shapely.Polygon()
    if not state.footprint.is_empty:
        minx, miny, maxx, maxy = (float(v) for v in state.footprint.bounds)
        pad = params.buffer_m
        lon, lat = plane.inverse(
            [minx - pad, maxx + pad, maxx + pad, minx - pad],
            [miny - pad, miny - pad, maxy + pad, maxy + pad],
        )
        region = shapely.box(lon.min(), lat.min(), lon.max(), lat.max())
        _, zones = engine.near(region)
        binding = [z.geometry for z in zones if zone_applies(z, pf.field.coop)]
        if binding:
            zone_m = plane.to_plane(shapely.union_all(binding))
            near_zone = polygonal_or_empty(
                shapely.intersection(state.footprint, shapely.buffer(zone_m, params.buffer_m))
            )
    return Places(plane, geometry.covered, geometry.off_target, near_zone)


def _vi(iso: Any) -> str:
    """An ISO date as Vietnamese write it (dd/mm/yyyy)."""
    y, _, rest = str(iso).partition("-")
    m, _, d = rest.partition("-")
    return f"{d}/{m}/{y}" if d else str(iso)


def _where(plane: LocalPlane, geom: Any) -> dict[str, Any] | None:
    if geom is None or geom.is_empty or geom.area < MIN_FLAG_M2:
        return None
    wgs = rfc7946_polygons(plane.to_wgs84(geom))
    return None if wgs.is_empty else dict(mapping(wgs))


def _flag(
    code: str, vi: str, en: str, where: dict[str, Any] | None, **extra: Any
) -> dict[str, Any]:
    return {"code": code, "message_vi": vi, "message_en": en, "where": where, **extra}


#: Flags whose place is made of the flights' spray: each concerns the flights whose own
#: footprint lies in it. ``rth_spray`` concerns the flights that sprayed during a
#: return-to-home; every other flag is judged over the whole job.
PLACE_CODES: Final = ("no_spray_buffer", "off_target", "not_job_field")


def attribute(
    flags: Sequence[Mapping[str, Any]],
    flights: Sequence[tuple[str, float]],
    spots: Places | None,
    footprints: Mapping[str, Any] | None,
) -> list[dict[str, Any]]:
    """Each flag with the entry's ``flights`` it concerns and its ``scope``: ``"flight"``
    when its place or time falls in those flights' own spraying, ``"job"`` when it was
    judged over the whole job (then every flight of the entry carries it).

    ``flights``: the entry's flights in time order, each (id, seconds sprayed during a
    return-to-home); ``footprints``: each flight's own spray footprint around the field in
    ``spots.plane`` (``None`` when the flights could not be placed)."""
    every = [fid for fid, _ in flights]
    out: list[dict[str, Any]] = []
    for flag in flags:
        code = flag.get("code")
        concerned: list[str] = []
        if code == "rth_spray":
            concerned = [fid for fid, rth_s in flights if rth_s > 0]
        elif code in PLACE_CODES and spots is not None and footprints:
            place = {
                "no_spray_buffer": spots.near_zone,
                "off_target": spots.off_target,
                "not_job_field": spots.covered,
            }[str(code)]
            concerned = [
                fid
                for fid in every
                if fid in footprints
                and float(shapely.intersection(footprints[fid], place).area) >= MIN_FLAG_M2
            ]
        scope = "flight" if concerned else "job"
        out.append({**flag, "flights": concerned or every, "scope": scope})
    return out


def compliance_flags(
    body: Mapping[str, Any],
    spots: Places | None,
    job_fields: Sequence[str],
    earlier: Sequence[Mapping[str, Any]],
    params: ComplianceParams = ComplianceParams(),
) -> list[dict[str, Any]]:
    """The compliance flags of an entry ``body`` (``flights.diary.entry_body``), given
    where its spraying lies (``spots``; ``None`` when it could not be placed), the fields
    its job named, and the field's earlier entries (their ``date``, ``safe_harvest_date``,
    ``product``)."""
    flags: list[dict[str, Any]] = []
    covered = None if spots is None else _where(spots.plane, spots.covered)
    field_id = str(body.get("field_id"))
    if spots is not None:
        area = float(spots.near_zone.area)
        if area >= MIN_FLAG_M2:
            flags.append(
                _flag(
                    "no_spray_buffer",
                    f"Phun trong vùng đệm {params.buffer_m:g} m quanh vùng cấm phun"
                    f" ({area:.0f} m²)",
                    f"Sprayed within the {params.buffer_m:g} m buffer of a no-spray zone"
                    f" ({area:.0f} m²)",
                    _where(spots.plane, spots.near_zone),
                    area_m2=round(area, 1),
                )
            )
        off = float(spots.off_target.area)
        if off > params.off_target_tolerance_m2:
            flags.append(
                _flag(
                    "off_target",
                    f"Thuốc rơi ra ngoài thửa ruộng đã đăng ký ({off:.0f} m²)",
                    f"Spray landed outside any registered field ({off:.0f} m²)",
                    _where(spots.plane, spots.off_target),
                    area_m2=round(off, 1),
                )
            )
    sprayed_m2 = float(body.get("sprayed_ha") or 0.0) * 10_000.0
    if job_fields and field_id not in job_fields and sprayed_m2 > params.off_target_tolerance_m2:
        flags.append(
            _flag(
                "not_job_field",
                f"Công việc được giao cho thửa {', '.join(job_fields)} nhưng phun cả thửa này"
                f" ({sprayed_m2:.0f} m²)",
                f"The job named {', '.join(job_fields)} but sprayed this field too"
                f" ({sprayed_m2:.0f} m²)",
                covered,
                area_m2=round(sprayed_m2, 1),
            )
        )
    planned, applied = body.get("planned_dose_l_per_ha"), body.get("applied_l_per_ha")
    if isinstance(planned, (int, float)) and isinstance(applied, (int, float)) and planned > 0:
        off_pct = 100.0 * (applied - planned) / planned
        if abs(off_pct) > params.dose_tolerance_pct:
            flags.append(
                _flag(
                    "dose_deviation",
                    f"Liều thực tế {applied:g} L/ha lệch {off_pct:+.0f} % so với dự kiến"
                    f" {planned:g} L/ha (cho phép ±{params.dose_tolerance_pct:g} %)",
                    f"Applied {applied:g} L/ha is {off_pct:+.0f} % from the planned"
                    f" {planned:g} L/ha (tolerance ±{params.dose_tolerance_pct:g} %)",
                    covered,
                    deviation_pct=round(off_pct, 1),
                )
            )
    cv = body.get("rate_cv_pct")
    if isinstance(cv, (int, float)) and cv > params.cv_limit_pct:
        flags.append(
            _flag(
                "rate_cv",
                f"Độ đồng đều kém: hệ số biến thiên {cv:g} % (giới hạn {params.cv_limit_pct:g} %)",
                f"Uneven deposit: coefficient of variation {cv:g} %"
                f" (limit {params.cv_limit_pct:g} %)",
                covered,
            )
        )
    wind = body.get("wind_mps")
    if isinstance(wind, (int, float)) and wind > params.wind_limit_mps:
        flags.append(
            _flag(
                "wind",
                f"Phun khi gió {wind:g} m/s (quá {params.wind_limit_mps:g} m/s)",
                f"Sprayed in wind of {wind:g} m/s (above {params.wind_limit_mps:g} m/s)",
                covered,
                wind_mps=wind,
            )
        )
    day = str(body.get("date"))
    for prior in earlier:
        safe = prior.get("safe_harvest_date")
        if isinstance(safe, str) and str(prior.get("date")) <= day < safe:
            name = (prior.get("product") or {}).get("trade_name") or prior.get("product_id")
            flags.append(
                _flag(
                    "phi_conflict",
                    f"Phun khi thuốc trước ({name}, phun ngày {_vi(prior.get('date'))}) chưa"
                    f" hết thời gian cách ly (đến {_vi(safe)})",
                    f"Sprayed while the previous product ({name}, sprayed {prior.get('date')})"
                    f" was still within its pre-harvest interval (until {safe})",
                    covered,
                    previous_entry=prior.get("entry"),
                    safe_harvest_date=safe,
                )
            )
    return flags
