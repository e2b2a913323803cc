"""Which job a flight served, and so which fields it was sent to spray (pure).

A drone or its ground station announces a job with a ``job_start`` event naming the field
or fields, ``{"type": "job_start", "job": "j-17", "field": "f-12"}`` or
``"fields": ["f-12", "f-13"]``, and may close it with ``job_end`` (naming the ``job`` it
closes, or none: then the open job). A flight serves the job open when it takes off (the
latest ``job_start`` at most ``JOB_LOOKBACK_MS`` before its start, not closed since) and
any job started during the flight. Knowing the intended fields lets a cooperative bill the
field it was hired for, not the neighbour a pass overshot onto
(docs/reports.md).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from storage.records import Event

JOB_EVENT_TYPES: Final = ("job_start", "job_end")
#: How far before a flight a ``job_start`` is looked for: a job lasts a working day at most.
JOB_LOOKBACK_MS: Final = 24 * 3_600_000


@dataclass(frozen=True, slots=True)
class JobInfo:
    """The jobs a flight served (their ids, where given) and the fields they named."""

    jobs: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()


def named_fields(attrs: Mapping[str, Any]) -> tuple[str, ...]:
    """The field ids a job event names in ``field`` (a string) and ``fields`` (a list of
    strings); values of other types are ignored, as the wire format leaves them free."""
    named: list[str] = []
    one = attrs.get("field")
    if isinstance(one, str) and one:
        named.append(one)
    many = attrs.get("fields")
    if isinstance(many, list):
        named += [f for f in many if isinstance(f, str) and f]
    return tuple(dict.fromkeys(named))


def job_of(
    start_ms: int,
    end_ms: int,
    events: Iterable[Event],
    *,
    lookback_ms: int = JOB_LOOKBACK_MS,
) -> JobInfo:
    """The jobs served by a flight over [start_ms, end_ms), from the drone's job events.

    The job open at take-off counts only if its ``job_start`` is at most ``lookback_ms``
    before this flight's start; a later ``job_start`` replaces an earlier one; a ``job_end``
    with a ``job`` id closes only the open job of that id, one without an id closes the open
    job. Jobs started during the flight count; one started at ``end_ms`` or later does not.
    """
    ordered = sorted(
        (e for e in events if e.type in JOB_EVENT_TYPES),
        key=lambda e: (e.ts_ms, e.type != "job_end"),
    )
    served: list[Event] = []
    open_job: Event | None = None
    for e in ordered:
        if e.ts_ms >= end_ms:
            break
        if e.ts_ms <= start_ms:
            open_job = _after(open_job, e)
        elif e.type == "job_start":
            served.append(e)
    if open_job is not None and start_ms - open_job.ts_ms <= lookback_ms:
        served.insert(0, open_job)
    return _info(served)


def _after(open_job: Event | None, e: Event) -> Event | None:
    """The open job once event ``e`` (earlier ones seen) is taken into account."""
    if e.type == "job_start":
        return e
    if open_job is None:
        return None
    closes = e.attrs.get("job")
    if not isinstance(closes, str) or closes == open_job.attrs.get("job"):
        return None
    return open_job


def _info(starts: Sequence[Event]) -> JobInfo:
    jobs = [e.attrs["job"] for e in starts if isinstance(e.attrs.get("job"), str)]
    fields = [f for e in starts for f in named_fields(e.attrs)]
    return JobInfo(tuple(dict.fromkeys(jobs)), tuple(dict.fromkeys(fields)))


# --- What a job_start says about the spraying (product, dose, pilot, drone, wind) -------

#: The detail keys a ``job_start`` (or ``PUT /api/v1/jobs/{id}``) may carry.
JOB_DETAIL_KEYS: Final = (
    "product",
    "dose_l_per_ha",
    "pilot_name",
    "pilot_licence",
    "drone_registration",
    "wind_mps",
)
#: A planned dose above this is no real spray volume (drones apply 10-20 L/ha on rice,
#: 80-200 L/ha on fruit trees).
MAX_DOSE_L_PER_HA: Final = 500.0
#: A wind reading above this (m/s) is no reading (a storm is ~25 m/s).
MAX_WIND_MPS: Final = 60.0
#: Longest text of a name, licence or registration number.
MAX_DETAIL_TEXT: Final = 200
_ID_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True, slots=True)
class DetailProblem:
    """Something wrong with one detail of a job: the value was not kept."""

    code: str
    key: str
    message: str

    def to_dict(self) -> dict[str, str]:
        """JSON-ready."""
        return {"code": self.code, "key": self.key, "message": self.message}


def check_detail(key: str, value: Any) -> tuple[Any, DetailProblem | None]:
    """(the value to keep, None) or (None, why it cannot be kept) for one job detail;
    ``None`` as a value is always kept (it clears a detail)."""
    if value is None:
        return None, None
    if key == "product":
        if isinstance(value, str) and _ID_RE.fullmatch(value):
            return value, None
        return None, DetailProblem(
            "bad_product", key, f"product {_shown(value)} is not a product id [A-Za-z0-9_-]{{1,64}}"
        )
    if key in ("dose_l_per_ha", "wind_mps"):
        return _number(key, value)
    if key in ("pilot_name", "pilot_licence", "drone_registration"):
        if isinstance(value, str) and value.strip() and len(value) <= MAX_DETAIL_TEXT:
            return value.strip(), None
        return None, DetailProblem(
            f"bad_{key}",
            key,
            f"{key} {_shown(value)} is not a text of 1 to {MAX_DETAIL_TEXT} characters",
        )
    raise KeyError(key)


def _number(key: str, value: Any) -> tuple[float | None, DetailProblem | None]:
    """A dose (more than 0, at most ``MAX_DOSE_L_PER_HA``) or a wind speed (0 to
    ``MAX_WIND_MPS``)."""
    dose = key == "dose_l_per_ha"
    most = MAX_DOSE_L_PER_HA if dose else MAX_WIND_MPS
    number = (
        float(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool)
        else math.nan
    )
    if math.isfinite(number) and (number > 0 if dose else number >= 0) and number <= most:
        return number, None
    unit, lowest = ("L/ha", "more than 0") if dose else ("m/s", "0")
    return None, DetailProblem(
        f"bad_{key}", key, f"{key} {_shown(value)} is not a number from {lowest} to {most:g} {unit}"
    )


def job_details(attrs: Mapping[str, Any]) -> tuple[dict[str, Any], tuple[DetailProblem, ...]]:
    """The details a ``job_start`` announced (only those it carries and that are usable)
    and what was wrong with the others; the job is kept either way."""
    kept: dict[str, Any] = {}
    problems: list[DetailProblem] = []
    for key in JOB_DETAIL_KEYS:
        if key not in attrs:
            continue
        value, problem = check_detail(key, attrs[key])
        if problem is not None:
            problems.append(problem)
        elif value is not None:
            kept[key] = value
    return kept, tuple(problems)


@dataclass(frozen=True, slots=True)
class Announcement:
    """One job as a drone's events announced it: the ``job_start`` (latest of its id) and
    the ``job_end`` that closed it, if any."""

    job: str
    start_ms: int
    end_ms: int | None
    fields: tuple[str, ...]
    details: Mapping[str, Any]
    problems: tuple[DetailProblem, ...]


def announcements(events: Iterable[Event]) -> list[Announcement]:
    """The jobs with an id that these events (one drone's) start, in order of start.

    A ``job_end`` closes the open job (the one of its ``job`` id when it names one); a
    later ``job_start`` of the same id restates the job (its details replace the earlier
    ones, the start stays the first)."""
    ordered = sorted(
        (e for e in events if e.type in JOB_EVENT_TYPES),
        key=lambda e: (e.ts_ms, e.type != "job_end"),
    )
    found: dict[str, Announcement] = {}
    open_job: Event | None = None
    for e in ordered:
        name = e.attrs.get("job")
        if e.type == "job_end":
            target = name
            if not isinstance(target, str) and open_job is not None:
                target = open_job.attrs.get("job")
            if isinstance(target, str) and target in found and found[target].end_ms is None:
                found[target] = _closed(found[target], e.ts_ms)
            open_job = _after(open_job, e)
            continue
        open_job = e
        if not isinstance(name, str) or _ID_RE.fullmatch(name) is None:
            continue
        details, problems = job_details(e.attrs)
        before = found.get(name)
        found[name] = Announcement(
            job=name,
            start_ms=e.ts_ms if before is None else before.start_ms,
            end_ms=None,
            fields=named_fields(e.attrs),
            details=details,
            problems=problems,
        )
    return sorted(found.values(), key=lambda a: (a.start_ms, a.job))


def _closed(a: Announcement, end_ms: int) -> Announcement:
    return Announcement(a.job, a.start_ms, end_ms, a.fields, a.details, a.problems)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
