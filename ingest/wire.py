"""MQTT wire format v1: topic + payload bytes in, records or reasoned rejections out.

Pure and I/O-free so the ingest worker, the tests and the benchmarks share one decoder.
``decode_message`` never raises: whatever arrives becomes samples, events or rejections.
The rules are written up for drone integrators in docs/telemetry.md.
"""

from __future__ import annotations

import math
import re
import reprlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Final, NamedTuple

import orjson

from storage.records import EVENT_TYPES, FIX_QUALITIES, OPTIONAL_NUMBER_KEYS, Event, Sample

# --- limits

MAX_PAYLOAD_BYTES: Final = 256 * 1024
MAX_BATCH_SAMPLES: Final = 500
EXCERPT_BYTES: Final = 1024
#: A timestamp this far past the receive time is rejected (drone clock wrong).
MAX_FUTURE_MS: Final = 24 * 3600 * 1000
#: Timestamps before 2000-01-01T00:00:00Z are rejected (unset clock, or seconds sent as ms).
MIN_TS_MS: Final = 946_684_800_000
#: Largest accepted ``swath_m``: wider than any spraying drone, so clearly a unit error.
MAX_SWATH_M: Final = 50.0
#: Largest accepted ``seq``: InfluxDB integer fields are signed 64-bit.
MAX_SEQ: Final = 2**63 - 1
WIRE_VERSION: Final = 1

# --- reason codes (the Prometheus label of rejected messages)

BAD_TOPIC: Final = "bad_topic"
BAD_ID: Final = "bad_id"
TOO_LARGE: Final = "too_large"
BAD_JSON: Final = "bad_json"
NOT_AN_OBJECT: Final = "not_an_object"
UNSUPPORTED_VERSION: Final = "unsupported_version"
TOO_MANY_SAMPLES: Final = "too_many_samples"
MISSING_KEY: Final = "missing_key"
WRONG_TYPE: Final = "wrong_type"
OUT_OF_RANGE: Final = "out_of_range"
BAD_TIMESTAMP: Final = "bad_timestamp"
FUTURE_TIMESTAMP: Final = "future_timestamp"
DRONE_MISMATCH: Final = "drone_mismatch"
UNKNOWN_EVENT: Final = "unknown_event"
#: A decoder bug caught at the boundary so that no payload can crash the worker.
INTERNAL_ERROR: Final = "internal_error"

REJECTION_REASONS: Final[tuple[str, ...]] = (
    BAD_TOPIC,
    BAD_ID,
    TOO_LARGE,
    BAD_JSON,
    NOT_AN_OBJECT,
    UNSUPPORTED_VERSION,
    TOO_MANY_SAMPLES,
    MISSING_KEY,
    WRONG_TYPE,
    OUT_OF_RANGE,
    BAD_TIMESTAMP,
    FUTURE_TIMESTAMP,
    DRONE_MISMATCH,
    UNKNOWN_EVENT,
    INTERNAL_ERROR,
)

# --- topics

TELEMETRY: Final = "telemetry"
EVENT: Final = "event"
STATUS: Final = "status"
TOPIC_KINDS: Final = (TELEMETRY, EVENT, STATUS)
TELEMETRY_SUBSCRIPTION: Final = "agri/v1/+/+/telemetry"
EVENT_SUBSCRIPTION: Final = "agri/v1/+/+/event"
STATUS_SUBSCRIPTION: Final = "agri/v1/+/+/status"
SUBSCRIPTIONS: Final = (TELEMETRY_SUBSCRIPTION, EVENT_SUBSCRIPTION, STATUS_SUBSCRIPTION)

#: Event types a drone may publish on its event topic (``status`` comes from the status topic).
WIRE_EVENT_TYPES: Final = tuple(t for t in EVENT_TYPES if t != "status")
STATUS_STATES: Final = ("online", "offline")

