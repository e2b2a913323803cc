"""Field versions in the metadata database: who may write an id, when each version is valid,
deletion that keeps the history, the registry as it was at an instant, and the in-place
migration of a database made before versions."""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.catalog import FieldCatalog
from api.overlaps import foreign_overlaps_of
from fields.registry import parse_fields
from fields.stored import FieldHistory, to_stored
from fields.synthetic import collection, feature, rectangle
from storage.metadata import (
    FieldOwnershipError,
    FieldVersionError,
    MetadataDB,
    StoredField,
    UnknownFieldError,
)

T = 1_800_000_000_000


def row(fid: str, coop: str = "htx-a", width: float = 40.0, name: str = "Ruộng") -> StoredField:
    doc = collection(
        feature(fid, rectangle(width, 25), name=name, owner=f"nd-{fid}", coop=coop),
    )
    (stored,) = to_stored(parse_fields(doc).fields)
    return stored


def test_a_new_field_is_valid_from_the_beginning_of_time(metadata: MetadataDB) -> None:
    metadata.save_fields([row("f1")], at_ms=T, by="coop:htx-a")
    (v,) = metadata.field_versions("f1")
    assert (v.seq, v.valid_from_ms, v.valid_to_ms, v.recorded_by) == (1, None, None, "coop:htx-a")
    assert v.valid_at(0)


def test_saving_the_same_field_again_changes_nothing(metadata: MetadataDB) -> None:
    metadata.save_fields([row("f1")], at_ms=T)
    before = metadata.fields_version()
    assert metadata.save_fields([row("f1")], at_ms=T + 5) == []
    assert metadata.fields_version() == before
    assert len(metadata.field_versions("f1")) == 1


def test_a_changed_save_starts_a_version_at_the_save_and_ends_the_one_before(
    metadata: MetadataDB,
) -> None:
    metadata.save_fields([row("f1")], at_ms=T)
    metadata.save_fields([row("f1", width=50)], at_ms=T + 1000)
    old, new = metadata.field_versions("f1")
    assert (old.valid_from_ms, old.valid_to_ms) == (None, T + 1000)
    assert (new.seq, new.valid_from_ms, new.valid_to_ms) == (2, T + 1000, None)
    assert metadata.stored_field("f1") == new.field


def test_a_coop_cannot_save_an_id_of_another_coop_and_nothing_is_stored(
    metadata: MetadataDB,
) -> None:
    metadata.save_fields([row("f1", coop="htx-b")], at_ms=T)
    before = metadata.field_versions()
    with pytest.raises(FieldOwnershipError) as caught:
        metadata.save_fields([row("f-new"), row("f1")], at_ms=T + 1, coop="htx-a")
    assert "'f1'" in str(caught.value)
    assert "htx-b" not in str(caught.value)
    assert metadata.field_versions() == before


def test_an_id_deleted_by_another_coop_is_still_not_free(metadata: MetadataDB) -> None:
    metadata.save_fields([row("f1", coop="htx-b")], at_ms=T)
    metadata.end_field("f1", at_ms=T + 1)
    with pytest.raises(FieldOwnershipError):
        metadata.save_fields([row("f1")], at_ms=T + 2, coop="htx-a")


def test_a_redraw_may_start_in_the_past_after_the_current_version(metadata: MetadataDB) -> None:
    metadata.save_fields([row("f1")], at_ms=T)
    metadata.redraw_field(row("f1", width=50), at_ms=T + 10_000, valid_from_ms=T - 5_000)
    first, second = metadata.field_versions("f1")
    assert first.valid_to_ms == second.valid_from_ms == T - 5_000
    assert second.recorded_ms == T + 10_000
    with pytest.raises(FieldVersionError, match="after the current version's start"):
        metadata.redraw_field(row("f1", width=60), at_ms=T + 20_000, valid_from_ms=T - 5_000)
    with pytest.raises(FieldVersionError, match="future"):
        metadata.redraw_field(row("f1", width=60), at_ms=T + 20_000, valid_from_ms=T + 30_000)
    assert len(metadata.field_versions("f1")) == 2


def test_only_the_owner_coop_or_an_operator_redraws_or_deletes(metadata: MetadataDB) -> None:
    metadata.save_fields([row("f1")], at_ms=T)
    with pytest.raises(UnknownFieldError):
        metadata.redraw_field(row("f1", width=50), at_ms=T + 1, coop="htx-b")
    with pytest.raises(UnknownFieldError):
        metadata.end_field("f1", at_ms=T + 1, coop="htx-b")
    with pytest.raises(UnknownFieldError):
        metadata.redraw_field(row("f-unknown"), at_ms=T + 1)
    assert len(metadata.field_versions("f1")) == 1
    metadata.redraw_field(row("f1", width=50), at_ms=T + 2, coop="htx-a")
    metadata.end_field("f1", at_ms=T + 3)
    assert [v.valid_to_ms for v in metadata.field_versions("f1")] == [T + 2, T + 3]


