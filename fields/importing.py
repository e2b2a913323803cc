"""Who may register which fields, as a plan (pure): what an import adds, updates, leaves as it
is, and refuses, feature by feature, with the reason and the kind of refusal.

The API's POST/PUT /fields and ``agridrone fields import`` apply the same rules through
``plan_import`` (docs/access.md, docs/api.md "Importing fields"):

- ``force`` (register over another cooperative's field) is for operators only.
- A commune-wide no-spray zone (scope ``commune``) binds every cooperative's fields, so only
  an operator registers one (a *forbidden* refusal, the API's 403).
- An import for one cooperative holds that cooperative's features only (*invalid*, 422),
  and never takes an id whose latest version is another cooperative's (*conflict*, 409).
- A field overlapping a field of another cooperative significantly is refused (*conflict*,
  409) unless an operator forces it; "a field" is every version valid at some instant from
  the new version's start on, and the other new fields of the import.

The API refuses a whole request on the first kind of problem (nothing stored); the CLI stores
the features without problems and lists the others.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

import numpy as np
import shapely

from fields.overlaps import OVERLAP_M2, OVERLAP_SHARE, Overlap, import_conflicts, overlaps_between
from fields.registry import Field, FieldProblem, Param
from fields.stored import FieldHistory, to_stored
from storage.metadata import FieldVersion, StoredField

#: What kind of refusal a problem is: the API answers 403, 409 and 422 for them.
RefusalKind = Literal["forbidden", "conflict", "invalid"]
#: Which rule a problem breaks.
Rule = Literal["commune", "foreign", "taken", "overlap", "duplicate"]

#: The overlap a refusal names is rounded to this many m² (and its share to whole %), so
#: probing with slightly shifted outlines cannot map another cooperative's boundaries.
SHOWN_M2_STEP: Final = 10
OVERLAP_PCT: Final = f"{OVERLAP_SHARE * 100:g} %"


@dataclass(frozen=True, slots=True)
class Importer:
    """Who imports: ``coop`` is the cooperative every feature must belong to (``None``: any,
    an operator's API import); ``operator`` may force and register commune-wide zones."""

    coop: str | None
    operator: bool
    force: bool = False


@dataclass(frozen=True, slots=True)
class Problem:
    """Why one feature (``index`` in the document) is refused: ``detail`` says it without
    naming the feature, ``reason`` is the line the API's answer lists."""

    index: int
    field_id: str
    kind: RefusalKind
    rule: Rule
    detail: str
    reason: str
    params: Mapping[str, Param] = field(default_factory=dict)

    def coded(self) -> FieldProblem:
        """The problem as the API lists it, its rule as its code (``FieldProblem``)."""
        return FieldProblem(self.reason, self.rule, self.params, self.index, self.field_id)


@dataclass(frozen=True, slots=True)
class Planned:
    """A feature to store, as the metadata database keeps it."""

    index: int
    field: Field
    row: StoredField


@dataclass
class ImportPlan:
    """What an import does: ``refusal`` refuses it whole (forbidden); otherwise ``added``,
    ``updated`` and ``unchanged`` features, and ``problems`` of the refused ones (a feature
    may have several). ``overlaps`` are the significant cross-cooperative overlaps found
    (refused, or forced through by an operator), for the caller to log."""

    refusal: str | None = None
    added: list[Planned] = field(default_factory=list)
    updated: list[Planned] = field(default_factory=list)
    unchanged: list[Planned] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    overlaps: list[Overlap] = field(default_factory=list)

    @property
    def to_store(self) -> list[Planned]:
        """The features that change the registry (added or updated), in document order."""
        return sorted(self.added + self.updated, key=lambda p: p.index)

    def of_kind(self, kind: RefusalKind, rule: Rule | None = None) -> list[Problem]:
        """The problems of one kind (and rule), in the order found."""
        return [p for p in self.problems if p.kind == kind and (rule is None or p.rule == rule)]


def shown_overlap(area_m2: float, share: float, field_id: str) -> str:
    """The overlap as a refusal names it, rounded: "about 3000 m² (50 % of fb)"."""
    area, pct = rounded_overlap(area_m2, share)
    part = f"{pct} %" if pct >= 1 else "under 1 %"
    return f"about {area} m² ({part} of {field_id})"


def rounded_overlap(area_m2: float, share: float) -> tuple[int, int]:
    """(m² to the nearest ``SHOWN_M2_STEP``, whole %) of an overlap, as refusals name it
    (0 %: under 1 %)."""
    return round(area_m2 / SHOWN_M2_STEP) * SHOWN_M2_STEP, round(share * 100)


def import_starts(
    features: Iterable[Field], history: FieldHistory, now_ms: int
) -> dict[str, int | None]:
    """When each feature's new version starts: a new id's first version from the beginning
    of time (``None``), a known id's next one from now."""
    return {f.id: (now_ms if history.of(f.id) else None) for f in features}


def plan_import(
    importer: Importer,
    features: Sequence[tuple[int, Field]],
    history: FieldHistory,
    *,
    valid_from: Mapping[str, int | None],
) -> ImportPlan:
    """Sort (document index, parsed feature) pairs into added, updated, unchanged and
    refused, against every stored version in ``history``.

    ``valid_from`` gives, per feature id, when its new version will start (``None``: the
    beginning of time, ``import_starts``); each field is checked against every version of
    other cooperatives' fields valid at some instant from then on, deleted and replaced
    ones included: a field's versions reach into the past, and so would the flights it shows.
    """
    plan = ImportPlan()
    if importer.force and not importer.operator:
        plan.refusal = "force"
        return plan
    first: dict[str, int] = {}
    checked: list[tuple[int, Field]] = []
    for index, f in features:
        problem = _problem(importer, index, f, history, first)
        plan.problems += problem
        if f.id not in first:
            first[f.id] = index
        if not any(p.kind != "conflict" for p in problem):
            checked.append((index, f))
    mine = [
        (i, f)
        for i, f in checked
        if f.kind == "field" and (importer.operator or f.coop == importer.coop)
    ]
    # A feature whose id is taken replaces nothing: the taken field's versions stay in the
    # comparison for the import's other features.
    taken = {p.field_id for p in plan.problems if p.rule == "taken"}
    replaced = {f.id for _, f in mine} - taken
    plan.overlaps = _conflicts([f for _, f in mine], history, valid_from, replaced)
    if not importer.force:
        index_of = {f.id: i for i, f in mine}
        for o in plan.overlaps:
            detail = (
                "overlaps a field of another cooperative by "
                f"{shown_overlap(o.area_m2, o.share_a, o.a.id)}"
            )
            area, pct = rounded_overlap(o.area_m2, o.share_a)
            plan.problems.append(
                Problem(
                    index_of[o.a.id],
                    o.a.id,
                    "conflict",
                    "overlap",
                    detail,
                    _line(o.a.id, detail),
                    {"area_m2": area, "pct": pct},
                )
            )
    refused = {p.index for p in plan.problems}
    kept = [(i, f) for i, f in checked if i not in refused]
    rows = to_stored(f for _, f in kept)
    for (index, f), row in zip(kept, rows, strict=True):
        latest = _latest(history, f.id)
        planned = Planned(index, f, row)
        if latest is None or latest.valid_to_ms is not None:
            plan.added.append(planned)
        elif latest.field == row:
            plan.unchanged.append(planned)
        else:
            plan.updated.append(planned)
    plan.problems.sort(key=lambda p: p.index)
    return plan


def overlap_message(conflicts: Sequence[Overlap]) -> str:
    """The sentence a refused overlap starts with (how many fields, the rule, what to do)."""
    return (
        f"{len({o.a.id for o in conflicts})} field(s) overlap a field of another "
        f"cooperative by more than {OVERLAP_M2:g} m² or {OVERLAP_PCT} of either field; nothing "
        "was stored. Redraw the boundary, or ask an operator to register it with "
        "force=true if both claims are real"
    )


def _problem(
    importer: Importer,
    index: int,
    f: Field,
    history: FieldHistory,
    first: Mapping[str, int],
) -> list[Problem]:
    """The problems of one feature that need no geometry (ownership, scope, duplicates)."""
    out: list[Problem] = []
    if f.id in first:
        detail = f"duplicate id, already used by feature {first[f.id]}"
        line = f"feature {index} ({f.id}): {detail}"
        return [Problem(index, f.id, "invalid", "duplicate", detail, line, {"first": first[f.id]})]
    commune = f.scope == "commune"
    if commune and not importer.operator:
        detail = "scope 'commune' needs an operator key"
        out.append(Problem(index, f.id, "forbidden", "commune", detail, _line(f.id, detail)))
    # An operator's commune-wide zone belongs to no cooperative, whatever the import's.
    owner = "" if commune and importer.operator else importer.coop
    if owner is not None and f.coop != owner:
        detail = f"its coop {f.coop!r} is not the import's ({owner!r})"
        line = f"feature {f.id} (coop {f.coop!r}) belongs to another cooperative"
        params: dict[str, Param] = {"coop": f.coop, "import_coop": owner}
        out.append(Problem(index, f.id, "invalid", "foreign", detail, line, params))
    latest = _latest(history, f.id)
    if owner is not None and latest is not None and latest.field.coop != owner:
        detail = "the id is already taken (by another cooperative or a commune-wide zone)"
        out.append(Problem(index, f.id, "conflict", "taken", detail, _line(f.id, detail)))
    return out


def _line(field_id: str, detail: str) -> str:
    """A problem as the API lists it."""
    return f"feature {field_id}: {detail}"


def _latest(history: FieldHistory, field_id: str) -> FieldVersion | None:
    versions = history.of(field_id)
    return versions[-1] if versions else None


def _conflicts(
    mine: Sequence[Field],
    history: FieldHistory,
    valid_from: Mapping[str, int | None],
    replaced: set[str],
) -> list[Overlap]:
    """The significant cross-cooperative overlaps of the new fields, with every version of
    the registered fields valid from their start on (but those of the ids the import
    ``replaced``) and with each other; one per pair of ids (the largest area), never a
    field with its own id's versions. Only stored versions near a new field, of another
    cooperative, are parsed (an ``STRtree`` over their stored outlines picks them)."""
    if not mine:
        return []
    by_start: dict[int | None, list[Field]] = {}
    for f in mine:
        by_start.setdefault(valid_from.get(f.id), []).append(f)
    coops = {f.coop for f in mine}
    outlines = _outlines(history)
    pairs: list[Overlap] = []
    for start, group in by_start.items():
        near = [
            v
            for v in outlines.near(group)
            if v.field.kind == "field"
            and v.id not in replaced
            # Overlaps within one cooperative never count: its own versions need no look.
            and not (len(coops) == 1 and v.field.coop in coops)
            and (start is None or v.valid_to_ms is None or start < v.valid_to_ms)
        ]
        registered = history.usable(near)
        pairs += [
            o
            for o in overlaps_between(group, registered)
            if o.across_coops and o.significant and o.a.id != o.b.id
        ]
    if len(coops) > 1:
        pairs += import_conflicts(mine, [])
    largest: dict[tuple[str, str], Overlap] = {}
    for o in pairs:
        key = (o.a.id, o.b.id)
        if key not in largest or o.area_m2 > largest[key].area_m2:
            largest[key] = o
    return list(largest.values())


class _Outlines:
    """Every stored version's WGS84 outline, read from its stored GeoJSON without validating
    it, in an ``STRtree``: which versions lie near the new fields, before any is parsed.
    Versions whose outline cannot be read are always "near" (the parser reports them)."""

    def __init__(self, versions: Sequence[FieldVersion]) -> None:
        self._versions = versions
        geoms = shapely.from_geojson(
            np.array([v.field.feature for v in versions], dtype=object), on_invalid="ignore"
        )
        readable = ~shapely.is_missing(geoms)
        self._kept = np.flatnonzero(readable)
        self._unreadable = np.flatnonzero(~readable)
        self._tree = shapely.STRtree(geoms[self._kept])

    def near(self, group: Sequence[Field]) -> list[FieldVersion]:
        """The versions whose outline intersects one of ``group``'s, in history order."""
        if not self._versions or not group:
            return []
        query = np.array([f.geometry for f in group], dtype=object)
        hits = self._tree.query(query, predicate="intersects")[1]
        chosen = np.union1d(self._kept[np.unique(hits)], self._unreadable)
        return [self._versions[int(k)] for k in chosen]


_outlines_lock = threading.Lock()
_outlines_of: weakref.WeakKeyDictionary[FieldHistory, _Outlines] = weakref.WeakKeyDictionary()


def _outlines(history: FieldHistory) -> _Outlines:
    """The outline index of a history, built once per history (the API keeps one history
    per registry version and imports into it many times)."""
    with _outlines_lock:
        found = _outlines_of.get(history)
    if found is None:
        found = _Outlines(history.versions)
        with _outlines_lock:
            _outlines_of[history] = found
    return found