_ID_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed v1 topic."""

    coop: str
    drone: str
    kind: str  # one of TOPIC_KINDS


def is_valid_id(value: str) -> bool:
    """Whether ``value`` is a usable coop or drone id: ``[A-Za-z0-9_-]{1,64}``."""
    return _ID_RE.fullmatch(value) is not None


_TOPIC_CACHE: Final[dict[str, Topic]] = {}
_TOPIC_CACHE_SIZE: Final = 8192


def parse_topic(topic: str) -> Topic | tuple[str, str]:
    """The topic's coop, drone and kind, or ``(reason, detail)`` if it is not a v1 topic.

    Valid topics are cached (a fleet publishes on a few per drone); invalid ones are not,
    so long junk topics cannot grow the cache.
    """
    hit = _TOPIC_CACHE.get(topic)
    if hit is not None:
        return hit
    parsed = _parse_topic(topic)
    if type(parsed) is Topic:
        if len(_TOPIC_CACHE) >= _TOPIC_CACHE_SIZE:
            _TOPIC_CACHE.clear()
        _TOPIC_CACHE[topic] = parsed
    return parsed


def _parse_topic(topic: str) -> Topic | tuple[str, str]:
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != "agri" or parts[1] != "v1" or parts[4] not in TOPIC_KINDS:
        return BAD_TOPIC, (
            f"topic {_show(topic)} is not agri/v1/{{coop}}/{{drone}}/(telemetry|event|status)"
        )
    for label, value in (("coop", parts[2]), ("drone", parts[3])):
        if _ID_RE.fullmatch(value) is None:
            return BAD_ID, f"{label} id {_show(value)} does not match [A-Za-z0-9_-]{{1,64}}"
    return Topic(parts[2], parts[3], parts[4])


def _topic(coop: str, drone: str, kind: str) -> str:
    for label, value in (("coop", coop), ("drone", drone)):
        if _ID_RE.fullmatch(value) is None:
            raise ValueError(f"{label} id {value!r} does not match [A-Za-z0-9_-]{{1,64}}")
    return f"agri/v1/{coop}/{drone}/{kind}"


def telemetry_topic(coop: str, drone: str) -> str:
    """Where a drone publishes its samples; raises ValueError for an invalid id."""
    return _topic(coop, drone, TELEMETRY)


def event_topic(coop: str, drone: str) -> str:
    """Where a drone publishes its events; raises ValueError for an invalid id."""
    return _topic(coop, drone, EVENT)


def status_topic(coop: str, drone: str) -> str:
    """A drone's retained online/offline status; raises ValueError for an invalid id."""
    return _topic(coop, drone, STATUS)


# --- results


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why one message (or one sample of a batch) was not accepted."""

    topic: str
    reason: str  # one of REJECTION_REASONS
    detail: str
    payload_excerpt: bytes  # first EXCERPT_BYTES bytes of the payload


@dataclass(frozen=True, slots=True)
class Decoded:
    """Everything one message decodes to; valid records and rejections may coexist."""

    samples: list[Sample]
    events: list[Event]
    rejections: list[Rejection]


class _Invalid(Exception):  # noqa: N818 - internal control flow, never escapes this module
    """A validation failure on the slow path: carries the reason code and human detail."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


# --- value checks

_FLOAT_MAX: Final = sys.float_info.max
_SMALLEST_POSITIVE: Final = 5e-324

#: key -> (lowest, highest, human rule). Both bounds inclusive and finite, so one chained
#: comparison also rejects NaN and ±Infinity; heading's open end is checked separately.
_OPTIONAL_BOUNDS: Final[dict[str, tuple[float, float, str]]] = {
    "alt_m": (-_FLOAT_MAX, _FLOAT_MAX, "[-1.8e308, 1.8e308]"),
    "speed_mps": (0.0, _FLOAT_MAX, "[0, inf)"),
    "heading_deg": (0.0, 360.0, "[0, 360)"),
    "battery_pct": (0.0, 100.0, "[0, 100]"),
    "flow_lpm": (0.0, _FLOAT_MAX, "[0, inf)"),
    "tank_l": (0.0, _FLOAT_MAX, "[0, inf)"),
    "swath_m": (_SMALLEST_POSITIVE, MAX_SWATH_M, f"(0, {MAX_SWATH_M:g}]"),
}
assert tuple(_OPTIONAL_BOUNDS) == OPTIONAL_NUMBER_KEYS, "Sample is built positionally"
_OPTIONAL_SPECS: Final = tuple((k, lo, hi) for k, (lo, hi, _) in _OPTIONAL_BOUNDS.items())


_SHOW: Final = reprlib.Repr()
_SHOW.maxlevel, _SHOW.maxlist, _SHOW.maxdict, _SHOW.maxstring, _SHOW.maxlong = 2, 4, 4, 60, 40


