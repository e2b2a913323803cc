"""The spray diary (nhật ký phun) of a field, from its flights, jobs and products (pure).

One entry per job on the field: the flights over the field that served the job (a flight
serving several jobs counts for the one that named the field, else the last one; flights
of no announced job are grouped per drone and local day). docs/diary.md states every rule.

Times are local (Asia/Ho_Chi_Minh, UTC+07:00 all year). The **safe-harvest date** is the
local date of the entry's last spraying plus the product's PHI days; the last spraying is
taken as the end (landing) of the job's last flight over the field, which is never before
the valve closed, so the date is never too early.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from flights.compliance import ComplianceParams, Places, attribute, compliance_flags
from storage.drones import DroneRecord
from storage.metadata.jobs import JobRecord, job_key
from storage.metadata.products import ProductRecord

LOCAL_TZ: Final = ZoneInfo("Asia/Ho_Chi_Minh")
SAO_M2: Final = 360.0
M2_PER_HA: Final = 10_000.0
#: Marks the entry key of flights that no ``job_start`` announced (never in an id).
UNANNOUNCED: Final = "~"


def local_time(ms: int) -> datetime:
    """The instant ``ms`` (epoch ms UTC) as a local (UTC+7) datetime."""
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)).astimezone(LOCAL_TZ)


def local_date(ms: int) -> date:
    """The local calendar day holding the instant ``ms``."""
    return local_time(ms).date()


def safe_harvest_date(last_spray_ms: int, phi_days: int) -> date:
    """The first local day the crop may be harvested: the local date of the last spraying
    plus the pre-harvest interval in days."""
    return local_date(last_spray_ms) + timedelta(days=phi_days)


def ha_to_sao(ha: float) -> float:
    """Hectares in sào Bắc Bộ (360 m²)."""
    return ha * M2_PER_HA / SAO_M2


@dataclass(frozen=True, slots=True)
class FlightOnField:
    """One stored flight over the field: its own figures there and the jobs it served."""

    flight_id: str
    coop: str
    drone: str
    start_ms: int
    end_ms: int
    covered_ha: float
    applied_l: float
    jobs: tuple[str, ...] = ()  # the drone's own job ids
    rth_spray_s: float = 0.0  # seconds sprayed during a return-to-home
    rth_spray_track: tuple[tuple[float, float], ...] = ()  # where (lon, lat)


@dataclass(frozen=True, slots=True)
class GroupCoverage:
    """The flights of one entry on the field, merged by the coverage engine."""

    field_ha: float
    covered_ha: float
    applied_l: float  # litres of the spray passes over the field (the coverage answer's)
    rate_cv_pct: float | None = None
    #: Litres that landed on the field (dose raster) per hectare covered; ``None``: unknown
    rate_l_per_ha: float | None = None
    exact: bool = True  # False: summed per flight (the states could not be merged)
    spots: Places | None = None  # where the spraying lies, for the compliance flags
    #: Each flight's own spray footprint in ``spots.plane`` (which flights a flag concerns)
    footprints: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class DiaryContext:
    """What the entries are written from, besides the flights."""

    field_id: str
    field_name: str
    field_coop: str
    field_owner: str
    jobs: Mapping[str, JobRecord]  # by job id (coop.drone.job)
    products: Mapping[tuple[str, str], ProductRecord]  # by (coop, product id)
    drones: Mapping[tuple[str, str], DroneRecord]
    coop_names: Mapping[str, str]


def entry_key_of(flight: FlightOnField, field_id: str, jobs: Mapping[str, JobRecord]) -> str:
    """The entry a flight belongs to on a field: the job it served that named the field,
    else the last job it served, else ``{coop}.{drone}.~{local date}``."""
    served = [job_key(flight.coop, flight.drone, j) for j in flight.jobs]
    for key in served:
        record = jobs.get(key)
        if record is not None and field_id in record.fields:
            return key
    if served:
        return served[-1]
    day = local_date(flight.start_ms).isoformat()
    return f"{flight.coop}.{flight.drone}.{UNANNOUNCED}{day}"


def group_flights(
    flights: Sequence[FlightOnField], field_id: str, jobs: Mapping[str, JobRecord]
) -> dict[str, list[FlightOnField]]:
    """The field's flights by entry key, each group in time order."""
    groups: dict[str, list[FlightOnField]] = {}
    for f in sorted(flights, key=lambda f: (f.start_ms, f.flight_id)):
        groups.setdefault(entry_key_of(f, field_id, jobs), []).append(f)
    return groups


