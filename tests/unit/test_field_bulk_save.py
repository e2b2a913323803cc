"""``FieldTable.save_fields_bulk`` keeps the same history as ``save_fields``."""

from __future__ import annotations

from pathlib import Path

import pytest

from fields.registry import parse_fields
from fields.stored import to_stored
from fields.synthetic import collection, feature, rectangle
from storage.metadata import FieldOwnershipError, MetadataDB, StoredField


def rows(*specs: tuple[str, float]) -> list[StoredField]:
    features = [
        feature(fid, rectangle(w, 50, 100 * k, 0), coop="c1") for k, (fid, w) in enumerate(specs)
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
    for save in (one.save_fields, bulk.save_fields_bulk):
        assert save(first, at_ms=1_000, by="x") == ["a", "b"]
        assert save(second, at_ms=2_000, by="y") == ["b", "c"]
    assert history(bulk) == history(one)
    assert bulk.fields_version() == one.fields_version()


def test_the_bulk_save_keeps_the_same_history_on_each_store(
    metadata: MetadataDB, tmp_path: Path
) -> None:
    """PostgreSQL inserts the new versions with COPY; the history is the row-wise one."""
    one = MetadataDB(tmp_path / "one.db")
    first = rows(("a", 50), ("b", 50))
    second = rows(("a", 50), ("b", 40), ("c", 50))
    for save in (one.save_fields, metadata.save_fields_bulk):
        assert save(first, at_ms=1_000, by="x") == ["a", "b"]
        assert save(second, at_ms=2_000, by="y") == ["b", "c"]
    assert history(metadata) == history(one)
    assert metadata.stored_fields() == one.stored_fields()


def test_an_id_of_another_cooperative_refuses_the_whole_save(tmp_path: Path) -> None:
    db = MetadataDB(tmp_path / "m.db")
    db.save_fields_bulk(rows(("a", 50)), at_ms=1_000)
    with pytest.raises(FieldOwnershipError):
        db.save_fields_bulk(rows(("a", 40), ("b", 50)), at_ms=2_000, coop="c2")
    assert [v.id for v in db.field_versions()] == ["a"]


def test_a_repeated_id_is_a_caller_error(tmp_path: Path) -> None:
    db = MetadataDB(tmp_path / "m.db")
    with pytest.raises(ValueError, match="twice"):
        db.save_fields_bulk([*rows(("a", 50)), *rows(("a", 50))])