def test_a_deleted_field_leaves_the_current_registry_but_not_its_history(
    metadata: MetadataDB,
) -> None:
    metadata.save_fields([row("f1"), row("f2")], at_ms=T)
    ended = metadata.end_field("f1", at_ms=T + 100, by="ops")
    assert (ended.valid_to_ms, ended.ended_by) == (T + 100, "ops")
    assert [f.id for f in metadata.stored_fields()] == ["f2"]
    assert metadata.stored_field("f1") is None
    assert "f1" not in metadata.field_owners()
    assert metadata.field_ownership().at(T + 99)["f1"] == ("nd-f1", "htx-a")
    assert "f1" not in metadata.field_ownership().at(T + 100)
    with pytest.raises(UnknownFieldError):
        metadata.end_field("f1", at_ms=T + 200)


def test_the_registry_at_an_instant_holds_the_versions_valid_then(metadata: MetadataDB) -> None:
    metadata.save_fields([row("f1"), row("f2")], at_ms=T)
    metadata.redraw_field(row("f1", width=80), at_ms=T + 1000)
    metadata.end_field("f2", at_ms=T + 2000)
    history = FieldHistory(metadata.field_versions())
    _, before = history.registry_at(T + 999)
    _, between = history.registry_at(T + 1500)
    _, after = history.registry_at(T + 2000)
    assert before is not None
    assert between is not None
    assert after is not None
    assert [round(f.area_m2) for f in before.fields] == [1000, 1000]
    assert [(f.id, round(f.area_m2)) for f in between.fields] == [("f1", 2000), ("f2", 1000)]
    assert [f.id for f in after.fields] == ["f1"]
    assert history.registry_at(T + 1500)[1] is between  # one registry per version set


def test_the_versions_at_an_instant_are_the_same_asked_in_any_order(
    metadata: MetadataDB,
) -> None:
    metadata.save_fields([row("f1"), row("f2"), row("f3")], at_ms=T)
    metadata.redraw_field(row("f1", width=80), at_ms=T + 1000)
    metadata.end_field("f2", at_ms=T + 2000)
    versions = metadata.field_versions()
    instants = [0, T - 1, T, T + 1, T + 999, T + 1000, T + 1001, T + 1999, T + 2000, T + 9999]
    history = FieldHistory(versions)
    for ms in [*reversed(instants), *instants]:
        assert history.key_at(ms) == tuple((v.id, v.seq) for v in versions if v.valid_at(ms))
    assert dict(history.key_at(T + 999))["f1"] == 1
    assert dict(history.key_at(T + 1000))["f1"] == 2
    assert "f2" not in dict(history.key_at(T + 2000))


def test_a_version_valid_from_instant_zero_starts_there(metadata: MetadataDB) -> None:
    metadata.save_fields([row("f1")], at_ms=T)
    (v,) = metadata.field_versions("f1")
    later = replace(v, seq=2, valid_from_ms=0)
    history = FieldHistory([replace(v, valid_to_ms=0), later])
    assert history.key_at(-1) == (("f1", 1),)
    assert history.key_at(0) == (("f1", 2),)


def test_the_fields_by_id_are_shared_between_instants_of_one_version_set(
    metadata: MetadataDB,
) -> None:
    metadata.save_fields([row("f1"), row("f2")], at_ms=T)
    metadata.end_field("f2", at_ms=T + 2000)
    catalog = FieldCatalog(metadata).current()
    before = catalog.by_id_at(T + 10)
    assert catalog.by_id_at(T + 1999) is before
    assert sorted(before) == ["f1", "f2"]
    assert sorted(catalog.by_id_at(T + 2000)) == ["f1"]


