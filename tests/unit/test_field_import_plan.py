"""The import plan (``fields.importing.plan_import``), pure: each feature added, updated,
unchanged or refused, with the kind of refusal the API answers (403, 409, 422)."""

from __future__ import annotations

from typing import Any

from fields.importing import Importer, import_starts, plan_import
from fields.registry import Field, parse_fields
from fields.stored import FieldHistory, to_stored
from fields.synthetic import collection, feature, rectangle
from storage.metadata import FieldVersion

NOW = 1_800_000_000_000


def parsed(*features: dict[str, Any]) -> list[Field]:
    registry = parse_fields(collection(*features))
    return [*registry.fields, *registry.no_spray]


def history_of(*fields: Field) -> FieldHistory:
    versions = [
        FieldVersion(row, 1, None, None, NOW - 1000, "test", "") for row in to_stored(fields)
    ]
    return FieldHistory(versions)


def plan(importer: Importer, new: list[Field], history: FieldHistory) -> Any:
    return plan_import(
        importer, list(enumerate(new)), history, valid_from=import_starts(new, history, NOW)
    )


COOP_C1 = Importer("c1", operator=False)
OPERATOR_C1 = Importer("c1", operator=True)


def test_new_changed_and_identical_features_are_added_updated_and_unchanged() -> None:
    stored = parsed(
        feature("same", rectangle(50, 50, 0, 0), coop="c1"),
        feature("moved", rectangle(50, 50, 100, 0), coop="c1"),
    )
    new = parsed(
        feature("same", rectangle(50, 50, 0, 0), coop="c1"),
        feature("moved", rectangle(40, 50, 100, 0), coop="c1"),
        feature("fresh", rectangle(50, 50, 200, 0), coop="c1"),
    )
    p = plan(COOP_C1, new, history_of(*stored))
    assert [x.field.id for x in p.added] == ["fresh"]
    assert [x.field.id for x in p.updated] == ["moved"]
    assert [x.field.id for x in p.unchanged] == ["same"]
    assert p.problems == []


def test_a_cooperative_forcing_is_refused_whole() -> None:
    new = parsed(feature("a", rectangle(50, 50), coop="c1"))
    p = plan(Importer("c1", operator=False, force=True), new, history_of())
    assert p.refusal == "force"
    assert p.to_store == []


def test_a_commune_wide_zone_is_forbidden_to_a_cooperative_and_allowed_to_an_operator() -> None:
    new = parsed(feature("z", rectangle(50, 50), kind="no_spray"))
    (problem, *_) = plan(COOP_C1, new, history_of()).problems
    assert (problem.kind, problem.rule) == ("forbidden", "commune")
    assert problem.reason == "feature z: scope 'commune' needs an operator key"
    operator = plan(OPERATOR_C1, new, history_of())
    assert operator.problems == []
    assert [x.field.id for x in operator.added] == ["z"]


def test_another_cooperatives_feature_is_invalid_and_its_id_a_conflict() -> None:
    stored = parsed(feature("theirs", rectangle(50, 50, 500, 0), coop="c2"))
    new = parsed(
        feature("foreign", rectangle(50, 50, 0, 0), coop="c2"),
        feature("theirs", rectangle(50, 50, 500, 0), coop="c1"),
    )
    p = plan(OPERATOR_C1, new, history_of(*stored))
    assert [(x.index, x.kind, x.rule) for x in p.problems] == [
        (0, "invalid", "foreign"),
        (1, "conflict", "taken"),
    ]
    assert p.to_store == []


def test_a_taken_id_in_the_file_does_not_hide_its_field_from_the_others() -> None:
    """The file names another cooperative's id (refused: taken) and draws a new field over
    that cooperative's field: the taken feature replaces nothing, so the new field overlaps
    the stored one."""
    stored = parsed(feature("theirs", rectangle(100, 50, 0, 0), coop="c2"))
    new = parsed(
        feature("theirs", rectangle(50, 50, 500, 0), coop="c1"),
        feature("over", rectangle(100, 50, 0, 0), coop="c1"),
    )
    p = plan(COOP_C1, new, history_of(*stored))
    assert [(x.index, x.rule) for x in p.problems] == [(0, "taken"), (1, "overlap")]
    assert p.problems[1].params == {"area_m2": 5000, "pct": 100}
    assert p.to_store == []


def test_an_overlap_with_another_cooperatives_field_is_a_conflict_unless_forced() -> None:
    stored = parsed(feature("theirs", rectangle(100, 50, 0, 0), coop="c2"))
    new = parsed(feature("mine", rectangle(100, 50, 50, 0), coop="c1"))
    refused = plan(COOP_C1, new, history_of(*stored))
    (problem,) = refused.problems
    assert (problem.kind, problem.rule) == ("conflict", "overlap")
    assert problem.reason == (
        "feature mine: overlaps a field of another cooperative by about 2500 m² (50 % of mine)"
    )
    forced = plan(Importer("c1", operator=True, force=True), new, history_of(*stored))
    assert forced.problems == []
    assert len(forced.overlaps) == 1
    assert [x.field.id for x in forced.added] == ["mine"]


def test_a_cooperatives_own_overlapping_fields_are_no_conflict() -> None:
    stored = parsed(feature("old", rectangle(100, 50, 0, 0), coop="c1"))
    new = parsed(feature("mine", rectangle(100, 50, 50, 0), coop="c1"))
    assert plan(COOP_C1, new, history_of(*stored)).problems == []


def test_two_new_fields_of_different_cooperatives_in_one_import_conflict() -> None:
    new = parsed(
        feature("a", rectangle(100, 50, 0, 0), coop="c1"),
        feature("b", rectangle(100, 50, 50, 0), coop="c2"),
    )
    p = plan(Importer(None, operator=True), new, history_of())
    assert {x.field_id for x in p.problems} == {"a"}
    assert p.of_kind("conflict", "overlap")


def test_a_repeated_id_is_refused_after_its_first_use() -> None:
    one = parsed(feature("a", rectangle(50, 50), coop="c1"))[0]
    p = plan_import(COOP_C1, [(0, one), (1, one)], history_of(), valid_from={"a": None})
    (problem,) = p.problems
    assert (problem.index, problem.rule) == (1, "duplicate")
    assert [x.index for x in p.added] == [0]
