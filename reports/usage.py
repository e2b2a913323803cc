"""Usage report arithmetic: flights, hours, hectares, litres and the amount to bill, per group.

Input is what stored flight summaries and the field registry hold (``FlightUsage``), never raw
samples. Hectares, litres and hours are summed exactly (``Decimal`` and integer milliseconds),
so a report's totals row is the sum of its rows to the last digit. Money is priced per flight
at the tariff in force on the day it started, summed exactly, rounded once for the total and
shared among the rows by largest remainder, so every grouping bills the same total.
docs/reports.md states every rule: what counts in a group, how a flight's hours are split,
how money is priced and rounded.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Final, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if TYPE_CHECKING:
    from fields.registry import Field
    from flights.summary import FlightSummary

GroupBy = Literal["member", "field", "drone", "day"]
GROUP_BYS: Final[tuple[GroupBy, ...]] = get_args(GroupBy)
DEFAULT_TZ: Final = "Asia/Ho_Chi_Minh"

#: Key of the row holding flights that touched no registered field (member/field grouping),
#: or fields with no owner (member grouping). Renderers give it a label in the user's language.
UNASSIGNED: Final = ""
#: Hectares are kept to 1e-6 ha (0.01 m²), litres to the millilitre.
HA_QUANTUM: Final = Decimal("0.000001")
LITRE_QUANTUM: Final = Decimal("0.001")
MS_PER_HOUR: Final = 3_600_000
#: One sào Bắc Bộ is 360 m², so one hectare is 10,000 / 360 = 250 / 9 sào.
SAO_PER_HA: Final = Decimal(250) / Decimal(9)
#: The same, exact: money is computed with fractions, since 250/9 has no finite decimal.
SAO_PER_HA_EXACT: Final = Fraction(250, 9)
#: Tariff effective dates are local dates here (a tariff starts at 00:00 local time),
#: whatever zone a report is shown in, so a bill never depends on how it is displayed.
TARIFF_TZ: Final = "Asia/Ho_Chi_Minh"
TariffUnit = Literal["ha", "sao"]
TARIFF_UNITS: Final[tuple[TariffUnit, ...]] = get_args(TariffUnit)
_UNIT_NAMES: Final[dict[str, str]] = {"ha": "ha", "sao": "sào"}
#: A per-field coverage above 100 % by more than this is an input error, not rounding.
_PCT_SLACK: Final = 1e-6


class UsageInputError(ValueError):
    """The flights or options cannot make a report (the message names the flight and field)."""


class NoTariffError(UsageInputError):
    """A flight that sprayed fields started before the cooperative's first tariff."""

    def __init__(self, flight: FlightUsage, day: date, first: date | None) -> None:
        self.flight_id, self.coop, self.day = flight.flight_id, flight.coop, day
        since = (
            f"before cooperative {flight.coop}'s first tariff (from {first.isoformat()})"
            if first is not None
            else f"and cooperative {flight.coop} has no tariff"
        )
        super().__init__(
            f"flight {flight.flight_id} flew on {day.isoformat()} ({TARIFF_TZ}), {since}, so it"
            f" cannot be priced; an operator sets a tariff from that day with `agridrone coops"
            f" set {flight.coop} --tariff-vnd-per-ha N --from {day.isoformat()}`"
        )


@dataclass(frozen=True, slots=True)
class Tariff:
    """A price per sprayed hectare or sào, in force from 00:00 local time (``TARIFF_TZ``) of
    ``effective_from`` until the next tariff starts; ``None`` means from the beginning."""

    vnd: Decimal
    unit: TariffUnit = "ha"
    effective_from: date | None = None

    def __post_init__(self) -> None:
        if self.unit not in TARIFF_UNITS:
            raise UsageInputError(
                f"tariff unit {self.unit!r} unknown; use one of {', '.join(TARIFF_UNITS)}"
            )
        object.__setattr__(self, "vnd", _tariff(self.vnd, _UNIT_NAMES[self.unit]))

    @property
    def vnd_per_ha(self) -> Fraction:
        """The exact price of one hectare (a per-sào price times 250/9)."""
        per_unit = Fraction(self.vnd)
        return per_unit * SAO_PER_HA_EXACT if self.unit == "sao" else per_unit


@dataclass(frozen=True, slots=True)
class TariffPeriod:
    """A tariff and the day the next one takes over (exclusive); ``None`` while in force."""

    tariff: Tariff
    until: date | None