def _show(value: object) -> str:
    """A short printable rendering of a wire value (bounded, even for deep or huge ones)."""
    if value is None or type(value) is bool:
        return "null" if value is None else ("true" if value else "false")
    return _SHOW.repr(value)


def _number_problem(key: str, value: object, rule: str) -> _Invalid:
    """Explain why ``value`` failed the number check for ``key`` (slow path only)."""
    if type(value) is not int and type(value) is not float:
        return _Invalid(
            WRONG_TYPE, f"{key} {_show(value)} is {_json_type(value)}, expected a number"
        )
    if not math.isfinite(value):
        return _Invalid(OUT_OF_RANGE, f"{key} {value} is not a finite number")
    return _Invalid(OUT_OF_RANGE, f"{key} {_show(value)} outside {rule}")


_JSON_KINDS: Final[dict[type, str]] = {
    type(None): "null",
    bool: "a bool",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "an object",
}


def _json_type(value: object) -> str:
    """The JSON kind of a decoded value, with its article, for rejection details."""
    return _JSON_KINDS.get(type(value)) or f"a {type(value).__name__}"


# --- timestamps

_RFC3339_RE: Final = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))"
)
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()
_MAX_TS_TEXT: Final = 40


def parse_rfc3339_ms(text: str) -> int:
    """Epoch milliseconds UTC of an RFC 3339 date-time with ``Z`` or a ``±hh:mm`` offset.

    Digits below the millisecond are truncated. Raises ValueError saying what is wrong.
    """
    m = _RFC3339_RE.fullmatch(text) if len(text) <= _MAX_TS_TEXT else None
    if m is None:
        raise ValueError(
            f"ts {_show(text)} is not RFC 3339 with an offset, e.g. 2026-11-28T19:30:00+07:00"
        )
    year, month, day, hour, minute, second, frac, _z, sign, off_h, off_m = m.groups()
    h, mi, sec = int(hour), int(minute), int(second)
    if h > 23 or mi > 59 or sec > 59:
        raise ValueError(f"ts {_show(text)} has an impossible time of day")
    try:
        days = date(int(year), int(month), int(day)).toordinal() - _EPOCH_ORDINAL
    except ValueError as exc:
        raise ValueError(f"ts {_show(text)} has an impossible date: {exc}") from None
    ms = (((days * 24 + h) * 60 + mi) * 60 + sec) * 1000
    if frac:
        ms += int(frac[:3].ljust(3, "0"))
    if sign is not None:
        off_hours, off_minutes = int(off_h), int(off_m)
        if off_hours > 23 or off_minutes > 59:
            raise ValueError(f"ts {_show(text)} has an impossible UTC offset")
        offset_ms = (off_hours * 60 + off_minutes) * 60_000
        ms += -offset_ms if sign == "+" else offset_ms
    return ms


def _timestamp(value: object, received_ms: int) -> int:
    """A wire ``ts`` as epoch ms, checked against the receive time."""
    t = type(value)
    if t is int:
        ms: int = value  # type: ignore[assignment]
    elif t is str:
        try:
            ms = parse_rfc3339_ms(value)  # type: ignore[arg-type]
        except ValueError as exc:
            raise _Invalid(BAD_TIMESTAMP, str(exc)) from None
    elif t is float:
        if not value.is_integer():  # type: ignore[attr-defined]
            raise _Invalid(
                BAD_TIMESTAMP, f"ts {_show(value)} is not a whole number of milliseconds"
            )
        ms = int(value)  # type: ignore[call-overload]
    elif value is None:
        raise _Invalid(MISSING_KEY, "missing required key 'ts'")
    else:
        raise _Invalid(
            WRONG_TYPE,
            f"ts {_show(value)} is {_json_type(value)}, "
            "expected epoch milliseconds or an RFC 3339 string",
        )
    if ms < MIN_TS_MS:
        hint = " (seconds instead of milliseconds?)" if ms * 1000 >= MIN_TS_MS else ""
        raise _Invalid(BAD_TIMESTAMP, f"ts {ms} is before 2000-01-01T00:00:00Z{hint}")
    if ms > received_ms + MAX_FUTURE_MS:
        ahead_h = (ms - received_ms) / 3_600_000
        raise _Invalid(
            FUTURE_TIMESTAMP,
            f"ts {ms} is {ahead_h:.1f} h after the receive time {received_ms} (limit 24 h)",
        )
    return ms


