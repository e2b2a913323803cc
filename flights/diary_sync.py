"""Writing the spray diary: the entries of a field brought up to date with its stored
flights, jobs and products (``flights.diary`` says what an entry holds,
``storage.metadata.diary`` how versions are chained).

The summarizer calls ``sync_after_summary`` once it has stored a drone's flights, and
``PUT /api/v1/jobs/{id}`` calls ``sync_job``: an entry is written as soon as a flight of its
job over the field is summarized, and a new version is written whenever what it says
changes (a later flight of the job, late samples, a corrected job, a redrawn field). An
entry whose flights are gone (a rebuild found none) gets a withdrawn version.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

import orjson

from fields.coverage import CoverageEngine
from flights.compliance import ComplianceParams, places
from flights.diary import DiaryContext, FlightOnField, GroupCoverage, diary_bodies
from flights.summary import StateMismatchError, decode_state, merge_states
from storage.drones import DroneRecord
from storage.metadata import (
    FieldFlight,
    JobRecord,
    MetadataDB,
    ProductRecord,
    StoredFlight,
    WantedEntry,
    job_key,
)

log = logging.getLogger(__name__)

EngineAt = Callable[[int], CoverageEngine | None]
#: How far around the changed flights a field's flights are read (a job's flights lie
#: within a day of each other: a job is taken up to 24 h after its job_start).
MARGIN_MS: Final = 2 * 86_400_000
_M2_PER_HA: Final = 10_000.0


def sync_field(
    metadata: MetadataDB,
    field_id: str,
    start_ms: int,
    end_ms: int,
    engine_at: EngineAt,
    *,
    keys: Iterable[str] = (),
) -> int:
    """Bring the field's entries whose flights started in [start, end) (and the entries
    ``keys``) up to date; returns how many versions were written."""
    parts = metadata.field_flights(field_id, start_ms - MARGIN_MS, end_ms + MARGIN_MS)
    summaries = {p.flight_id: metadata.flight(p.flight_id) for p in parts}
    flights = [_on_field(p, summaries.get(p.flight_id)) for p in parts]
    states = {p.flight_id: p for p in parts}
    jobs = _jobs(metadata, flights)
    engine = engine_at(max((p.start_ms for p in parts), default=start_ms))
    ctx = _context(metadata, field_id, engine, flights, jobs)
    # The field's cooperative's thresholds (docs/diary.md, "Compliance flags").
    params = ComplianceParams.of(metadata.diary_rules(ctx.field_coop) if ctx.field_coop else {})

    def coverage_of(group: Sequence[FlightOnField]) -> GroupCoverage:
        return _coverage(engine_at, field_id, [states[f.flight_id] for f in group], params)

    written = {r.entry_key: r.doc() for r in metadata.diary_rows(field_id)}
    bodies = diary_bodies(flights, ctx, coverage_of, written=written, params=params)
    scope = {
        key
        for key, (group, _) in bodies.items()
        if any(start_ms <= f.start_ms < end_ms for f in group)
    } | set(keys)
    wanted = [
        WantedEntry(
            key,
            group[0].coop,
            group[0].drone,
            min(f.start_ms for f in group),
            max(f.end_ms for f in group),
            body,
        )
        for key, (group, body) in bodies.items()
        if key in scope
    ]
    return metadata.sync_diary(field_id, wanted, scope)


def sync_after_summary(
    metadata: MetadataDB,
    drone: tuple[str, str],
    window: tuple[int, int],
    saved: Sequence[tuple[StoredFlight, Sequence[str]]],
    engine_at: EngineAt,
) -> int:
    """After a drone's flights of ``window`` were stored (``saved``: each flight with the
    fields it touched), write the entries they change, and withdraw the drone's entries
    of the window whose flights are gone. Returns how many versions were written."""
    lo, hi = window
    coop, drone_id = drone
    by_field: dict[str, list[int]] = {}
    for flight, fields in saved:
        for fid in fields:
            by_field.setdefault(fid, []).append(flight.start_ms)
    stale: dict[str, set[str]] = {}
    for fid, key in metadata.diary_keys_of_drone(coop, drone_id, lo, hi):
        stale.setdefault(fid, set()).add(key)
    written = 0
    for fid in sorted(by_field.keys() | stale.keys()):
        starts = by_field.get(fid, [])
        start = min([lo, *starts])
        end = max([hi, *(s + 1 for s in starts)])
        written += sync_field(metadata, fid, start, end, engine_at, keys=stale.get(fid, ()))
    if written:
        log.info(
            "diary_entries_written coop=%s drone=%s fields=%d versions=%d",
            coop,
            drone_id,
            len(by_field.keys() | stale.keys()),
            written,
        )
    return written


def sync_job(metadata: MetadataDB, job: JobRecord, engine_at: EngineAt) -> int:
    """Rewrite the entries of one job (after its details changed) on every field its
    flights touched. Returns how many versions were written."""
    lo = job.start_ms - 86_400_000
    hi = (job.end_ms if job.end_ms is not None else job.start_ms) + MARGIN_MS
    served = [
        f
        for f in metadata.flights(lo, hi, coop=job.coop, drone=job.drone)
        if job.job in (f.summary_dict().get("jobs") or [])
    ]
    fields = sorted({fs.field_id for f in served for fs in metadata.flight_fields(f.id)})
    written = 0
    for fid in fields:
        starts = [f.start_ms for f in served]
        written += sync_field(
            metadata, fid, min(starts), max(starts) + 1, engine_at, keys=(job.id,)
        )
    return written


def _on_field(part: FieldFlight, stored: StoredFlight | None) -> FlightOnField:
    doc: dict[str, Any] = {}
    if stored is not None:
        try:
            doc = stored.summary_dict()
        except orjson.JSONDecodeError:
            doc = {}
    jobs = [j for j in doc.get("jobs") or [] if isinstance(j, str)]
    track = tuple(
        (float(p[0]), float(p[1]))
        for p in doc.get("rth_spray_track") or []
        if isinstance(p, list) and len(p) == 2
    )
    return FlightOnField(
        part.flight_id,
        part.coop,
        part.drone,
        part.start_ms,
        part.end_ms,
        part.covered_ha,
        part.applied_l,
        tuple(jobs),
        float(doc.get("rth_spray_s") or 0.0),
        track,
    )


def _jobs(metadata: MetadataDB, flights: Sequence[FlightOnField]) -> dict[str, JobRecord]:
    keys = {job_key(f.coop, f.drone, j) for f in flights for j in f.jobs}
    found = {k: metadata.job(k) for k in sorted(keys)}
    return {k: v for k, v in found.items() if v is not None}


def _context(
    metadata: MetadataDB,
    field_id: str,
    engine: CoverageEngine | None,
    flights: Sequence[FlightOnField],
    jobs: dict[str, JobRecord],
) -> DiaryContext:
    prepared = engine.fields.get(field_id) if engine is not None else None
    f = prepared.field if prepared is not None else None
    products: dict[tuple[str, str], ProductRecord] = {}
    for job in jobs.values():
        pid = job.details().get("product")
        if isinstance(pid, str):
            p = metadata.product(job.coop, pid)
            if p is not None:
                products[(job.coop, pid)] = p
    drones: dict[tuple[str, str], DroneRecord] = {}
    names: dict[str, str] = {}
    for coop, drone in sorted({(fl.coop, fl.drone) for fl in flights}):
        record = metadata.drone(coop, drone)
        if record is not None:
            drones[(coop, drone)] = record
        c = metadata.coop(coop)
        names[coop] = c.name if c is not None else coop
    return DiaryContext(
        field_id=field_id,
        field_name=f.name if f is not None else "",
        field_coop=f.coop if f is not None else "",
        field_owner=f.owner if f is not None else "",
        jobs=jobs,
        products=products,
        drones=drones,
        coop_names=names,
    )


def _coverage(
    engine_at: EngineAt,
    field_id: str,
    parts: Sequence[FieldFlight],
    params: ComplianceParams,
) -> GroupCoverage:
    """The group's flights merged on the field's version valid at the last one's start;
    summed per flight (``exact`` false) when their states do not fit one version."""
    engine = engine_at(max(p.start_ms for p in parts))
    summed = GroupCoverage(
        field_ha=0.0,
        covered_ha=sum(p.covered_ha for p in parts),
        applied_l=sum(p.applied_l for p in parts),
        exact=len(parts) == 1,
    )
    if engine is None or field_id not in engine.fields:
        return summed
    field_ha = engine.fields[field_id].field.area_ha
    footprints: dict[str, Any] = {}
    try:
        state = engine.empty(field_id)
        for p in parts:
            own = decode_state(engine, p.state_doc())
            footprints[p.flight_id] = own.footprint
            state = merge_states(engine, state, own)
    except (StateMismatchError, ValueError) as exc:
        log.warning("diary_coverage_summed field=%s error=%r", field_id, str(exc))
        return GroupCoverage(field_ha, summed.covered_ha, summed.applied_l, exact=False)
    r = engine.result(state)
    return GroupCoverage(
        r.field_ha,
        r.covered_ha,
        r.applied_l,
        r.rate_cv_pct,
        r.mean_rate_l_per_ha,
        spots=places(engine, state, params),
        footprints=footprints,
    )