def tariff_periods(tariffs: Iterable[Tariff]) -> tuple[TariffPeriod, ...]:
    """The schedule, earliest first. Of two tariffs from the same day, the later one given
    wins (a correction); the history is the caller's to keep."""
    by_day: dict[date | None, Tariff] = {}
    for t in tariffs:
        by_day[t.effective_from] = t
    days = sorted(by_day, key=_day_or_min)
    return tuple(
        TariffPeriod(by_day[d], days[i + 1] if i + 1 < len(days) else None)
        for i, d in enumerate(days)
    )


def tariff_in_force(periods: Sequence[TariffPeriod], day: date) -> TariffPeriod | None:
    """The period whose tariff applies on local ``day``; ``None`` before the first one."""
    starts = [_day_or_min(p.tariff.effective_from) for p in periods]
    i = bisect.bisect_right(starts, day) - 1
    return periods[i] if i >= 0 else None


@dataclass(frozen=True, slots=True)
class FieldUsage:
    """What one flight did on one registered field (from ``FieldShare`` + the registry)."""

    field_id: str
    field_name: str
    owner: str
    field_ha: float
    covered_ha: float
    litres: float
    coverage_pct: float


@dataclass(frozen=True, slots=True)
class UsageFlag:
    """A compliance flag that concerns a flight (docs/diary.md, "Flags per flight"): the
    field and diary entry it was raised on, its code and its messages."""

    field_id: str
    entry: str
    code: str
    message_vi: str
    message_en: str

    @property
    def key(self) -> tuple[str, str, str]:
        """One flag of one entry (the flights of a job share their job's flags)."""
        return (self.field_id, self.entry, self.code)


@dataclass(frozen=True, slots=True)
class FlightUsage:
    """One stored flight as the usage report needs it."""

    flight_id: str
    coop: str
    drone: str
    start_ms: int
    end_ms: int
    duration_s: float
    litres: float
    fields: tuple[FieldUsage, ...] = ()
    job_fields: tuple[str, ...] = ()  # the fields its job named (flights.jobs); () = unknown
    flags: tuple[UsageFlag, ...] = ()  # the compliance flags that concern it

    @property
    def billed(self) -> tuple[FieldUsage, ...]:
        """The fields this flight is billed for: those its job named, when it touched any
        of them (spray that ran onto other fields is not charged to their owners); else
        every field it touched."""
        named = [p for p in self.fields if p.field_id in self.job_fields]
        return tuple(named) if named else self.fields

    @classmethod
    def from_summary(cls, summary: FlightSummary, registry: Mapping[str, Field]) -> FlightUsage:
        """Join a flight summary with the registry's names, owners and field areas."""
        return cls(
            flight_id=summary.flight_id,
            coop=summary.coop,
            drone=summary.drone,
            start_ms=summary.start_ms,
            end_ms=summary.end_ms,
            duration_s=summary.duration_s,
            litres=summary.applied_l,
            fields=tuple(
                _field_usage(
                    summary.flight_id,
                    registry,
                    (s.field_id, s.covered_ha, s.applied_l, s.coverage_pct),
                )
                for s in summary.fields
            ),
            job_fields=summary.job_fields,
        )

    @classmethod
    def from_document(
        cls,
        doc: Mapping[str, Any],
        registry: Mapping[str, Field],
        flags: Sequence[UsageFlag] = (),
    ) -> FlightUsage:
        """The same from a stored summary document (``FlightSummary.to_dict()``), whose
        figures are rounded to 1e-6 ha and the millilitre: the report's own quanta; with
        the compliance flags that concern the flight."""
        flight_id = str(doc.get("id"))
        try:
            head = (
                str(doc["coop"]),
                str(doc["drone"]),
                int(doc["start_ms"]),
                int(doc["end_ms"]),
                float(doc["duration_s"]),
                float(doc["applied_l"]),
            )
            figures = [
                (
                    str(s["field_id"]),
                    float(s["covered_ha"]),
                    float(s["applied_l"]),
                    float(s["coverage_pct"]),
                )
                for s in doc["fields"]
            ]
            job_fields = tuple(str(f) for f in doc.get("job_fields", ()))
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageInputError(
                f"flight {flight_id}: stored summary is unreadable ({exc!r}); rebuild it with "
                "`agridrone flights rebuild`"
            ) from exc
        coop, drone, start_ms, end_ms, duration_s, litres = head
        return cls(
            flight_id=flight_id,
            coop=coop,
            drone=drone,
            start_ms=start_ms,
            end_ms=end_ms,
            duration_s=duration_s,
            litres=litres,
            fields=tuple(_field_usage(flight_id, registry, f) for f in figures),
            job_fields=job_fields,
            flags=tuple(flags),
        )


