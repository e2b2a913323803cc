"""A job's re-fly list from the stored flights: for each field the job named, the coverage
engine's missed area left by the job's own flights, cut into pieces to fly again
(``fields.refly`` orders them and draws their flight lines).

The job's flights are the drone's stored flights that served it (their summary's ``jobs``),
within the window the diary reads a job in (from a day before its ``job_start`` to two days
after its end). Each field's flights are merged on the version of the field valid when the
last of them started (a field the job did not fly: the version valid at its start), as the
diary does. A named field the caller may not see and the job did not spray is answered
exactly like a field that does not exist: the job's cooperative learns nothing of another
cooperative's outline it was not hired to spray.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from fields.coverage import CoverageEngine, UnpreparedFieldError
from fields.refly import FieldMissed, ReflyPiece, refly_pieces
from flights.summary import StateMismatchError, decode_state, merge_states
from storage.metadata import FieldFlight, JobRecord, MetadataDB

EngineAt = Callable[[int], CoverageEngine | None]
#: Flights of a job are looked for from this long before its ``job_start`` (a flight may
#: take off before the announcement reaches the ground station)...
BEFORE_MS: Final = 86_400_000
#: ... to this long after its end (or its start, when no ``job_end`` was seen).
AFTER_MS: Final = 2 * 86_400_000
#: Why a named field has no pieces, for unknown fields and fields the caller may not see.
NOT_VISIBLE: Final = "no field by this id that your key may see was sprayed by this job"


class ReflyStateError(RuntimeError):
    """A stored coverage state does not fit the field version it is merged on."""


class ReflyStaleError(RuntimeError):
    """A flight of the job (``flight_id``) is being summarized again; the job's flights are
    read from ``window`` (epoch ms)."""

    def __init__(self, flight_id: str, window: tuple[int, int]) -> None:
        super().__init__(flight_id)
        self.flight_id = flight_id
        self.window = window


@dataclass(frozen=True, slots=True)
class FieldReport:
    """What the re-fly list says about one field the job named."""

    field_id: str
    listed: bool
    reason: str | None = None
    field_name: str = ""
    field_ha: float = 0.0
    missed_m2: float = 0.0
    flights: tuple[str, ...] = ()
    positioning: str | None = None
    uncertain: bool | None = None

    def to_dict(self, pieces: Sequence[ReflyPiece]) -> dict[str, Any]:
        """JSON-ready, with the count and area of this field's listed ``pieces``."""
        if not self.listed:
            return {"field_id": self.field_id, "listed": False, "reason": self.reason}
        mine = [p for p in pieces if p.field_id == self.field_id]
        return {
            "field_id": self.field_id,
            "listed": True,
            "field_name": self.field_name,
            "field_ha": round(self.field_ha, 6),
            "missed_m2": round(self.missed_m2, 1),
            "pieces": len(mine),
            "listed_m2": round(sum(p.area_m2 for p in mine), 1),
            "flights": list(self.flights),
            "positioning": self.positioning,
            "uncertain": self.uncertain,
        }


@dataclass(frozen=True, slots=True)
class ReflyList:
    """A job's re-fly list: its pieces in flying order and a report per named field."""

    job: JobRecord
    min_m2: float
    pieces: list[ReflyPiece]
    fields: list[FieldReport] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "job": self.job.id,
            "min_m2": self.min_m2,
            "fields": [f.to_dict(self.pieces) for f in self.fields],
            "total_m2": round(sum(p.area_m2 for p in self.pieces), 1),
            "pieces": [p.to_dict() for p in self.pieces],
        }


def job_flights(metadata: MetadataDB, job: JobRecord) -> tuple[set[str], int, int]:
    """(the ids of the drone's stored flights that served the job, window start, end)."""
    lo = job.start_ms - BEFORE_MS
    hi = (job.end_ms if job.end_ms is not None else job.start_ms) + AFTER_MS
    served = {
        f.id
        for f in metadata.flights(lo, hi, coop=job.coop, drone=job.drone)
        if job.job in (f.summary_dict().get("jobs") or [])
    }
    return served, lo, hi


def refly_list(
    metadata: MetadataDB,
    job: JobRecord,
    engine_at: EngineAt,
    min_m2: float,
    *,
    may_see: Callable[[str, int], bool] = lambda _fid, _ms: True,
    outdated: Callable[[FieldFlight], bool] = lambda _: False,
) -> ReflyList:
    """The job's re-fly list. ``may_see(field id, ms)``: whether the caller may see that
    field as it was at ``ms``. Raises ``ReflyStaleError`` for a flight being summarized
    again, ``ReflyStateError`` for a stored state that does not fit its field, and
    ``fields.refly.TooManyPiecesError``."""
    served, lo, hi = job_flights(metadata, job)
    missed: list[FieldMissed] = []
    reports: list[FieldReport] = []
    for fid in job.fields:
        parts = [p for p in metadata.field_flights(fid, lo, hi) if p.flight_id in served]
        for part in parts:
            if outdated(part):
                raise ReflyStaleError(part.flight_id, (lo, hi))
        at_ms = max((p.start_ms for p in parts), default=job.start_ms)
        if not (parts or may_see(fid, at_ms)):
            reports.append(FieldReport(fid, listed=False, reason=NOT_VISIBLE))
            continue
        report, field_missed = _field(engine_at(at_ms), fid, parts)
        reports.append(report)
        if field_missed is not None:
            missed.append(field_missed)
    return ReflyList(job, min_m2, refly_pieces(missed, min_m2), reports)


def _field(
    engine: CoverageEngine | None, fid: str, parts: Sequence[FieldFlight]
) -> tuple[FieldReport, FieldMissed | None]:
    """One named field's report and missed area (``None`` when it has none to list); the
    caller may see the field, or the job sprayed it."""
    hidden = FieldReport(fid, listed=False, reason=NOT_VISIBLE)
    if engine is None:
        return hidden, None
    if fid in engine.unprepared:
        reason = str(UnpreparedFieldError(fid, engine.unprepared[fid]))
        return FieldReport(fid, listed=False, reason=reason), None
    pf = engine.fields.get(fid)
    if pf is None:
        return hidden, None
    try:
        state = engine.empty(fid)
        for p in parts:
            state = merge_states(engine, state, decode_state(engine, p.state_doc()))
    except (StateMismatchError, ValueError) as exc:
        raise ReflyStateError(
            f"a stored coverage state of field {fid} no longer fits the field ({exc}); an"
            " operator recomputes the job's flights with `agridrone flights rebuild`"
        ) from exc
    geometry = engine.geometry(state)
    result = engine.result(state)
    report = FieldReport(
        fid,
        listed=True,
        field_name=pf.field.name,
        field_ha=result.field_ha,
        missed_m2=float(geometry.missed.area),
        flights=tuple(p.flight_id for p in parts),
        positioning=result.positioning,
        uncertain=result.uncertain,
    )
    return report, FieldMissed(fid, pf.field.plane, geometry.missed, pf.field.name)