# --- payload checks


def _check_version(obj: dict[str, Any]) -> None:
    """Absent ``v`` means 1; anything but the JSON integer 1 is refused."""
    v = obj.get("v", WIRE_VERSION)
    if v != WIRE_VERSION or type(v) is not int:
        raise _Invalid(
            UNSUPPORTED_VERSION, f"v {_show(v)} is not supported (this service speaks v 1)"
        )


def _check_identity(obj: dict[str, Any], topic: Topic) -> None:
    """Optional ``coop``/``drone`` keys must repeat the topic's ids exactly."""
    for key, expected in (("drone", topic.drone), ("coop", topic.coop)):
        if key in obj and obj[key] != expected:
            raise _Invalid(
                DRONE_MISMATCH,
                f"payload {key} {_show(obj[key])} differs from the topic's {key} {expected!r}",
            )


_ALT_LO, _ALT_HI, _ = _OPTIONAL_BOUNDS["alt_m"]
_SPEED_LO, _SPEED_HI, _ = _OPTIONAL_BOUNDS["speed_mps"]
_BATTERY_LO, _BATTERY_HI, _ = _OPTIONAL_BOUNDS["battery_pct"]
_FLOW_LO, _FLOW_HI, _ = _OPTIONAL_BOUNDS["flow_lpm"]
_TANK_LO, _TANK_HI, _ = _OPTIONAL_BOUNDS["tank_l"]
_SWATH_LO, _SWATH_HI, _ = _OPTIONAL_BOUNDS["swath_m"]


#: A common wire sample's values after coop and drone, in ``Sample``'s order: ts_ms, lat,
#: lon, spraying, seq, alt_m, speed_mps, heading_deg, battery_pct, flow_lpm, tank_l,
#: swath_m, fix.
SampleRow = tuple[
    int, float, float, bool, int, float, float, float, float, float, float, float, str
]


class Rows(NamedTuple):
    """The samples of one telemetry message as rows (``decode_rows``): no ``Sample``
    objects, for a store that encodes them straight away."""

    coop: str
    drone: str
    rows: list[SampleRow]

    def samples(self) -> list[Sample]:
        """The same samples as ``Sample`` objects (what ``decode_message`` gives)."""
        coop, drone = self.coop, self.drone
        return [Sample(coop, drone, *row) for row in self.rows]


def _row(obj: object, received_ms: int) -> SampleRow | None:
    """A common sample (every key present, numbers as floats, ids only in the topic) checked
    in one chained test of the same bounds as ``_sample_checked``; None for anything else."""
    if type(obj) is not dict or "drone" in obj or "coop" in obj:
        return None
    get = obj.get
    ts = get("ts")
    lat = get("lat")
    lon = get("lon")
    spraying = get("spraying")
    seq = get("seq")
    alt = get("alt_m")
    speed = get("speed_mps")
    heading = get("heading_deg")
    battery = get("battery_pct")
    flow = get("flow_lpm")
    tank = get("tank_l")
    swath = get("swath_m")
    fix = get("fix")
    if (
        type(ts) is int
        and MIN_TS_MS <= ts <= received_ms + MAX_FUTURE_MS
        and type(lat) is float
        and -90.0 <= lat <= 90.0
        and type(lon) is float
        and -180.0 <= lon <= 180.0
        and (spraying is True or spraying is False)
        and type(seq) is int
        and 0 <= seq <= MAX_SEQ
        and type(alt) is float
        and _ALT_LO <= alt <= _ALT_HI
        and type(speed) is float
        and _SPEED_LO <= speed <= _SPEED_HI
        and type(heading) is float
        and 0.0 <= heading < 360.0
        and type(battery) is float
        and _BATTERY_LO <= battery <= _BATTERY_HI
        and type(flow) is float
        and _FLOW_LO <= flow <= _FLOW_HI
        and type(tank) is float
        and _TANK_LO <= tank <= _TANK_HI
        and type(swath) is float
        and _SWATH_LO <= swath <= _SWATH_HI
        and type(fix) is str
        and fix in FIX_QUALITIES
    ):
        return (ts, lat, lon, spraying, seq, alt, speed, heading, battery, flow, tank, swath, fix)
    return None