def _field_usage(
    flight_id: str, registry: Mapping[str, Field], figures: tuple[str, float, float, float]
) -> FieldUsage:
    field_id, covered_ha, litres, coverage_pct = figures
    reg = registry.get(field_id)
    if reg is None:
        raise UsageInputError(
            f"flight {flight_id}: field {field_id} is not in the field registry (deleted?);"
            " restore it or rebuild the flight's summary"
        )
    return FieldUsage(
        field_id=field_id,
        field_name=reg.name,
        owner=reg.owner,
        field_ha=reg.area_ha,
        covered_ha=covered_ha,
        litres=litres,
        coverage_pct=coverage_pct,
    )


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One group's figures (or the totals row); exact sums, derived means as properties."""

    key: str
    label: str
    flights: int
    flight_ms: int
    sprayed_ha: Decimal
    litres: Decimal
    litres_on_fields: Decimal
    amount_vnd: int
    mean_coverage_pct: float | None
    first_start_ms: int | None
    last_end_ms: int | None
    #: The exact amount before rounding: each hectare at the tariff of its flight's day.
    exact_vnd: Fraction = Fraction(0)
    #: The compliance flags of the group's flights, each once (docs/reports.md, "Flags").
    flags: tuple[UsageFlag, ...] = ()

    @property
    def flight_hours(self) -> Decimal:
        """Flight time in hours (exact quotient of whole milliseconds)."""
        return Decimal(self.flight_ms) / MS_PER_HOUR

    @property
    def sprayed_sao(self) -> Decimal:
        """Sprayed area in sào Bắc Bộ (360 m²)."""
        return self.sprayed_ha * SAO_PER_HA

    @property
    def mean_l_per_ha(self) -> Decimal | None:
        """Litres put on fields over hectares sprayed on them; ``None`` without hectares.

        Off-field litres (a drone's or day's ``litres`` include them) do not inflate the rate.
        """
        return None if self.sprayed_ha == 0 else self.litres_on_fields / self.sprayed_ha


@dataclass(frozen=True, slots=True)
class TariffUse:
    """A tariff period that priced flights of the report, and how much it priced."""

    period: TariffPeriod
    flights: int
    sprayed_ha: Decimal


@dataclass(frozen=True, slots=True)
class UsageReport:
    """Rows sorted by key (the unassigned row last), then the totals row."""

    group_by: GroupBy
    tz: str
    #: The tariff periods that priced the billed flights, earliest first.
    tariffs: tuple[TariffUse, ...]
    rows: tuple[UsageRow, ...]
    totals: UsageRow
    coop: str | None = None
    from_ms: int | None = None
    to_ms: int | None = None
    #: Hectares the flights covered on fields their jobs did not name: not billed.
    not_billed_ha: Decimal = Decimal(0)


@dataclass(slots=True)
class _Acc:
    """A group being summed: integer ms, exact ha, litres and money, coverage weights."""

    label: str
    flights: set[str] = field(default_factory=set)
    ms: int = 0
    ha: Decimal = Decimal(0)
    litres: Decimal = Decimal(0)
    on_fields: Decimal = Decimal(0)
    vnd: Fraction = Fraction(0)
    pct_area: float = 0.0
    field_ha: float = 0.0
    first_ms: int | None = None
    last_ms: int | None = None
    flags: dict[tuple[str, str, str], UsageFlag] = field(default_factory=dict)

    def add(
        self,
        flight: FlightUsage,
        ms: int,
        litres: Decimal,
        pairs: Iterable[FieldUsage],
        vnd_per_ha: Fraction,
    ) -> None:
        self.flights.add(flight.flight_id)
        self.ms += ms
        self.litres += litres
        for p in pairs:
            ha = _ha(p.covered_ha)
            self.ha += ha
            self.vnd += Fraction(ha) * vnd_per_ha
            self.on_fields += _litres(p.litres)
            self.pct_area += p.coverage_pct * p.field_ha
            self.field_ha += p.field_ha
        self.first_ms = (
            flight.start_ms if self.first_ms is None else min(self.first_ms, flight.start_ms)
        )
        self.last_ms = flight.end_ms if self.last_ms is None else max(self.last_ms, flight.end_ms)

    def row(self, key: str, amount: int) -> UsageRow:
        return UsageRow(
            key=key,
            label=self.label,
            flights=len(self.flights),
            flight_ms=self.ms,
            sprayed_ha=self.ha,
            litres=self.litres,
            litres_on_fields=self.on_fields,
            amount_vnd=amount,
            mean_coverage_pct=self.pct_area / self.field_ha if self.field_ha > 0 else None,
            first_start_ms=self.first_ms,
            last_end_ms=self.last_ms,
            exact_vnd=self.vnd,
            flags=tuple(self.flags.values()),
        )


