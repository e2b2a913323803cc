"""InfluxDB line protocol (v1 ``/write``) for our samples and events; pure functions.

Escaping follows the line protocol spec: measurement names escape commas and spaces; tag
keys, tag values and field keys escape commas, ``=`` and spaces; string field values are
double-quoted with ``"`` and ``\\`` escaped (newlines, tabs and CRs inside them are accepted
as is, checked against influxd 1.6.7). Floats are written with ``repr`` (shortest text that
reads back bit-exact) and always as floats, never as integers: a field's type is fixed per
shard, so ``5.0`` must not become ``5i``. Integers carry the ``i`` suffix. Timestamps are
epoch milliseconds (write with ``precision=ms``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from math import isfinite as _isfinite
from typing import Any, Final

import orjson

from storage.records import FIX_QUALITIES, Event, Sample

#: Measurement holding one point per drone sample.
TELEMETRY: Final = "telemetry"
#: Measurement holding one point per drone event (``type`` is a tag, so two events of
#: different types at the same instant are different points).
EVENTS: Final = "events"

#: InfluxDB's representable time range (int64 nanoseconds, ends reserved), in ms.
MIN_TS_MS: Final = (-(2**63) + 2) // 1_000_000 + 1
MAX_TS_MS: Final = (2**63 - 2) // 1_000_000

_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1

_AMBIGUOUS_BACKSLASH: Final = re.compile(r"\\([,= ]|$)")
_MEASUREMENT_ESCAPES: Final = str.maketrans({",": r"\,", " ": r"\ "})
_TAG_ESCAPES: Final = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})

_OPTIONAL_FLOATS: Final = (
    "alt_m",
    "speed_mps",
    "heading_deg",
    "battery_pct",
    "flow_lpm",
    "tank_l",
    "swath_m",
)


class LineProtocolError(ValueError):
    """A value that line protocol (or InfluxDB) cannot represent; says which and where."""


def escape_measurement(name: str) -> str:
    """A measurement name with commas and spaces escaped."""
    _check_identifier("measurement", name)
    return name.translate(_MEASUREMENT_ESCAPES)


def escape_tag(text: str, what: str = "tag") -> str:
    """A tag key, tag value or field key with commas, ``=`` and spaces escaped.

    Line protocol has no escape for newlines, a backslash before a separator (or at the end)
    cannot round-trip, and InfluxDB drops empty tag values: such text raises. Our ids
    (``[A-Za-z0-9_-]{1,64}``) never hit these.
    """
    _check_identifier(what, text)
    return text.translate(_TAG_ESCAPES)


def quote_string(value: str) -> str:
    """A string field value: double-quoted, with backslashes and double quotes escaped."""
    if "\\" in value:
        value = value.replace("\\", "\\\\")
    if '"' in value:
        value = value.replace('"', '\\"')
    return f'"{value}"'


def format_float(value: float, what: str = "float field") -> str:
    """A float field value; finite only, full precision, never written as an integer."""
    if value.__class__ is not float:
        if not isinstance(value, float | int) or isinstance(value, bool):
            raise LineProtocolError(f"{what}: {value!r} is not a float")
        try:
            value = float(value)  # int, or a float subclass such as numpy.float64
        except OverflowError:
            raise LineProtocolError(f"{what}: {value!r} is too large for a float") from None
    if value - value == 0.0:  # false for inf and nan
        return repr(value)
    raise LineProtocolError(f"{what}: {value!r} is not a finite float")


def format_int(value: int, what: str = "integer field") -> str:
    """An integer field value with the ``i`` suffix; must fit InfluxDB's int64."""
    if isinstance(value, int) and not isinstance(value, bool):
        if _INT64_MIN <= value <= _INT64_MAX:
            return f"{value}i"
        raise LineProtocolError(f"{what}: {value} does not fit a 64-bit integer")
    raise LineProtocolError(f"{what}: {value!r} is not an integer")


def format_ts(ts_ms: int) -> str:
    """A timestamp in epoch ms; must be an int inside InfluxDB's time range."""
    if ts_ms.__class__ is not int or not MIN_TS_MS <= ts_ms <= MAX_TS_MS:
        raise LineProtocolError(f"ts_ms: {ts_ms!r} is outside InfluxDB's time range")
    return str(ts_ms)


_series_prefixes: dict[tuple[str, str], str] = {}

#: The fix qualities quoted once (a call per sample was ~10 % of the encoder's time).
_QUOTED_FIX: Final = {name: quote_string(name) for name in FIX_QUALITIES}