def _sample(obj: object, topic: Topic, received_ms: int) -> Sample:
    """One wire sample as a ``Sample``; raises ``_Invalid`` with the first problem found.

    The common sample takes ``_row``'s fast path; ``_sample_checked`` handles everything
    else and says what is wrong.
    """
    row = _row(obj, received_ms)
    if row is not None:
        return Sample(topic.coop, topic.drone, *row)
    return _sample_checked(obj, topic, received_ms)


def decode_rows(topic: str, payload: bytes, received_ms: int) -> Rows | None:
    """A telemetry message whose samples are all common ones, as ``Rows``; None for any other
    message (``decode_message`` then decodes it and says what is wrong, if anything).

    Whatever this accepts, ``decode_message`` accepts too, with the same samples and no
    rejection (tests/unit/test_wire_properties.py); it skips building ``Sample`` objects.
    """
    parsed = parse_topic(topic)
    if type(parsed) is not Topic or parsed.kind != TELEMETRY or len(payload) > MAX_PAYLOAD_BYTES:
        return None
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    rows = _rows_of(obj, received_ms)
    return None if rows is None else Rows(parsed.coop, parsed.drone, rows)


def _rows_of(obj: object, received_ms: int) -> list[SampleRow] | None:
    """The rows of a v1 telemetry payload (one sample or a batch) if all are common."""
    if type(obj) is not dict:
        return None
    v = obj.get("v", WIRE_VERSION)
    if v != WIRE_VERSION or type(v) is not int:
        return None
    if "samples" not in obj:
        row = _row(obj, received_ms)
        return None if row is None else [row]
    items = obj["samples"]
    if type(items) is not list or len(items) > MAX_BATCH_SAMPLES or "drone" in obj or "coop" in obj:
        return None
    rows: list[SampleRow] = []
    append = rows.append
    for item in items:
        row = _row(item, received_ms)
        if row is None:
            return None
        append(row)
    return rows


def _sample_checked(obj: object, topic: Topic, received_ms: int) -> Sample:
    """One wire sample as a ``Sample``, checked key by key; raises ``_Invalid`` with the
    first problem found."""
    if type(obj) is not dict:
        raise _Invalid(NOT_AN_OBJECT, f"sample is {_json_type(obj)}, expected an object")
    get = obj.get
    if "drone" in obj or "coop" in obj:
        _check_identity(obj, topic)
    ts = _timestamp(get("ts"), received_ms)

    lat = get("lat")
    if (type(lat) is not float and type(lat) is not int) or not -90.0 <= lat <= 90.0:
        raise _required_problem(obj, "lat", lat, "[-90, 90]")
    lon = get("lon")
    if (type(lon) is not float and type(lon) is not int) or not -180.0 <= lon <= 180.0:
        raise _required_problem(obj, "lon", lon, "[-180, 180]")
    spraying = get("spraying")
    if spraying is not True and spraying is not False:
        raise _required_problem(obj, "spraying", spraying, "true or false")

    seq = get("seq")
    if seq is not None and (type(seq) is not int or not 0 <= seq <= MAX_SEQ):
        raise _seq_problem(seq)

    optional: list[float | None] = []
    for key, lo, hi in _OPTIONAL_SPECS:
        v = get(key)
        if v is None:
            optional.append(None)
        elif (type(v) is float or type(v) is int) and lo <= v <= hi:
            optional.append(float(v))
        else:
            raise _number_problem(key, v, _OPTIONAL_BOUNDS[key][2])
    alt_m, speed_mps, heading_deg, battery_pct, flow_lpm, tank_l, swath_m = optional
    if heading_deg is not None and heading_deg >= 360.0:
        raise _Invalid(OUT_OF_RANGE, f"heading_deg {heading_deg!r} outside [0, 360)")

    fix = get("fix")
    if fix is not None and fix not in FIX_QUALITIES:
        raise _fix_problem(fix)

    return Sample(
        topic.coop,
        topic.drone,
        ts,
        float(lat),
        float(lon),
        spraying,
        seq,
        alt_m,
        speed_mps,
        heading_deg,
        battery_pct,
        flow_lpm,
        tank_l,
        swath_m,
        fix,
    )


def _required_problem(obj: dict[str, Any], key: str, value: object, rule: str) -> _Invalid:
    """Explain a failed required key: absent, or present with a bad value (slow path)."""
    if value is None and key not in obj:
        return _missing(key)
    if key == "spraying":
        return _Invalid(
            WRONG_TYPE, f"spraying {_show(value)} is {_json_type(value)}, expected {rule}"
        )
    return _number_problem(key, value, rule)


