"""Overlapping fields and zone scopes at the API's edge: who may register what, and the
overlaps a caller may list (pure rules in ``fields.overlaps`` and ``api.auth``).

- A commune-wide no-spray zone (scope ``commune``) binds every cooperative's fields, so only
  an operator registers one (403 for a cooperative's key).
- A field overlapping a field of another cooperative significantly is refused (409 naming
  the feature and the overlap in m², never the other field), unless an operator forces it;
  "a field" is every version valid at some instant from the new version's start on.
- The significant cross-cooperative overlaps between all versions of the registered fields
  are worked out once per catalog version; flights and coverage use them to hide a
  cooperative's flights from the owner of a field drawn over its own, now or ever
  (``api.auth.can_see_flight_on_field``).
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Mapping, Sequence

from fastapi import HTTPException
from pydantic import BaseModel

from api.auth import Principal, can_see_field, can_see_flight_on_field
from api.catalog import Catalog
from api.problems import ProblemsError
from fields.importing import Importer, ImportPlan, overlap_message, plan_import
from fields.overlaps import (
    Overlap,
    foreign_overlaps,
    overlaps_between,
    overlaps_within,
)
from fields.registry import Field, FieldRegistry
from storage.metadata import FieldFlight, MetadataDB

log = logging.getLogger("agridrone.api")


class OverlapPair(BaseModel):
    """Two fields the caller may see that share ground, and how much."""

    field_id: str
    other_field_id: str
    area_m2: float
    field_pct: float
    other_pct: float
    same_coop: bool


def plan_checked(
    principal: Principal,
    features: Sequence[tuple[int, Field]],
    catalog: Catalog,
    *,
    force: bool,
    valid_from: Mapping[str, int | None],
) -> ImportPlan:
    """The plan of an import (``fields.importing.plan_import``) of (document index, field)
    pairs: 403 for ``force`` without an operator key; every significant overlap with
    another cooperative's field is logged (refused, or forced through by an operator)."""
    importer = Importer(
        coop=principal.subject if principal.role == "coop" else None,
        operator=principal.role == "operator",
        force=force,
    )
    plan = plan_import(importer, features, catalog.history, valid_from=valid_from)
    if plan.refusal == "force":
        raise HTTPException(
            403,
            detail=f"force=true is for operators: it registers fields over another "
            f"cooperative's; key {principal.key_id} is a {principal.role} key",
        )
    event = "field_overlap_forced" if force else "field_overlap_refused"
    for o in plan.overlaps:
        log.warning(
            "%s key=%s field=%s coop=%s other=%s other_coop=%s area_m2=%.1f",
            event,
            principal.key_id,
            o.a.id,
            o.a.coop,
            o.b.id,
            o.b.coop,
            o.area_m2,
        )
    return plan


def check_import(
    principal: Principal,
    features: Sequence[tuple[int, Field]],
    catalog: Catalog,
    *,
    force: bool,
    valid_from: Mapping[str, int | None],
) -> ImportPlan:
    """Refuse an import that breaks the zone-scope or overlap rules (403 / 409), before
    anything is stored; otherwise return the plan (``plan_checked``), whose other problems
    (another cooperative's features or ids) the routes answer themselves. Only the features
    the caller may register are checked for overlaps.
    """
    plan = plan_checked(principal, features, catalog, force=force, valid_from=valid_from)
    commune = plan.of_kind("forbidden", "commune")
    if commune:
        raise ProblemsError(
            403,
            detail={
                "message": "commune-wide no-spray zones (scope 'commune', no 'coop') bind "
                "every cooperative's fields and are registered by an operator; give the "
                f'zone "coop": {principal.subject!r} to make it your cooperative\'s',
                "problems": [p.reason for p in commune],
            },
            problems=[p.coded() for p in commune],
        )
    conflicts = plan.overlaps
    if not conflicts or force:
        return plan
    refused = plan.of_kind("conflict", "overlap")
    raise ProblemsError(
        409,
        detail={"message": overlap_message(conflicts), "problems": [p.reason for p in refused]},
        problems=[p.coded() for p in refused],
    )