def flag(code: str, vi: str, en: str, **extra: Any) -> dict[str, Any]:
    """One flag: a code, the message in Vietnamese and in English, and no place."""
    return {"code": code, "message_vi": vi, "message_en": en, "where": None, **extra}


def entry_body(
    key: str,
    flights: Sequence[FlightOnField],
    coverage: GroupCoverage,
    ctx: DiaryContext,
) -> dict[str, Any]:
    """Everything one diary entry says (JSON-native values), before versioning."""
    first, last = flights[0], flights[-1]
    start_ms = min(f.start_ms for f in flights)
    end_ms = max(f.end_ms for f in flights)
    job = ctx.jobs.get(key)
    details = job.details() if job is not None else {}
    flags: list[dict[str, Any]] = []
    if job is None:
        flags.append(
            flag(
                "no_job",
                "Không có lệnh bắt đầu công việc (job_start): chưa ghi thuốc, liều và người lái",
                "No job_start announced this spraying: product, dose and pilot are not recorded",
            )
        )
    else:
        flags.extend(
            flag(
                str(p.get("code", "bad_detail")),
                f"Thông tin công việc không hợp lệ: {p.get('message', '')}",
                f"Job detail not kept: {p.get('message', '')}",
            )
            for p in job.open_problems()
        )
    product_id = details.get("product")
    product = ctx.products.get((first.coop, product_id)) if isinstance(product_id, str) else None
    if isinstance(product_id, str) and product is None:
        flags.append(
            flag(
                "unknown_product",
                f"Thuốc {product_id!r} chưa được hợp tác xã {first.coop} đăng ký",
                f"Product {product_id!r} is not registered by cooperative {first.coop}",
                product=product_id,
            )
        )
    elif job is not None and product_id is None:
        flags.append(
            flag(
                "no_product",
                "Công việc không ghi tên thuốc",
                "The job names no product",
            )
        )
    rth_s = sum(f.rth_spray_s for f in flights)
    if rth_s > 0:
        points = [list(p) for f in flights for p in f.rth_spray_track]
        flags.append(
            {
                **flag(
                    "rth_spray",
                    f"Phun trong khi máy bay tự quay về (RTH) {rth_s:.1f} giây",
                    f"Sprayed during return-to-home for {rth_s:.1f} s",
                    seconds=round(rth_s, 1),
                ),
                "where": {"type": "MultiPoint", "coordinates": points} if points else None,
            }
        )
    drone = ctx.drones.get((first.coop, first.drone))
    registration = details.get("drone_registration") or (drone.registration if drone else None)
    covered = coverage.covered_ha
    rate = coverage.rate_l_per_ha
    if rate is None and covered > 0:  # states not merged: the flights' litres over the area
        rate = coverage.applied_l / covered
    phi = product.phi_days if product is not None else None
    harvest = safe_harvest_date(end_ms, phi) if phi is not None else None
    start_local, end_local = local_time(start_ms), local_time(end_ms)
    return {
        "field_id": ctx.field_id,
        "field_name": ctx.field_name,
        "field_coop": ctx.field_coop,
        "field_owner": ctx.field_owner,
        "job": None if job is None else job.id,
        "job_closed": job is not None and job.end_ms is not None,
        "date": start_local.date().isoformat(),
        "start": start_local.isoformat(timespec="seconds"),
        "end": end_local.isoformat(timespec="seconds"),
        "coop_name": ctx.coop_names.get(first.coop, first.coop),
        "drone_registration": registration,
        "pilot_name": details.get("pilot_name"),
        "pilot_licence": details.get("pilot_licence"),
        "product": None if product is None else _product_doc(product),
        "product_id": product_id,
        "planned_dose_l_per_ha": details.get("dose_l_per_ha"),
        "applied_l": round(coverage.applied_l, 3),
        "applied_l_on_field": None if rate is None else round(rate * covered, 3),
        "applied_l_per_ha": None if rate is None else round(rate, 2),
        "rate_cv_pct": None if coverage.rate_cv_pct is None else round(coverage.rate_cv_pct, 1),
        "field_ha": round(coverage.field_ha, 6),
        "sprayed_ha": round(covered, 6),
        "sprayed_sao": round(ha_to_sao(covered), 3),
        "coverage_pct": round(100.0 * covered / coverage.field_ha, 2) if coverage.field_ha else 0.0,
        "coverage_exact": coverage.exact,
        "wind_mps": details.get("wind_mps"),
        "phi_days": phi,
        "last_spray": end_local.isoformat(timespec="seconds"),
        "safe_harvest_date": None if harvest is None else harvest.isoformat(),
        "flights": [f.flight_id for f in flights],
        "last_flight": last.flight_id,
        "flags": flags,
    }