def _seq_problem(seq: object) -> _Invalid:
    if type(seq) is int:
        return _Invalid(OUT_OF_RANGE, f"seq {seq} outside [0, 2^63-1]")
    return _Invalid(WRONG_TYPE, f"seq {_show(seq)} is {_json_type(seq)}, expected an integer")


def _fix_problem(fix: object) -> _Invalid:
    if type(fix) is str:
        return _Invalid(OUT_OF_RANGE, f"fix {_show(fix)} is not one of {', '.join(FIX_QUALITIES)}")
    return _Invalid(WRONG_TYPE, f"fix {_show(fix)} is {_json_type(fix)}, expected a string")


def _missing(key: str) -> _Invalid:
    return _Invalid(MISSING_KEY, f"missing required key {key!r}")


def _batch(
    obj: dict[str, Any],
    topic: Topic,
    received_ms: int,
    samples: list[Sample],
    problems: list[tuple[str, str]],
) -> None:
    """A ``{"v":1,"samples":[...]}`` batch: valid samples kept, each invalid one reported."""
    _check_version(obj)
    items = obj["samples"]
    if type(items) is not list:
        raise _Invalid(WRONG_TYPE, f"samples is {_json_type(items)}, expected a list")
    if len(items) > MAX_BATCH_SAMPLES:
        raise _Invalid(
            TOO_MANY_SAMPLES, f"{len(items)} samples in one message (limit {MAX_BATCH_SAMPLES})"
        )
    if "drone" in obj or "coop" in obj:
        _check_identity(obj, topic)
    append = samples.append
    for i, item in enumerate(items):
        try:
            append(_sample(item, topic, received_ms))
        except _Invalid as exc:
            problems.append((exc.reason, f"sample {i}: {exc.detail}"))


_EVENT_RESERVED: Final = frozenset(("v", "ts", "type", "coop", "drone"))


def _event(obj: dict[str, Any], topic: Topic, received_ms: int) -> Event:
    """An event payload; keys other than v/ts/type/coop/drone go to ``attrs`` as sent."""
    _check_version(obj)
    _check_identity(obj, topic)
    ts = _timestamp(obj.get("ts"), received_ms)
    kind = obj.get("type")
    if kind not in WIRE_EVENT_TYPES:
        if kind is None and "type" not in obj:
            raise _missing("type")
        if type(kind) is not str:
            raise _Invalid(
                WRONG_TYPE, f"type {_show(kind)} is {_json_type(kind)}, expected a string"
            )
        raise _Invalid(
            UNKNOWN_EVENT, f"event type {_show(kind)} is not one of {', '.join(WIRE_EVENT_TYPES)}"
        )
    attrs = {k: v for k, v in obj.items() if k not in _EVENT_RESERVED}
    return Event(topic.coop, topic.drone, ts, kind, attrs)


_WHITESPACE: Final = b" \t\r\n"


def _status(payload: bytes, topic: Topic, received_ms: int) -> Event | None:
    """``online``/``offline`` as text or ``{"v":1,"state":...,"ts":...}``; empty → None."""
    text = payload.strip(_WHITESPACE)
    if not text:
        return None  # a cleared retained message
    if text in (b"online", b"offline"):
        return Event(topic.coop, topic.drone, received_ms, "status", {"state": text.decode()})
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise _Invalid(
            BAD_JSON, f"status is neither 'online'/'offline' text nor JSON ({exc})"
        ) from None
    if type(obj) is not dict:
        raise _Invalid(NOT_AN_OBJECT, f"status JSON is {_json_type(obj)}, expected an object")
    _check_version(obj)
    _check_identity(obj, topic)
    state = obj.get("state")
    if state not in STATUS_STATES:
        if state is None and "state" not in obj:
            raise _missing("state")
        if type(state) is not str:
            raise _Invalid(WRONG_TYPE, f"state {_show(state)} is {_json_type(state)}")
        raise _Invalid(OUT_OF_RANGE, f"state {_show(state)} is not 'online' or 'offline'")
    ts = received_ms if obj.get("ts") is None else _timestamp(obj["ts"], received_ms)
    return Event(topic.coop, topic.drone, ts, "status", {"state": state})


