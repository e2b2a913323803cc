"""What every adapter returns: wire-v1 objects, reasoned rejections, and a few shared checks.

An adapter turns one foreign message (a MAVLink message dict, a DJI OSD envelope, one CSV
row) into wire-v1 sample and event *objects* (the dicts ``ingest/wire.py`` decodes), never
into stored records: the I/O edge publishes or stores them through the one validation path
every drone goes through. Nothing here does I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from ingest.wire import (
    BAD_JSON,
    BAD_TIMESTAMP,
    BAD_TOPIC,
    EXCERPT_BYTES,
    FUTURE_TIMESTAMP,
    INTERNAL_ERROR,
    MAX_FUTURE_MS,
    MIN_TS_MS,
    MISSING_KEY,
    NOT_AN_OBJECT,
    OUT_OF_RANGE,
    WIRE_VERSION,
    WRONG_TYPE,
)

#: A wire-v1 sample or event object, ready for ``orjson.dumps`` (``ts`` in epoch ms).
WireObject = dict[str, Any]

# --- reason codes: the wire's own where the problem is the same, plus the adapters' own

#: A position without a GNSS fix (lat = lon = 0, fix type below 2D, DJI/Airdata gpslevel 0).
NO_FIX: Final = "no_fix"
#: A DJI serial that no registered drone carries.
UNKNOWN_DEVICE: Final = "unknown_device"
#: A message that should carry a position and carries none (e.g. a dock's own OSD).
NO_POSITION: Final = "no_position"
#: A second sample of one drone at a millisecond already produced (stored once).
DUPLICATE: Final = "duplicate"
#: A CSV line that cannot be read as a row of its header (wrong number of cells).
BAD_ROW: Final = "bad_row"

ADAPTER_REASONS: Final[tuple[str, ...]] = (
    NO_FIX,
    UNKNOWN_DEVICE,
    NO_POSITION,
    DUPLICATE,
    BAD_ROW,
    BAD_TOPIC,
    BAD_JSON,
    NOT_AN_OBJECT,
    MISSING_KEY,
    WRONG_TYPE,
    OUT_OF_RANGE,
    BAD_TIMESTAMP,
    FUTURE_TIMESTAMP,
    INTERNAL_ERROR,
)

__all__ = [
    "ADAPTER_REASONS",
    "BAD_JSON",
    "BAD_ROW",
    "BAD_TIMESTAMP",
    "BAD_TOPIC",
    "DUPLICATE",
    "FUTURE_TIMESTAMP",
    "INTERNAL_ERROR",
    "MISSING_KEY",
    "NOT_AN_OBJECT",
    "NO_FIX",
    "NO_POSITION",
    "OUT_OF_RANGE",
    "UNKNOWN_DEVICE",
    "WIRE_VERSION",
    "WRONG_TYPE",
    "AdapterError",
    "AdapterRejection",
    "ConfigError",
    "DroneRef",
    "FormatError",
    "Translation",
    "WireObject",
]


# --- errors (raised for bad configuration or an unreadable file; bad messages never raise)


class AdapterError(Exception):
    """Base of the adapters' exceptions: a configuration or file the adapter cannot use."""


class ConfigError(AdapterError, ValueError):
    """An adapter configuration (spray rule, topic pattern, device map) is invalid."""


class FormatError(AdapterError, ValueError):
    """A whole input is not of a kind the adapter reads (e.g. a CSV with an unknown header)."""


# --- results


@dataclass(frozen=True, slots=True)
class AdapterRejection:
    """Why one foreign message, or one row of a file, produced no sample or event."""

    reason: str  # one of ADAPTER_REASONS
    detail: str
    excerpt: bytes = b""  # first EXCERPT_BYTES of the offending payload, when there is one
    line: int | None = None  # 1-based line of a file, for file imports

    def __post_init__(self) -> None:
        if self.reason not in ADAPTER_REASONS:
            raise ValueError(f"rejection reason {self.reason!r} is not one of {ADAPTER_REASONS}")
        if len(self.excerpt) > EXCERPT_BYTES:
            object.__setattr__(self, "excerpt", self.excerpt[:EXCERPT_BYTES])


@dataclass(frozen=True, slots=True)
class Translation:
    """Everything one foreign message translated to (often nothing: most are context)."""

    samples: tuple[WireObject, ...] = ()
    events: tuple[WireObject, ...] = ()
    rejections: tuple[AdapterRejection, ...] = ()
    #: Things the operator should know once, e.g. "timed by receive time" (not rejections).
    notices: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.samples or self.events or self.rejections or self.notices)

    def __add__(self, other: Translation) -> Translation:
        return Translation(
            self.samples + other.samples,
            self.events + other.events,
            self.rejections + other.rejections,
            self.notices + other.notices,
        )


EMPTY: Final = Translation()