def _telemetry_prefix(coop: str, drone: str) -> str:
    key = (coop, drone)
    prefix = _series_prefixes.get(key)
    if prefix is None:
        prefix = f"{TELEMETRY},coop={escape_tag(coop, 'coop')},drone={escape_tag(drone, 'drone')} "
        if len(_series_prefixes) > 100_000:  # bounded: drone ids are few, but be safe
            _series_prefixes.clear()
        _series_prefixes[key] = prefix
    return prefix


def sample_line(s: Sample) -> str:
    """One ``telemetry`` point: tags coop and drone, one field per present wire key."""
    lat, lon, alt, speed, heading = s.lat, s.lon, s.alt_m, s.speed_mps, s.heading_deg
    battery, flow, tank, swath, seq, fix, ts = (
        s.battery_pct,
        s.flow_lpm,
        s.tank_l,
        s.swath_m,
        s.seq,
        s.fix,
        s.ts_ms,
    )
    # Fast path for the common full sample: one f-string. A sum is finite only if every
    # term is (an overflowing sum merely falls through to the exact checks below).
    if (
        lat.__class__ is float
        and lon.__class__ is float
        and alt.__class__ is float
        and speed.__class__ is float
        and heading.__class__ is float
        and battery.__class__ is float
        and flow.__class__ is float
        and tank.__class__ is float
        and swath.__class__ is float
        and seq.__class__ is int
        and fix.__class__ is str
        and ts.__class__ is int
        and _INT64_MIN <= seq <= _INT64_MAX
        and MIN_TS_MS <= ts <= MAX_TS_MS
        and _isfinite(lat + lon + alt + speed + heading + battery + flow + tank + swath)
    ):
        try:
            prefix = _telemetry_prefix(s.coop, s.drone)
        except LineProtocolError:
            return _sample_line_checked(s)  # raises with the sample's context
        return (
            f"{prefix}lat={lat!r},lon={lon!r},"
            f"spraying={'true' if s.spraying else 'false'},seq={seq}i,alt_m={alt!r},"
            f"speed_mps={speed!r},heading_deg={heading!r},battery_pct={battery!r},"
            f"flow_lpm={flow!r},tank_l={tank!r},swath_m={swath!r},"
            f"fix={_QUOTED_FIX.get(fix) or quote_string(fix)} {ts}"
        )
    return _sample_line_checked(s)


def samples_body(samples: Sequence[Sample]) -> bytes:
    """The ``/write`` body of ``samples``: the lines of ``sample_line`` joined by newlines,
    except that the floats of full samples are formatted by orjson, all of a sample's in one
    call (the nine ``repr`` calls were about half of the encoder's time).

    orjson writes the shortest text that reads back bit-exact, as ``repr`` does, only spelt
    differently for some values (``1.7e308`` for ``1.7e+308``); line protocol reads both as
    the same float. Anything unusual (a missing field, an int, a non-finite value, a bad id)
    goes through ``sample_line`` and raises as it does.
    """
    dumps = orjson.dumps
    lines: list[str] = []
    append = lines.append
    for s in samples:
        lat, lon, alt, speed, heading = s.lat, s.lon, s.alt_m, s.speed_mps, s.heading_deg
        battery, flow, tank, swath, seq, fix, ts = (
            s.battery_pct,
            s.flow_lpm,
            s.tank_l,
            s.swath_m,
            s.seq,
            s.fix,
            s.ts_ms,
        )
        quoted_fix = _QUOTED_FIX.get(fix) if fix.__class__ is str else None
        prefix = _series_prefixes.get((s.coop, s.drone))
        if (
            prefix is None
            or quoted_fix is None
            or lat.__class__ is not float
            or lon.__class__ is not float
            or alt.__class__ is not float
            or speed.__class__ is not float
            or heading.__class__ is not float
            or battery.__class__ is not float
            or flow.__class__ is not float
            or tank.__class__ is not float
            or swath.__class__ is not float
            or seq.__class__ is not int
            or ts.__class__ is not int
            or not _INT64_MIN <= seq <= _INT64_MAX
            or not MIN_TS_MS <= ts <= MAX_TS_MS
            or not _isfinite(lat + lon + alt + speed + heading + battery + flow + tank + swath)
        ):
            append(sample_line(s))  # checks, raises, and caches the series prefix
            continue
        text = dumps((lat, lon, alt, speed, heading, battery, flow, tank, swath)).decode()
        f = text[1:-1].split(",")
        append(
            f"{prefix}lat={f[0]},lon={f[1]},"
            f"spraying={'true' if s.spraying else 'false'},seq={seq}i,alt_m={f[2]},"
            f"speed_mps={f[3]},heading_deg={f[4]},battery_pct={f[5]},"
            f"flow_lpm={f[6]},tank_l={f[7]},swath_m={f[8]},fix={quoted_fix} {ts}"
        )
    return "\n".join(lines).encode()