def usage_report(
    flights: Sequence[FlightUsage],
    *,
    group_by: GroupBy,
    tariffs: Sequence[Tariff] | None = None,
    tariff_vnd_per_ha: int | Decimal | None = None,
    tz: str = DEFAULT_TZ,
    member_names: Mapping[str, str] | None = None,
    coop: str | None = None,
    from_ms: int | None = None,
    to_ms: int | None = None,
) -> UsageReport:
    """One row per member, field, drone or local day, and a totals row (docs/reports.md).

    Prices come from ``tariffs`` (a cooperative's history, in the order they were set) or,
    for one price since the beginning, ``tariff_vnd_per_ha``. A flight that sprayed fields
    before the first tariff raises ``NoTariffError``. ``member_names`` labels member rows
    (default: the member id). ``coop``, ``from_ms`` and ``to_ms`` are only carried into the
    report for rendering; select the flights beforehand.
    """
    if group_by not in GROUP_BYS:
        raise UsageInputError(f"group_by {group_by!r} unknown; use one of {', '.join(GROUP_BYS)}")
    periods = tariff_periods(_tariffs(tariffs, tariff_vnd_per_ha))
    zone = _zone(tz)
    tariff_zone = ZoneInfo(TARIFF_TZ)
    seen: set[str] = set()
    for f in flights:
        _check_flight(f, seen)
    names = member_names or {}
    not_billed = sum(
        (_ha(p.covered_ha) for f in flights for p in f.fields if p not in f.billed), Decimal(0)
    )
    flights = [replace(f, fields=f.billed) for f in flights]
    priced = _price(flights, periods, tariff_zone)

    groups: dict[str, _Acc] = {}
    total = _Acc(label="")

    def acc(key: str, label: str) -> _Acc:
        return groups.setdefault(key, _Acc(label=label))

    for f in flights:
        ms = flight_ms(f)
        rate = priced[f.flight_id].tariff.vnd_per_ha if f.flight_id in priced else Fraction(0)
        total.add(f, ms, Decimal(0), f.fields, rate)
        rows_of: dict[str, set[str]] = {}  # the rows the flight counts in, with their fields
        if group_by in ("member", "field") and f.fields:
            shares = split_ms(ms, [_ha(p.covered_ha) for p in f.fields])
            for p, part in zip(f.fields, shares, strict=True):
                if group_by == "member":
                    key, label = p.owner, (names.get(p.owner, p.owner) if p.owner else "")
                else:
                    key, label = p.field_id, p.field_name or p.field_id
                acc(key, label).add(f, part, _litres(p.litres), (p,), rate)
                rows_of.setdefault(key, set()).add(p.field_id)
        elif group_by in ("member", "field"):
            acc(UNASSIGNED, "").add(f, ms, _litres(f.litres), (), rate)
            rows_of[UNASSIGNED] = set()
        else:
            key = f.drone if group_by == "drone" else local_date(f.start_ms, zone)
            acc(key, key).add(f, ms, _litres(f.litres), f.fields, rate)
            rows_of[key] = {p.field_id for p in f.fields}
        for flag in f.flags:
            # The row of the flag's field; a flag of a field the flight is not billed for
            # (a neighbour's) goes with the work that caused it: every row of the flight.
            keys = [k for k, fids in rows_of.items() if flag.field_id in fids] or list(rows_of)
            for k in keys:
                groups[k].flags.setdefault(flag.key, flag)

    ordered = sorted(groups.items(), key=lambda kv: (kv[0] == UNASSIGNED, kv[0]))
    billed_total, amounts = allocate_vnd([a.vnd for _, a in ordered])
    rows = tuple(a.row(k, amount) for (k, a), amount in zip(ordered, amounts, strict=True))
    whole = total.row("", billed_total)
    totals = replace(
        whole,
        flight_ms=sum(r.flight_ms for r in rows),
        litres=sum((r.litres for r in rows), Decimal(0)),
        litres_on_fields=sum((r.litres_on_fields for r in rows), Decimal(0)),
    )
    return UsageReport(
        group_by=group_by,
        tz=tz,
        tariffs=_uses(flights, priced),
        rows=rows,
        totals=totals,
        coop=coop,
        from_ms=from_ms,
        to_ms=to_ms,
        not_billed_ha=not_billed,
    )