def _product_doc(p: ProductRecord) -> dict[str, Any]:
    return {
        "id": p.id,
        "trade_name": p.trade_name,
        "active_ingredient": p.active_ingredient,
        "concentration": p.concentration,
        "registration_no": p.registration_no,
        "target": p.target,
        "recommended_dose_l_per_ha": p.dose_l_per_ha,
        "phi_days": p.phi_days,
    }


def diary_bodies(
    flights: Sequence[FlightOnField],
    ctx: DiaryContext,
    coverage_of: Callable[[Sequence[FlightOnField]], GroupCoverage],
    *,
    written: Mapping[str, Mapping[str, Any]] | None = None,
    params: ComplianceParams | None = None,
) -> dict[str, tuple[Sequence[FlightOnField], dict[str, Any]]]:
    """Each entry's flights and body (compliance flags included), by entry key.

    ``written`` are the field's entries already written (latest versions, by key): an
    earlier product's safe-harvest date there can make a later job a PHI conflict."""
    out: dict[str, tuple[Sequence[FlightOnField], dict[str, Any]]] = {}
    spots: dict[str, GroupCoverage] = {}
    for key, group in group_flights(flights, ctx.field_id, ctx.jobs).items():
        coverage = coverage_of(group)
        spots[key] = coverage
        out[key] = (group, entry_body(key, group, coverage, ctx))
    known: dict[str, Mapping[str, Any]] = {
        k: d for k, d in (written or {}).items() if not d.get("withdrawn")
    }
    known.update({k: {**body, "entry": k} for k, (_, body) in out.items()})
    for key, (served, body) in out.items():
        earlier = [
            d for k, d in known.items() if k != key and str(d.get("start")) < str(body["start"])
        ]
        job = ctx.jobs.get(key)
        body["flags"] += compliance_flags(
            body,
            spots[key].spots,
            job.fields if job is not None else (),
            earlier,
            params or ComplianceParams(),
        )
        body["flags"] = attribute(
            body["flags"],
            [(f.flight_id, f.rth_spray_s) for f in served],
            spots[key].spots,
            spots[key].footprints,
        )
    return out


def flight_flags(entries: Sequence[Mapping[str, Any]], flight_id: str) -> list[dict[str, Any]]:
    """The compliance flags of ``entries`` (latest versions) that concern one flight: of the
    entries it served, the flags ``attribute`` gave it, each with its entry's field, entry
    key, job and date, and ``scope`` (``"flight"``: its place or time is in this flight's
    spraying; ``"job"``: judged over the whole job). A flag written before flags named
    their flights concerns every flight of its entry."""
    out: list[dict[str, Any]] = []
    for e in entries:
        if e.get("withdrawn") or flight_id not in (e.get("flights") or []):
            continue
        for f in e.get("flags") or []:
            if flight_id not in f.get("flights", [flight_id]):
                continue
            shown = {k: v for k, v in f.items() if k != "flights"}
            out.append(
                shown
                | {
                    "scope": f.get("scope", "job"),
                    "field_id": e.get("field_id"),
                    "entry": e.get("entry"),
                    "job": e.get("job"),
                    "date": e.get("date"),
                }
            )
    return out