#: The fix qualities as JSON (and line protocol) strings.
_JSON_FIX: Final = frozenset(_QUOTED_FIX.values())


def row_lines(coop: str, drone: str, rows: Sequence[tuple[Any, ...]]) -> list[str]:
    """``telemetry`` lines for rows of validated values, in ``Sample``'s order after coop and
    drone: (ts_ms, lat, lon, spraying, seq, alt_m, speed_mps, heading_deg, battery_pct,
    flow_lpm, tank_l, swath_m, fix), every one present (the ingest worker's common samples,
    ``ingest.wire.decode_rows``: finite floats as floats, seq and ts in range, fix a known
    quality). One orjson call formats a message's rows: the floats come out as the shortest
    text that reads back bit-exact, as ``repr`` gives, spelt as JSON (``1.7e308``); the
    lines hold the same values as ``sample_line``'s. A row that is not as described raises.
    """
    prefix = _telemetry_prefix(coop, drone)
    if not rows:
        return []
    lines: list[str] = []
    append = lines.append
    for row in orjson.dumps(rows).decode()[2:-2].split("],["):
        p = row.split(",")
        if len(p) != 13 or p[12] not in _JSON_FIX or "null" in p:
            raise LineProtocolError(f"sample {coop}/{drone}: not a full row of values: [{row}]")
        append(
            f"{prefix}lat={p[1]},lon={p[2]},spraying={p[3]},seq={p[4]}i,alt_m={p[5]},"
            f"speed_mps={p[6]},heading_deg={p[7]},battery_pct={p[8]},flow_lpm={p[9]},"
            f"tank_l={p[10]},swath_m={p[11]},fix={p[12]} {p[0]}"
        )
    return lines


def _sample_line_checked(s: Sample) -> str:
    try:
        ts = format_ts(s.ts_ms)
        fields = (
            f"lat={format_float(s.lat, 'lat')},lon={format_float(s.lon, 'lon')},"
            f"spraying={'true' if s.spraying else 'false'}"
        )
        if s.seq is not None:
            fields += f",seq={format_int(s.seq, 'seq')}"
        for name in _OPTIONAL_FLOATS:
            value = getattr(s, name)
            if value is not None:
                fields += f",{name}={format_float(value, name)}"
        if s.fix is not None:
            fields += f",fix={quote_string(s.fix)}"
        return f"{_telemetry_prefix(s.coop, s.drone)}{fields} {ts}"
    except LineProtocolError as exc:
        raise LineProtocolError(f"sample {s.coop}/{s.drone} ts={s.ts_ms}: {exc}") from None


def event_line(e: Event) -> str:
    """One ``events`` point: tags coop, drone, type; field ``attrs`` (JSON text)."""
    try:
        ts = format_ts(e.ts_ms)
        try:
            attrs = orjson.dumps(e.attrs, option=orjson.OPT_SORT_KEYS).decode()
        except TypeError as exc:
            raise LineProtocolError(f"attrs are not JSON: {exc}") from None
        return (
            f"{EVENTS},coop={escape_tag(e.coop, 'coop')},drone={escape_tag(e.drone, 'drone')},"
            f"type={escape_tag(e.type, 'type')} attrs={quote_string(attrs)} {ts}"
        )
    except LineProtocolError as exc:
        raise LineProtocolError(f"event {e.coop}/{e.drone} ts={e.ts_ms}: {exc}") from None


def encode_batch(lines: Iterable[str]) -> bytes:
    """The request body of one ``/write``: the lines joined by newlines, UTF-8."""
    return "\n".join(lines).encode()


def _check_identifier(what: str, text: str) -> None:
    if not text:
        raise LineProtocolError(f"{what}: empty")
    if "\n" in text or "\r" in text:
        raise LineProtocolError(f"{what} {text!r}: line protocol cannot carry newlines here")
    if "\\" in text and _AMBIGUOUS_BACKSLASH.search(text):
        # InfluxDB's scanner takes any backslash as escaping the next byte, and unescapes only
        # ``\,``, ``\ `` and ``\=``: a backslash before those (or at the end) cannot round-trip.
        raise LineProtocolError(f"{what} {text!r}: a backslash before ',', '=', ' ' or at the end")