def decode_message(topic: str, payload: bytes, received_ms: int) -> Decoded:
    """Decode and validate one MQTT message. Never raises, whatever the bytes.

    ``received_ms`` (epoch ms UTC) is when the worker got the message: it bounds future
    timestamps and stamps status messages that carry no ``ts``.
    """
    samples: list[Sample] = []
    events: list[Event] = []
    problems: list[tuple[str, str]] = []
    try:
        event = _decode(topic, payload, received_ms, samples, problems)
        if event is not None:
            events.append(event)
    except _Invalid as exc:
        problems.append((exc.reason, exc.detail))
    except Exception as exc:  # noqa: BLE001 - a decoder bug must not take the worker down
        samples.clear()
        events.clear()
        problems.append((INTERNAL_ERROR, f"decoder failed: {type(exc).__name__}: {exc}"[:300]))
    if not problems:
        return Decoded(samples, events, [])
    excerpt = payload[:EXCERPT_BYTES]
    return Decoded(samples, events, [Rejection(topic, r, d, excerpt) for r, d in problems])


def _decode(
    topic: str,
    payload: bytes,
    received_ms: int,
    samples: list[Sample],
    problems: list[tuple[str, str]],
) -> Event | None:
    """Decode into ``samples``/``problems``; an event or status message returns its event."""
    parsed = parse_topic(topic)
    if type(parsed) is not Topic:
        reason, detail = parsed  # type: ignore[misc]
        raise _Invalid(reason, detail)
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise _Invalid(
            TOO_LARGE, f"payload is {len(payload)} bytes (limit {MAX_PAYLOAD_BYTES}), not parsed"
        )
    kind = parsed.kind
    if kind == STATUS:
        return _status(payload, parsed, received_ms)
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise _Invalid(BAD_JSON, f"payload is not JSON: {exc}") from None
    if type(obj) is not dict:
        raise _Invalid(NOT_AN_OBJECT, f"payload is {_json_type(obj)}, expected a JSON object")
    if kind != TELEMETRY:
        return _event(obj, parsed, received_ms)
    if "samples" not in obj:
        if "v" in obj:
            _check_version(obj)
        samples.append(_sample(obj, parsed, received_ms))
    else:
        _batch(obj, parsed, received_ms, samples, problems)
    return None


# --- encoding (simulators, tests, benchmarks)


def sample_object(sample: Sample) -> dict[str, Any]:
    """A sample as its wire object: ``ts`` in epoch ms, ``None`` keys left out.

    ``coop``/``drone`` are left out too: the topic carries them.
    """
    obj: dict[str, Any] = {
        "ts": sample.ts_ms,
        "lat": sample.lat,
        "lon": sample.lon,
        "spraying": sample.spraying,
    }
    if sample.seq is not None:
        obj["seq"] = sample.seq
    for key in OPTIONAL_NUMBER_KEYS:
        value = getattr(sample, key)
        if value is not None:
            obj[key] = value
    if sample.fix is not None:
        obj["fix"] = sample.fix
    return obj


def encode_sample(sample: Sample) -> bytes:
    """One sample as a whole telemetry payload."""
    return orjson.dumps(sample_object(sample))


def encode_samples(samples: Sequence[Sample]) -> bytes:
    """Samples as one batch payload ``{"v":1,"samples":[...]}`` (at most 500 are accepted)."""
    return orjson.dumps({"v": WIRE_VERSION, "samples": [sample_object(s) for s in samples]})


def encode_event(event: Event) -> bytes:
    """An event as ``{"v":1,"ts":...,"type":...,<attrs>}``; attrs may not reuse those keys."""
    clash = _EVENT_RESERVED.intersection(event.attrs)
    if clash:
        raise ValueError(
            f"event {event.type} of {event.coop}/{event.drone} at {event.ts_ms}: attrs use "
            f"reserved wire keys {sorted(clash)}"
        )
    return orjson.dumps({"v": WIRE_VERSION, "ts": event.ts_ms, "type": event.type, **event.attrs})


def encode_status(state: str, ts_ms: int | None = None) -> bytes:
    """A status payload; the last will is published without ``ts`` (set long before)."""
    if state not in STATUS_STATES:
        raise ValueError(f"status state {state!r} is not 'online' or 'offline'")
    body: dict[str, Any] = {"v": WIRE_VERSION, "state": state}
    if ts_ms is not None:
        body["ts"] = ts_ms
    return orjson.dumps(body)
