"""Wire format v1 as a drone sends it: topics and JSON payloads (see docs/telemetry.md).

Written here rather than taken from ``ingest.wire`` so the simulator is an independent
drone: if the two disagree, ingest rejects the simulator's messages and a test says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import orjson

from simulators.faults import OutMessage
from storage.records import Event, Sample

#: Most samples one batch message may carry (the wire format's limit).
MAX_BATCH: Final = 500

_OPTIONAL = ("seq", "alt_m", "speed_mps", "heading_deg", "battery_pct", "flow_lpm", "tank_l")


def telemetry_topic(coop: str, drone: str) -> str:
    """Where a drone's samples go."""
    return f"agri/v1/{coop}/{drone}/telemetry"


def event_topic(coop: str, drone: str) -> str:
    """Where a drone's events go."""
    return f"agri/v1/{coop}/{drone}/event"


def status_topic(coop: str, drone: str) -> str:
    """A drone's retained online/offline status (its last will says offline)."""
    return f"agri/v1/{coop}/{drone}/status"


def sample_dict(s: Sample) -> dict[str, Any]:
    """A sample as its wire object: ``ts`` in epoch ms, absent keys left out."""
    out: dict[str, Any] = {"ts": s.ts_ms, "lat": s.lat, "lon": s.lon, "spraying": s.spraying}
    for key in _OPTIONAL:
        value = getattr(s, key)
        if value is not None:
            out[key] = value
    if s.swath_m is not None:
        out["swath_m"] = s.swath_m
    if s.fix is not None:
        out["fix"] = s.fix
    return out


def encode_sample(s: Sample) -> bytes:
    """One sample as a whole message payload."""
    return orjson.dumps(sample_dict(s))


def encode_batch(samples: Sequence[Sample]) -> bytes:
    """Several samples of one drone as ``{"v":1,"samples":[...]}``."""
    return orjson.dumps({"v": 1, "samples": [sample_dict(s) for s in samples]})


def encode_event(e: Event) -> bytes:
    """An event as ``{"v":1,"ts":...,"type":...,<attrs>}``."""
    return orjson.dumps({**e.attrs, "v": 1, "ts": e.ts_ms, "type": e.type})


def encode_status(state: str, ts_ms: int | None) -> bytes:
    """The retained status payload; the last will carries no ``ts`` (it is set at connect)."""
    body: dict[str, Any] = {"v": 1, "state": state}
    if ts_ms is not None:
        body["ts"] = ts_ms
    return orjson.dumps(body)


def job_messages(
    samples: Sequence[Sample], events: Sequence[Event], batch: int
) -> list[OutMessage]:
    """A job's publishes in release order: samples ``batch`` at a time, events one each.

    A batch leaves when its last sample is taken; ``batch`` 1 sends bare sample objects.
    """
    if batch < 1 or batch > MAX_BATCH:
        raise ValueError(f"--batch {batch}: must be 1..{MAX_BATCH}")
    out: list[OutMessage] = []
    for i in range(0, len(samples), batch):
        chunk = samples[i : i + batch]
        first = chunk[0]
        payload = encode_sample(first) if batch == 1 else encode_batch(chunk)
        topic = telemetry_topic(first.coop, first.drone)
        out.append(OutMessage(chunk[-1].ts_ms, topic, payload, len(chunk)))
    out.extend(OutMessage(e.ts_ms, event_topic(e.coop, e.drone), encode_event(e)) for e in events)
    out.sort(key=lambda m: m.release_ms)
    return out
