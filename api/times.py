"""Time windows of the API: ``from``/``to`` in, RFC 3339 with the local offset out.

Users are in Vietnam, so a bare date and the default window ("today") are local days of
Asia/Ho_Chi_Minh (UTC+07:00 all year, no daylight saving). Windows are half-open,
[from, to), in epoch milliseconds UTC like every store query.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Final
from zoneinfo import ZoneInfo

from fastapi import Depends, HTTPException, Query

LOCAL_TZ: Final = ZoneInfo("Asia/Ho_Chi_Minh")

#: The longest window a query may span; longer ones are refused, not silently cut.
MAX_WINDOW_DAYS: Final = 366

EXAMPLE: Final = "2026-11-28T07:00:00+07:00"

_EARLIEST_MS: Final = 0
_LATEST_MS: Final = 253_402_128_000_000  # 9999-12-30T00:00:00Z: local times still print

_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
# A '+' left unencoded in a query string arrives as a space: " 07:00" is read as "+07:00".
_DATETIME = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+ -]\d{2}:\d{2})"
)


class TimeInputError(ValueError):
    """A ``from``/``to`` value or window the API cannot use; the message says how to fix it."""


@dataclass(frozen=True, slots=True)
class Window:
    """A half-open time window [start_ms, end_ms) in epoch milliseconds UTC."""

    start_ms: int
    end_ms: int

    @property
    def start(self) -> str:
        """The start as RFC 3339 in local time."""
        return rfc3339(self.start_ms)

    @property
    def end(self) -> str:
        """The end as RFC 3339 in local time."""
        return rfc3339(self.end_ms)


def to_ms(moment: datetime) -> int:
    """Epoch milliseconds of an aware datetime (sub-millisecond digits are truncated)."""
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000


def rfc3339(ms: int) -> str:
    """``ms`` as RFC 3339 in Asia/Ho_Chi_Minh with millisecond precision (…T07:00:00.000+07:00)."""
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    return moment.astimezone(LOCAL_TZ).isoformat(timespec="milliseconds")


def local_midnight(day: date) -> int:
    """Epoch ms of 00:00 local time on ``day``."""
    return to_ms(datetime.combine(day, time(0), tzinfo=LOCAL_TZ))


def local_day(ms: int) -> date:
    """The local calendar day that contains the instant ``ms``."""
    return (
        (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)).astimezone(LOCAL_TZ).date()
    )


def parse_time(name: str, text: str) -> int:
    """Epoch ms of an RFC 3339 time with an offset, or of local midnight on a bare date."""
    value = text.strip()
    bad = (
        f"{name}: {text!r} is not an RFC 3339 time or a date"
        f" (example: {EXAMPLE}, or 2026-11-28 for local midnight)"
    )
    if _DATE.fullmatch(value):
        try:
            on = date.fromisoformat(value)
        except ValueError:
            raise TimeInputError(bad) from None
        return _in_range(name, text, local_midnight(on))
    match = _DATETIME.fullmatch(value)
    if match is None:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?", value):
            raise TimeInputError(
                f"{name}: {text!r} has no UTC offset; add one, e.g. {EXAMPLE} or …Z for UTC"
            )
        raise TimeInputError(bad)
    day, hour, minute, second, fraction, offset = match.groups()
    offset = "+" + offset[1:] if offset[0] == " " else offset
    offset = "+00:00" if offset in ("Z", "z") else offset
    micros = (fraction or "").ljust(6, "0")[:6]
    try:
        moment = datetime.fromisoformat(f"{day}T{hour}:{minute}:{second}.{micros}{offset}")
    except ValueError:
        raise TimeInputError(bad) from None
    return _in_range(name, text, to_ms(moment))


def _in_range(name: str, text: str, ms: int) -> int:
    if not _EARLIEST_MS <= ms <= _LATEST_MS:
        raise TimeInputError(f"{name}: {text!r} is outside 1970-01-01 to 9999-12-30")
    return ms


def resolve_window(
    from_text: str | None,
    to_text: str | None,
    now_ms: int,
    max_days: int = MAX_WINDOW_DAYS,
) -> Window:
    """The window a request asks for; each missing end defaults to today's local day.

    Today is [00:00, next 00:00) in Asia/Ho_Chi_Minh as of ``now_ms``.
    """
    today = local_day(now_ms)
    start = local_midnight(today) if from_text is None else parse_time("from", from_text)
    end = (
        local_midnight(today + timedelta(days=1)) if to_text is None else parse_time("to", to_text)
    )
    if end <= start:
        defaulted = [n for n, t in (("from", from_text), ("to", to_text)) if t is None]
        note = f" ({' and '.join(defaulted)} defaulted to today)" if defaulted else ""
        raise TimeInputError(
            f"to ({rfc3339(end)}) must be after from ({rfc3339(start)}){note};"
            " a bare date means that day's 00:00, so one whole day is"
            " from=2026-11-28&to=2026-11-29"
        )
    if end - start > max_days * 86_400_000:
        raise TimeInputError(
            f"the window from {rfc3339(start)} to {rfc3339(end)} spans"
            f" {(end - start) / 86_400_000:.1f} days; ask for at most {max_days} days at a time"
        )
    return Window(start, end)


def _now_ms() -> int:
    return to_ms(datetime.now(UTC))


def window_query(
    from_: Annotated[
        str | None,
        Query(
            alias="from",
            description=f"RFC 3339 time with offset ({EXAMPLE}) or a date (local midnight);"
            " default: today 00:00 in Asia/Ho_Chi_Minh",
        ),
    ] = None,
    to: Annotated[
        str | None,
        Query(description="end (exclusive), same forms; default: tomorrow 00:00 local"),
    ] = None,
) -> Window:
    """The ``from``/``to`` query parameters as a ``Window``; 422 with the reason otherwise."""
    try:
        return resolve_window(from_, to, _now_ms())
    except TimeInputError as exc:
        raise HTTPException(422, detail=str(exc)) from exc


WindowDep = Annotated[Window, Depends(window_query)]