@dataclass(frozen=True, slots=True)
class BilledPiece:
    """One flight's billed hectares on one field, priced: the unit every report sums."""

    flight: FlightUsage
    field: FieldUsage
    sprayed_ha: Decimal
    period: TariffPeriod
    exact_vnd: Fraction


def billed_pieces(flights: Sequence[FlightUsage], tariffs: Sequence[Tariff]) -> list[BilledPiece]:
    """Every (flight, billed field) pair with its hectares and exact amount, priced as
    ``usage_report`` prices them (the same rule, the same quanta), in the flights' order;
    ``NoTariffError`` as there. Invoices share a member's billed amount among these."""
    billed = [replace(f, fields=f.billed) for f in flights]
    priced = _price(billed, tariff_periods(tariffs), ZoneInfo(TARIFF_TZ))
    out = []
    for f in billed:
        for p in f.fields:
            ha = _ha(p.covered_ha)
            period = priced[f.flight_id]
            out.append(BilledPiece(f, p, ha, period, Fraction(ha) * period.tariff.vnd_per_ha))
    return out


def share_vnd(exact: Sequence[Fraction], total: int) -> list[int]:
    """Share whole đồng ``total`` among the exact amounts by largest remainder (as rows
    share a report's total): each part within 1 đồng of its exact amount, summing to
    ``total``. ``total`` must be the sum of ``exact`` rounded to within 1 đồng per part."""
    return _largest_remainder(exact, total)


def _price(
    flights: Sequence[FlightUsage], periods: Sequence[TariffPeriod], zone: ZoneInfo
) -> dict[str, TariffPeriod]:
    """The tariff period of each flight that sprayed fields, by the local day it started;
    the earliest such flight before the first tariff raises ``NoTariffError``."""
    out: dict[str, TariffPeriod] = {}
    for f in sorted(flights, key=lambda f: (f.start_ms, f.flight_id)):
        if not f.fields:
            continue
        day = date.fromisoformat(local_date(f.start_ms, zone))
        period = tariff_in_force(periods, day)
        if period is None:
            raise NoTariffError(f, day, periods[0].tariff.effective_from if periods else None)
        out[f.flight_id] = period
    return out


def _uses(
    flights: Sequence[FlightUsage], priced: Mapping[str, TariffPeriod]
) -> tuple[TariffUse, ...]:
    """Each tariff period that priced a flight, with its flights and hectares, in date order."""
    ids: dict[TariffPeriod, set[str]] = {}
    hectares: dict[TariffPeriod, Decimal] = {}
    for f in flights:
        if (period := priced.get(f.flight_id)) is not None:
            ids.setdefault(period, set()).add(f.flight_id)
            ha = sum((_ha(p.covered_ha) for p in f.fields), Decimal(0))
            hectares[period] = hectares.get(period, Decimal(0)) + ha
    ordered = sorted(ids, key=lambda p: _day_or_min(p.tariff.effective_from))
    return tuple(TariffUse(p, len(ids[p]), hectares[p]) for p in ordered)


def _day_or_min(day: date | None) -> date:
    return date.min if day is None else day


def allocate_vnd(exact: Sequence[Fraction]) -> tuple[int, list[int]]:
    """Round the exact sum once (half up) and share it in whole đồng by largest remainder.

    Each part is the floor of its exact amount, plus one đồng for the largest remainders
    (ties to the earlier part) until the parts add up to the rounded total, so each part is
    within 1 đồng of its exact amount and the parts always sum to the total.
    """
    total = _round_half_up(sum(exact, Fraction(0)))
    return total, _largest_remainder(exact, total)