def visible_overlaps(principal: Principal, registry: FieldRegistry | None) -> list[OverlapPair]:
    """The significant overlaps between fields the caller may both see, by field id."""
    if registry is None:
        return []
    mine = [f for f in registry.fields if can_see_field(principal, f.owner, f.coop)]
    pairs = [o for o in overlaps_within(mine) if o.significant]
    out = []
    for o in pairs:
        a, b, share_a, share_b = o.a, o.b, o.share_a, o.share_b
        if b.id < a.id:
            a, b, share_a, share_b = b, a, share_b, share_a
        out.append(
            OverlapPair(
                field_id=a.id,
                other_field_id=b.id,
                area_m2=round(o.area_m2, 1),
                field_pct=round(share_a * 100, 2),
                other_pct=round(share_b * 100, 2),
                same_coop=not o.across_coops,
            )
        )
    return sorted(out, key=lambda p: (p.field_id, p.other_field_id))


_shadow_lock = threading.Lock()
_shadows: weakref.WeakKeyDictionary[Catalog, dict[str, frozenset[str]]] = (
    weakref.WeakKeyDictionary()
)
#: The field versions of the last computation and their significant cross-cooperative
#: overlaps: the next catalog's computation pairs only the versions new since then (one
#: ``Field`` object per stored version, carried over by ``FieldHistory``).
_known: tuple[set[Field], list[Overlap]] | None = None


def foreign_overlaps_of(catalog: Catalog) -> dict[str, frozenset[str]]:
    """For each field id some version of which overlaps significantly a version of another
    cooperative's field (at any time, deleted ones included), those cooperatives;
    computed once per catalog version, incrementally from the previous computation's
    pairs. Every version counts, whenever it was valid: a flight is hidden when in doubt
    (unless its job named the field)."""
    with _shadow_lock:
        found = _shadows.get(catalog)
        if found is None:
            pairs = _cross_pairs(catalog.history.all_fields())
            found = foreign_overlaps(o for o in pairs if o.a.id != o.b.id)
            _shadows[catalog] = found
        return found


def _cross_pairs(fields: Sequence[Field]) -> list[Overlap]:
    """The significant cross-cooperative overlaps among ``fields``: those of the previous
    call between versions still here, plus those of the versions new since (spatial index
    queries over the new ones only). Call with ``_shadow_lock`` held."""
    global _known  # noqa: PLW0603 -- one cache shared by every catalog of the process
    current = set(fields)
    if _known is None:
        pairs = [o for o in overlaps_within(fields) if o.across_coops and o.significant]
    else:
        seen, before = _known
        new = [f for f in fields if f not in seen]
        pairs = [o for o in before if o.a in current and o.b in current]
        pairs += [o for o in overlaps_between(new, fields) if o.across_coops and o.significant]
    _known = (current, pairs)
    return pairs


def visible_parts(
    principal: Principal,
    field: Field,
    parts: Sequence[FieldFlight],
    catalog: Catalog,
    metadata: MetadataDB,
) -> list[FieldFlight]:
    """The flights over ``field`` the caller may see through it: a field drawn over a field
    of the drone's cooperative shows that cooperative's flights only when the job named it."""
    overlapped = foreign_overlaps_of(catalog).get(field.id, frozenset())
    if not overlapped:
        return list(parts)
    kept = []
    for part in parts:
        named = False
        if part.coop in overlapped:
            flight = metadata.flight(part.flight_id)
            named = flight is not None and field.id in flight.summary_dict().get("job_fields", [])
        if can_see_flight_on_field(
            principal,
            part.coop,
            (field.owner, field.coop),
            overlapped_coops=overlapped,
            named_by_job=named,
        ):
            kept.append(part)
    return kept