def test_the_owners_at_an_instant_are_those_of_every_version_valid_then(
    metadata: MetadataDB,
) -> None:
    metadata.save_fields([row("f1"), row("f2"), row("f3", coop="htx-b")], at_ms=T)
    metadata.save_fields([row("f1", coop="htx-b")], at_ms=T + 1000)
    metadata.end_field("f2", at_ms=T + 2000)
    catalog = FieldCatalog(metadata).current()
    ownership = metadata.field_ownership()
    for ms in (T, T + 999, T + 1000, T + 1999, T + 2000, T + 1, T - 1):
        assert catalog.owners_at(ms) == ownership.at(ms)
    assert catalog.owners_at(T + 999)["f1"] == ("nd-f1", "htx-a")
    assert catalog.owners_at(T + 1000)["f1"] == ("nd-f1", "htx-b")
    assert "f2" not in catalog.owners_at(T + 2000)
    assert catalog.owners_at(T + 1500) is catalog.owners_at(T + 1001)


def zone(fid: str, coop: str = "", x0: float = 0.0) -> StoredField:
    doc = collection(feature(fid, rectangle(10, 10, x0=x0), kind="no_spray", coop=coop))
    (stored,) = to_stored(parse_fields(doc).no_spray)
    return stored


def test_a_summary_older_than_a_past_dated_redraw_is_outdated(metadata: MetadataDB) -> None:
    metadata.save_fields([row("f1")], at_ms=T)
    metadata.redraw_field(row("f1", width=50), at_ms=T + 10_000, valid_from_ms=T + 1_000)
    history = FieldHistory(metadata.field_versions())
    assert history.outdated(start_ms=T + 2_000, computed_ms=T + 5_000)
    assert not history.outdated(start_ms=T + 2_000, computed_ms=T + 20_000)
    assert not history.outdated(start_ms=T, computed_ms=T + 5_000)


def test_a_past_dated_redraw_outdates_flights_over_other_fields_too(
    metadata: MetadataDB,
) -> None:
    # A flight that missed the old outline may hit the new one: any flight of the time.
    metadata.save_fields([row("f1"), row("f2", coop="htx-b")], at_ms=T)
    metadata.redraw_field(row("f1", width=50), at_ms=T + 10_000, valid_from_ms=T + 1_000)
    history = FieldHistory(metadata.field_versions())
    assert history.summary_changes() == ((T + 1_000, T + 10_000),)


def test_a_past_dated_rename_outdates_nothing(metadata: MetadataDB) -> None:
    metadata.save_fields([row("f1")], at_ms=T)
    version = metadata.redraw_field(
        row("f1", name="Ruộng mới"), at_ms=T + 10_000, valid_from_ms=T + 1_000
    )
    history = FieldHistory(metadata.field_versions())
    assert not history.changes_summaries(version)
    assert not history.outdated(start_ms=T + 2_000, computed_ms=T + 5_000)


def test_a_new_owner_outdates_nothing(metadata: MetadataDB) -> None:
    metadata.save_fields([row("f1")], at_ms=T)
    doc = collection(feature("f1", rectangle(40, 25), name="Ruộng", owner="nd-new", coop="htx-a"))
    (moved,) = to_stored(parse_fields(doc).fields)
    version = metadata.redraw_field(moved, at_ms=T + 10_000, valid_from_ms=T + 1_000)
    assert not FieldHistory(metadata.field_versions()).changes_summaries(version)


def test_a_new_field_outdates_nothing(metadata: MetadataDB) -> None:
    metadata.save_fields([row("f1")], at_ms=T)
    metadata.save_fields([row("f2", coop="htx-b")], at_ms=T + 10_000)
    history = FieldHistory(metadata.field_versions())
    assert history.summary_changes() == ()


def test_a_field_moved_to_another_cooperative_outdates_only_under_a_cooperative_zone(
    metadata: MetadataDB,
) -> None:
    metadata.save_fields([row("f1"), row("f2"), zone("z-b", coop="htx-b", x0=100.0)], at_ms=T)
    free = metadata.redraw_field(row("f1", coop="htx-b"), at_ms=T + 10_000, valid_from_ms=T + 1)
    assert not FieldHistory(metadata.field_versions()).changes_summaries(free)
    metadata.save_fields([zone("z-a", coop="htx-a")], at_ms=T + 20_000)
    under = metadata.redraw_field(row("f2", coop="htx-b"), at_ms=T + 30_000, valid_from_ms=T + 2)
    assert FieldHistory(metadata.field_versions()).changes_summaries(under)


def test_a_zone_given_to_another_cooperative_outdates_flights(metadata: MetadataDB) -> None:
    metadata.save_fields([row("f1"), zone("z1", coop="htx-a")], at_ms=T)
    version = metadata.redraw_field(zone("z1", coop="htx-b"), at_ms=T + 10_000, valid_from_ms=T)
    assert FieldHistory(metadata.field_versions()).changes_summaries(version)


