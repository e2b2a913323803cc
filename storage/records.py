"""Plain records the telemetry store keeps: one drone sample, one drone event.

These are the rows of the store, so every other package (ingest decodes into them, the
coverage engine and the API read them) speaks this one vocabulary. Times are epoch
milliseconds UTC, taken from the drone's own ``ts``, never the time of receipt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

#: Wire keys that are optional numbers on a sample, in the order the stores write them.
OPTIONAL_NUMBER_KEYS: Final = (
    "alt_m",
    "speed_mps",
    "heading_deg",
    "battery_pct",
    "flow_lpm",
    "tank_l",
    "swath_m",
)

#: A sample's wire keys besides ``ts``, in the order stores and track files write them.
SAMPLE_VALUE_KEYS: Final = ("lat", "lon", "spraying", "seq", *OPTIONAL_NUMBER_KEYS, "fix")

#: Accepted values of a sample's ``fix`` (GNSS fix quality), worst to best.
FIX_QUALITIES: Final = ("none", "2d", "3d", "dgps", "rtk_float", "rtk_fixed")

#: Accepted event ``type`` values.
EVENT_TYPES: Final = (
    "takeoff",
    "landing",
    "spray_on",
    "spray_off",
    "refill",
    "battery_swap",
    "job_start",
    "job_end",
    "error",
    "status",
)


@dataclass(frozen=True, slots=True)
class Sample:
    """One telemetry sample of one drone at one instant."""

    coop: str
    drone: str
    ts_ms: int
    lat: float
    lon: float
    spraying: bool
    seq: int | None = None
    alt_m: float | None = None
    speed_mps: float | None = None
    heading_deg: float | None = None
    battery_pct: float | None = None
    flow_lpm: float | None = None
    tank_l: float | None = None
    swath_m: float | None = None
    fix: str | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """One discrete drone event (takeoff, refill, status change, ...).

    ``attrs`` holds the event's other wire keys (JSON-compatible values) as sent.
    """

    coop: str
    drone: str
    ts_ms: int
    type: str
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DroneLastSeen:
    """Where and when a drone was last heard from, as the store knows it."""

    coop: str
    drone: str
    ts_ms: int
    lat: float
    lon: float
    battery_pct: float | None = None
