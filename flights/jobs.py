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