@dataclass(frozen=True, slots=True)
class DroneRef:
    """A registered drone a foreign identity (DJI serial, MAVProxy topic) maps to."""

    coop: str
    drone: str

    def __post_init__(self) -> None:
        for label, value in (("coop", self.coop), ("drone", self.drone)):
            if not isinstance(value, str) or ID_RE.fullmatch(value) is None:
                raise ConfigError(f"{label} id {value!r} does not match [A-Za-z0-9_-]{{1,64}}")


ID_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")


# --- shared checks (raise Invalid; each adapter turns it into a rejection)


class Invalid(Exception):  # noqa: N818 - control flow inside the adapters, never escapes
    """One problem with a foreign message: the rejection reason and a human detail."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def show(value: object) -> str:
    """A short rendering of a foreign value for a rejection detail."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def number(obj: Mapping[str, Any], key: str, where: str = "") -> float | int:
    """A required JSON number (not a bool, finite) of ``obj``."""
    if key not in obj or obj[key] is None:
        raise Invalid(MISSING_KEY, f"{where}missing required key {key!r}")
    return as_number(obj[key], key, where)


def optional_number(obj: Mapping[str, Any], key: str, where: str = "") -> float | int | None:
    """An optional JSON number of ``obj``: absent or null is None."""
    value = obj.get(key)
    return None if value is None else as_number(value, key, where)


def as_number(value: object, key: str, where: str = "") -> float | int:
    """``value`` if it is a finite int or float (bools are not numbers)."""
    if type(value) is int:
        return value
    if type(value) is float:
        if not math.isfinite(value):
            raise Invalid(OUT_OF_RANGE, f"{where}{key} {value} is not a finite number")
        return value
    raise Invalid(WRONG_TYPE, f"{where}{key} {show(value)} is not a number")


def integer(obj: Mapping[str, Any], key: str, where: str = "") -> int:
    """A required JSON integer of ``obj`` (MAVLink's raw fields are all integers)."""
    value = number(obj, key, where)
    if type(value) is not int:
        raise Invalid(WRONG_TYPE, f"{where}{key} {show(value)} is not an integer")
    return value


def check_ts(ts_ms: int, received_ms: int, what: str = "ts") -> int:
    """``ts_ms`` if the wire will accept it against ``received_ms`` (same limits, same codes)."""
    if ts_ms < MIN_TS_MS:
        raise Invalid(BAD_TIMESTAMP, f"{what} {ts_ms} is before 2000-01-01T00:00:00Z")
    if ts_ms > received_ms + MAX_FUTURE_MS:
        ahead_h = (ts_ms - received_ms) / 3_600_000
        raise Invalid(
            FUTURE_TIMESTAMP,
            f"{what} {ts_ms} is {ahead_h:.1f} h after the receive time {received_ms} (limit 24 h)",
        )
    return ts_ms


def check_position(lat: float, lon: float, where: str = "") -> None:
    """Raise ``no_fix`` for 0,0 and ``out_of_range`` for impossible coordinates."""
    if not -90.0 <= lat <= 90.0:
        raise Invalid(OUT_OF_RANGE, f"{where}lat {lat!r} outside [-90, 90]")
    if not -180.0 <= lon <= 180.0:
        raise Invalid(OUT_OF_RANGE, f"{where}lon {lon!r} outside [-180, 180]")
    if lat == 0.0 and lon == 0.0:
        raise Invalid(NO_FIX, f"{where}position 0,0: no GNSS fix")


def heading_0_360(degrees: float) -> float:
    """Any finite heading in degrees as the wire's 0 <= h < 360."""
    h = math.fmod(degrees, 360.0)
    if h < 0.0:
        h += 360.0
    return 0.0 if h >= 360.0 else h + 0.0  # + 0.0 turns -0.0 into 0.0


def excerpt_of(payload: bytes | str | object) -> bytes:
    """The first EXCERPT_BYTES of a payload, for a rejection."""
    if isinstance(payload, bytes):
        return payload[:EXCERPT_BYTES]
    if isinstance(payload, str):
        return payload.encode("utf-8", "replace")[:EXCERPT_BYTES]
    return repr(payload).encode("utf-8", "replace")[:EXCERPT_BYTES]


def rejection(exc: Invalid, payload: object = b"", line: int | None = None) -> AdapterRejection:
    """An ``Invalid`` as the rejection a caller logs and counts."""
    return AdapterRejection(exc.reason, exc.detail, excerpt_of(payload), line)


def internal_error(exc: Exception, payload: object = b"") -> AdapterRejection:
    """A translator bug caught at the boundary, so that no input can crash the caller."""
    detail = f"adapter failed: {type(exc).__name__}: {exc}"[:300]
    return AdapterRejection(INTERNAL_ERROR, detail, excerpt_of(payload))