def _largest_remainder(exact: Sequence[Fraction | Decimal], total: int) -> list[int]:
    """Whole parts of the non-negative ``exact`` amounts summing to ``total``: each the floor
    of its amount, and the units left one each to the largest remainders (ties to the
    earlier part)."""
    parts = [math.floor(e) for e in exact]
    left = total - sum(parts)
    by_remainder = sorted(range(len(exact)), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in by_remainder[:left]:
        parts[i] += 1
    return parts


def _round_half_up(value: Fraction) -> int:
    return math.floor(value + Fraction(1, 2))


def split_ms(total_ms: int, weights: Sequence[Decimal]) -> list[int]:
    """Whole milliseconds in proportion to ``weights``, summing exactly to ``total_ms``.

    Largest remainder: each part gets the floor of its exact share, and the milliseconds
    left go one each to the largest remainders (ties to the earlier part). All-zero
    weights split equally.
    """
    if not weights:
        return []
    w = list(weights) if sum(weights) > 0 else [Decimal(1)] * len(weights)
    whole = sum(w)
    return _largest_remainder([total_ms * x / whole for x in w], total_ms)


def flight_ms(flight: FlightUsage) -> int:
    """A flight's duration in whole milliseconds (half up)."""
    return int(Decimal(repr(flight.duration_s * 1000)).quantize(Decimal(1), ROUND_HALF_UP))


def local_date(ms: int, zone: ZoneInfo) -> str:
    """The ISO date (YYYY-MM-DD) of an epoch-ms instant in ``zone``."""
    return datetime.fromtimestamp(ms // 1000, tz=zone).date().isoformat()


def _ha(value: float) -> Decimal:
    return Decimal(repr(value)).quantize(HA_QUANTUM, rounding=ROUND_HALF_UP)


def _litres(value: float) -> Decimal:
    return Decimal(repr(value)).quantize(LITRE_QUANTUM, rounding=ROUND_HALF_UP)


def _tariffs(
    tariffs: Sequence[Tariff] | None, tariff_vnd_per_ha: int | Decimal | None
) -> Sequence[Tariff]:
    if tariffs is not None and tariff_vnd_per_ha is None:
        return tariffs
    if tariffs is None and tariff_vnd_per_ha is not None:
        return [Tariff(_tariff(tariff_vnd_per_ha, "ha"))]
    raise UsageInputError("give either tariffs (a history) or tariff_vnd_per_ha, exactly one")


def _tariff(value: object, unit: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise UsageInputError(
            f"tariff {value!r}: give whole đồng per {unit} as an int or Decimal, not a float"
        )
    tariff = Decimal(value)
    if not tariff.is_finite() or tariff < 0:
        raise UsageInputError(f"tariff {value} VND/{unit}: must be a finite amount ≥ 0")
    return tariff


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise UsageInputError(
            f"time zone {tz!r} unknown (an IANA name such as {DEFAULT_TZ!r})"
        ) from err


def _check_flight(f: FlightUsage, seen: set[str]) -> None:
    where = f"flight {f.flight_id}"
    if f.flight_id in seen:
        raise UsageInputError(f"{where}: given twice; each flight counts once")
    seen.add(f.flight_id)
    if f.end_ms < f.start_ms:
        raise UsageInputError(f"{where}: ends ({f.end_ms}) before it starts ({f.start_ms})")
    _non_negative(where, "duration_s", f.duration_s)
    _non_negative(where, "litres", f.litres)
    fields_seen: set[str] = set()
    for p in f.fields:
        at = f"{where}: field {p.field_id}"
        if p.field_id in fields_seen:
            raise UsageInputError(f"{at}: listed twice in one flight")
        fields_seen.add(p.field_id)
        _non_negative(at, "covered_ha", p.covered_ha)
        _non_negative(at, "litres", p.litres)
        if not (math.isfinite(p.field_ha) and p.field_ha > 0):
            raise UsageInputError(f"{at}: field_ha {p.field_ha} must be a positive area")
        if not (0.0 <= p.coverage_pct <= 100.0 + _PCT_SLACK):
            raise UsageInputError(f"{at}: coverage_pct {p.coverage_pct} outside 0-100")


def _non_negative(where: str, name: str, value: float) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise UsageInputError(f"{where}: {name} {value} must be a finite number ≥ 0")
