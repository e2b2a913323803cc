"""Spray jobs: what a drone's ``job_start`` announced (fields, product, dose, pilot, drone
registration, wind) and what a cooperative set afterwards (``PUT /api/v1/jobs/{id}``).

A job's id is ``{coop}.{drone}.{job}``, the drone's own job id prefixed like a flight id
(job ids are the drone's: two drones may both say ``j-17``). What the event said
(``announced``) and what was set later (``overrides``) are kept apart, so summarizing the
flights again never undoes a correction; the job's details are the announcement with the
overrides on top. ``problems`` are what was wrong with the announcement (an unknown product,
a dose out of range): the job is kept with them rather than lost.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import orjson

from storage.metadata._db import Database, Step

_COLUMNS = (
    "id, coop, drone, job, start_ms, end_ms, fields, announced, overrides, problems, updated_ms"
)


def job_key(coop: str, drone: str, job: str) -> str:
    """The id of a drone's job: ``{coop}.{drone}.{job}`` (no id holds a dot)."""
    return f"{coop}.{drone}.{job}"


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One job as stored. ``problems`` are ``{"code", "key", "message"}`` documents about
    the announcement; one whose ``key`` was overridden no longer applies (``details``)."""

    id: str
    coop: str
    drone: str
    job: str
    start_ms: int
    end_ms: int | None
    fields: tuple[str, ...]
    announced: Mapping[str, Any] = field(default_factory=dict)
    overrides: Mapping[str, Any] = field(default_factory=dict)
    problems: tuple[Mapping[str, Any], ...] = ()
    updated_ms: int = 0

    def details(self) -> dict[str, Any]:
        """The job's details: what ``job_start`` said, with what was set later on top."""
        return {**self.announced, **self.overrides}

    def open_problems(self) -> list[dict[str, Any]]:
        """The announcement's problems that no later correction replaced."""
        return [dict(p) for p in self.problems if p.get("key") not in self.overrides]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "id": self.id,
            "coop": self.coop,
            "drone": self.drone,
            "job": self.job,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "fields": list(self.fields),
            "announced": dict(self.announced),
            "overrides": dict(self.overrides),
            "details": self.details(),
            "problems": self.open_problems(),
        }


class JobTable(Database):
    """Jobs announced by drones, with later corrections."""

    migrations: ClassVar[tuple[Step, ...]] = (
        Step(
            1,
            "jobs",
            """
CREATE TABLE IF NOT EXISTS jobs (
    id         TEXT    PRIMARY KEY,
    coop       TEXT    NOT NULL,
    drone      TEXT    NOT NULL,
    job        TEXT    NOT NULL,
    start_ms   INTEGER NOT NULL,
    end_ms     INTEGER,
    fields     TEXT    NOT NULL,
    announced  TEXT    NOT NULL,
    overrides  TEXT    NOT NULL,
    problems   TEXT    NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_coop ON jobs (coop, start_ms);
""",
        ),
    )

    def record_jobs(self, jobs: Sequence[JobRecord]) -> None:
        """Store what drones announced, one row per job id: a job seen again takes the
        latest announcement and the earliest start, and keeps its overrides."""
        if not jobs:
            return
        now = int(time.time() * 1000)
        with self._write() as tx:
            tx.executemany(
                f"INSERT INTO jobs ({_COLUMNS})"  # noqa: S608
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, '{}', ?, ?) ON CONFLICT (id) DO UPDATE SET"
                " start_ms = CASE WHEN excluded.start_ms < jobs.start_ms"
                " THEN excluded.start_ms ELSE jobs.start_ms END,"
                " end_ms = COALESCE(excluded.end_ms, jobs.end_ms),"
                " fields = excluded.fields, announced = excluded.announced,"
                " problems = excluded.problems, updated_ms = excluded.updated_ms",
                [
                    (
                        j.id,
                        j.coop,
                        j.drone,
                        j.job,
                        j.start_ms,
                        j.end_ms,
                        _dumps(list(j.fields)),
                        _dumps(dict(j.announced)),
                        _dumps([dict(p) for p in j.problems]),
                        now,
                    )
                    for j in jobs
                ],
            )

    def set_job_overrides(self, job_id: str, overrides: Mapping[str, Any]) -> JobRecord | None:
        """Merge ``overrides`` into the job's (a ``None`` value removes that override);
        the updated job, or ``None`` when no job has that id."""
        with self._write() as tx:
            row = tx.execute("SELECT overrides FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return None
            merged = {**orjson.loads(row[0]), **overrides}
            merged = {k: v for k, v in merged.items() if v is not None}
            tx.execute(
                "UPDATE jobs SET overrides = ?, updated_ms = ? WHERE id = ?",
                (_dumps(merged), int(time.time() * 1000), job_id),
            )
        return self.job(job_id)

    def job(self, job_id: str) -> JobRecord | None:
        """One job by id, or ``None``."""
        rows = self._read(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,))  # noqa: S608
        return _record(rows[0]) if rows else None

    def jobs(
        self, start_ms: int, end_ms: int, *, coop: str | None = None, limit: int = 10_000
    ) -> list[JobRecord]:
        """Jobs that started in [start, end) (of one cooperative, or all), oldest first."""
        where = "start_ms >= ? AND start_ms < ?"
        params: list[Any] = [start_ms, end_ms]
        if coop is not None:
            where += " AND coop = ?"
            params.append(coop)
        rows = self._read(
            f"SELECT {_COLUMNS} FROM jobs WHERE {where} ORDER BY start_ms, id LIMIT ?",  # noqa: S608
            (*params, limit),
        )
        return [_record(r) for r in rows]


def _dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _record(r: tuple[Any, ...]) -> JobRecord:
    return JobRecord(
        id=r[0],
        coop=r[1],
        drone=r[2],
        job=r[3],
        start_ms=int(r[4]),
        end_ms=None if r[5] is None else int(r[5]),
        fields=tuple(orjson.loads(r[6])),
        announced=orjson.loads(r[7]),
        overrides=orjson.loads(r[8]),
        problems=tuple(orjson.loads(r[9])),
        updated_ms=int(r[10]),
    )
