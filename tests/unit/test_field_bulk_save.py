"""``FieldTable.save_fields_bulk`` keeps the same history as ``save_fields``, and refuses, row by
row, what changed since the import planned against the history."""

from __future__ import annotations

from pathlib import Path

import pytest

from fields.registry import parse_fields
from fields.stored import to_stored
from fields.synthetic import collection, feature, rectangle
from storage.metadata import FieldOwnershipError, FieldsChangedError, MetadataDB, StoredField
from storage.metadata.fields import BulkRefusal, BulkSave


def rows(*specs: tuple[str, float], coop: str = "c1") -> list[StoredField]:
    features = [
        feature(fid, rectangle(w, 50, 100 * k, 0), coop=coop) for k, (fid, w) in enumerate(specs)
    ]
    registry = parse_fields(collection(*features))
    return to_stored(registry.fields)


def history(db: MetadataDB) -> list[tuple[object, ...]]:
    return [
        (v.id, v.seq, v.valid_from_ms, v.valid_to_ms, v.field.feature, v.recorded_by, v.ended_by)
        for v in db.field_versions()
    ]


def test_the_same_saves_leave_the_same_history(tmp_path: Path) -> None:
    one, bulk = MetadataDB(tmp_path / "one.db"), MetadataDB(tmp_path / "bulk.db")
    first = rows(("a", 50), ("b", 50))
    second = rows(("a", 50), ("b", 40), ("c", 50))
    assert one.save_fields(first, at_ms=1_000, by="x") == ["a", "b"]
    assert one.save_fields(second, at_ms=2_000, by="y") == ["b", "c"]
    assert bulk.save_fields_bulk(first, expected=None, at_ms=1_000, by="x").changed == ["a", "b"]
    assert bulk.save_fields_bulk(second, expected=None, at_ms=2_000, by="y").changed == ["b", "c"]
    assert history(bulk) == history(one)
    assert bulk.fields_version() == one.fields_version()


def test_the_bulk_save_keeps_the_same_history_on_each_store(
    metadata: MetadataDB, tmp_path: Path
) -> None:
    """PostgreSQL inserts the new versions with COPY; the history is the row-wise one."""
    one = MetadataDB(tmp_path / "one.db")
    first = rows(("a", 50), ("b", 50))
    second = rows(("a", 50), ("b", 40), ("c", 50))
    assert one.save_fields(first, at_ms=1_000, by="x") == ["a", "b"]
    assert one.save_fields(second, at_ms=2_000, by="y") == ["b", "c"]
    bulk = metadata.save_fields_bulk
    assert bulk(first, expected=None, at_ms=1_000, by="x").changed == ["a", "b"]
    assert bulk(second, expected=None, at_ms=2_000, by="y").changed == ["b", "c"]
    assert history(metadata) == history(one)
    assert metadata.stored_fields() == one.stored_fields()


def test_an_id_of_another_cooperative_refuses_the_whole_save(tmp_path: Path) -> None:
    db = MetadataDB(tmp_path / "m.db")
    db.save_fields_bulk(rows(("a", 50)), expected=None, at_ms=1_000)
    with pytest.raises(FieldOwnershipError):
        db.save_fields_bulk(rows(("a", 40), ("b", 50)), expected=None, at_ms=2_000, coop="c2")
    assert [v.id for v in db.field_versions()] == ["a"]


def test_a_repeated_id_is_a_caller_error(tmp_path: Path) -> None:
    db = MetadataDB(tmp_path / "m.db")
    with pytest.raises(ValueError, match="twice"):
        db.save_fields_bulk([*rows(("a", 50)), *rows(("a", 50))], expected=None)


def test_a_row_whose_id_another_cooperative_registered_since_the_plan_is_refused_alone(
    tmp_path: Path,
) -> None:
    db = MetadataDB(tmp_path / "m.db")
    db.save_fields(rows(("x", 50), coop="c2"), at_ms=1_000, by="api:c2", coop="c2")
    saved = db.save_fields_bulk(
        rows(("x", 40), ("y", 50)), at_ms=2_000, by="cli", expected={"x": None, "y": None}
    )
    assert saved.changed == ["y"]
    assert saved.refused == [BulkRefusal("x", "taken")]
    (x,) = db.field_versions("x")
    assert (x.field.coop, x.valid_to_ms, x.recorded_by) == ("c2", None, "api:c2")


def test_a_row_whose_id_changed_since_the_plan_is_refused(tmp_path: Path) -> None:
    db = MetadataDB(tmp_path / "m.db")
    db.save_fields(rows(("a", 50)), at_ms=1_000)
    db.save_fields(rows(("a", 45)), at_ms=2_000)
    saved = db.save_fields_bulk(rows(("a", 40)), at_ms=3_000, expected={"a": 1})
    assert saved == BulkSave([], [BulkRefusal("a", "changed")])
    assert [v.seq for v in db.field_versions("a")] == [1, 2]


def test_a_row_whose_id_is_as_planned_is_stored(tmp_path: Path) -> None:
    db = MetadataDB(tmp_path / "m.db")
    db.save_fields(rows(("a", 50)), at_ms=1_000)
    saved = db.save_fields_bulk(
        rows(("a", 40), ("b", 50)), at_ms=2_000, expected={"a": 1, "b": None}
    )
    assert saved == BulkSave(["a", "b"], [])


def test_taking_over_another_cooperatives_id_needs_take_over(tmp_path: Path) -> None:
    db = MetadataDB(tmp_path / "m.db")
    db.save_fields(rows(("a", 50), coop="c2"), at_ms=1_000)
    saved = db.save_fields_bulk(rows(("a", 40)), at_ms=2_000, expected={"a": 1}, take_over=True)
    assert saved == BulkSave(["a"], [])
    assert [v.field.coop for v in db.field_versions("a")] == ["c2", "c1"]


def test_a_row_without_an_expectation_is_a_caller_error(tmp_path: Path) -> None:
    db = MetadataDB(tmp_path / "m.db")
    with pytest.raises(ValueError, match="no expected version"):
        db.save_fields_bulk(rows(("a", 50), ("b", 50)), expected={"a": None})
    assert db.field_versions() == []


def test_an_atomic_save_refuses_whole_when_an_id_was_registered_since_the_plan(
    metadata: MetadataDB,
) -> None:
    """The API's import: all or nothing, even for an operator who may move fields."""
    metadata.save_fields(rows(("x", 50), coop="c2"), at_ms=1_000, by="api:c2", coop="c2")
    with pytest.raises(FieldsChangedError, match="'x'") as refused:
        metadata.save_fields_bulk(
            rows(("x", 40), ("y", 50)),
            at_ms=2_000,
            by="api:operator",
            expected={"x": None, "y": None},
            take_over=True,
            atomic=True,
        )
    assert refused.value.ids == ("x",)
    assert "c2" not in str(refused.value)
    assert [(v.id, v.field.coop) for v in metadata.field_versions()] == [("x", "c2")]


def test_an_atomic_save_an_operator_planned_moves_a_field_between_cooperatives(
    metadata: MetadataDB,
) -> None:
    metadata.save_fields(rows(("x", 50), coop="c2"), at_ms=1_000, by="api:c2", coop="c2")
    saved = metadata.save_fields_bulk(
        rows(("x", 50), coop="c1"),
        at_ms=2_000,
        by="api:operator",
        expected={"x": 1},
        take_over=True,
        atomic=True,
    )
    assert saved == BulkSave(["x"], [])
    assert [(v.seq, v.field.coop) for v in metadata.field_versions()] == [(1, "c2"), (2, "c1")]