def test_a_database_made_before_versions_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = row("f1")
    with sqlite3.connect(path) as conn:
        # The schema of storage/metadata/fields.py before versions (commit 2ce5f0c).
        conn.executescript(
            """
CREATE TABLE fields (
    id         TEXT    PRIMARY KEY,
    kind       TEXT    NOT NULL CHECK (kind IN ('field', 'no_spray')),
    coop       TEXT    NOT NULL,
    owner      TEXT    NOT NULL,
    feature    TEXT    NOT NULL,
    updated_ms INTEGER NOT NULL
);"""
        )
        conn.execute(
            "INSERT INTO fields VALUES (?, ?, ?, ?, ?, ?)",
            (old.id, old.kind, old.coop, old.owner, old.feature, T),
        )
    conn.close()
    for _ in range(2):  # opening again after the migration changes nothing
        db = MetadataDB(path)
        (v,) = db.field_versions()
        assert (v.field, v.seq, v.valid_from_ms, v.valid_to_ms) == (old, 1, None, None)
        assert (v.recorded_ms, v.recorded_by) == (T, "migrated")
        assert db.stored_fields() == [old]
        assert db.fields_version() == (1, T)
        db.close()
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()
    assert "fields" not in tables


_OPS = st.lists(
    st.tuples(
        st.sampled_from(["save", "redraw", "end"]),
        st.sampled_from(["f1", "f2"]),
        st.integers(min_value=0, max_value=3),  # ms after the previous operation
        st.integers(min_value=20, max_value=22),  # width: equal widths are no change
    ),
    max_size=12,
)


@settings(max_examples=40, deadline=None)
@given(ops=_OPS)
def test_any_history_holds_at_most_one_version_per_field_at_every_instant(
    ops: list[tuple[str, str, int, int]],
) -> None:
    db = MetadataDB(":memory:")
    at = T
    for op, fid, step, width in ops:
        at += step
        with contextlib.suppress(UnknownFieldError, FieldVersionError):
            if op == "save":
                db.save_fields([row(fid, width=width)], at_ms=at)
            elif op == "redraw":
                db.redraw_field(row(fid, width=width), at_ms=at)
            else:
                db.end_field(fid, at_ms=at)
    versions = db.field_versions()
    for fid in ("f1", "f2"):
        mine = [v for v in versions if v.id == fid]
        assert [v.seq for v in mine] == list(range(1, len(mine) + 1))
        assert sum(v.valid_to_ms is None for v in mine) <= 1
        for older, newer in itertools.pairwise(mine):
            assert older.valid_to_ms is not None
            assert newer.valid_from_ms is not None
            assert older.valid_to_ms <= newer.valid_from_ms
            assert (older.valid_from_ms or -1) < older.valid_to_ms
        for t in range(T - 1, at + 2):
            valid = [v for v in mine if v.valid_at(t)]
            assert len(valid) <= 1
            owners = db.field_ownership().at(t)
            assert (fid in owners) == bool(valid)
    current = {f.id for f in db.stored_fields()}
    assert current == {v.id for v in versions if v.valid_to_ms is None}
    db.close()


def test_changes_within_one_millisecond_stay_in_order(metadata: MetadataDB) -> None:
    metadata.save_fields([row("f1")], at_ms=T)
    for width in (41, 42, 43):
        metadata.redraw_field(row("f1", width=width), at_ms=T)
    starts = [v.valid_from_ms for v in metadata.field_versions("f1")]
    assert starts == [None, T, T + 1, T + 2]


def test_versions_since_an_instant_keep_deleted_fields_valid_then(metadata: MetadataDB) -> None:
    metadata.save_fields([row("f1"), row("f2", coop="htx-b")], at_ms=T)
    metadata.end_field("f1", at_ms=T + 1_000)
    history = FieldHistory(metadata.field_versions())
    assert [f.id for f in history.versions_since(None)] == ["f1", "f2"]
    assert [f.id for f in history.versions_since(T + 999)] == ["f1", "f2"]
    assert [f.id for f in history.versions_since(T + 1_000)] == ["f2"]


def test_a_deleted_field_still_hides_flights_through_a_field_drawn_over_it(
    metadata: MetadataDB,
) -> None:
    metadata.save_fields([row("f1"), row("f2", coop="htx-b")], at_ms=T)
    metadata.end_field("f1", at_ms=T + 1_000)
    catalog = FieldCatalog(metadata).current()
    assert foreign_overlaps_of(catalog) == {
        "f1": frozenset({"htx-b"}),
        "f2": frozenset({"htx-a"}),
    }
