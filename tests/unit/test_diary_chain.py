"""The spray diary's hash chain: versions appended by ``sync_diary`` on both metadata
stores, and every single change to a stored row named by ``verify_chain``."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.diary_chain import GENESIS, ChainRow, verify_chain
from storage.metadata import MetadataDB, WantedEntry


def wanted(key: str, body: dict[str, Any], first: int = 1000) -> WantedEntry:
    return WantedEntry(key, "htx-a", "d1", first, first + 60_000, body)


def test_versions_supersede_and_withdraw_on_both_stores(metadata: MetadataDB) -> None:
    a1 = {"applied_l": 5.5, "product": "Validan 5SL", "pilot": "Nguyễn Văn Hưng"}
    assert metadata.sync_diary("f1", [wanted("k1", a1), wanted("k2", {"x": 1})], {"k1"}) == 2
    assert metadata.sync_diary("f1", [wanted("k1", a1)], {"k1"}) == 0  # nothing changed
    a2 = {**a1, "applied_l": 6.25}
    assert metadata.sync_diary("f1", [wanted("k1", a2)], {"k1"}) == 1
    assert metadata.sync_diary("f1", [], {"k2"}) == 1  # k2's flights are gone
    assert metadata.sync_diary("f1", [], {"k2", "k3"}) == 0  # already withdrawn; k3 unknown
    rows = metadata.diary_rows("f1")
    assert [(r.n, r.entry_key) for r in rows] == [(1, "k1"), (2, "k2"), (3, "k1"), (4, "k2")]
    docs = [r.doc() for r in rows]
    assert docs[0]["version"] == 1
    assert docs[0]["supersedes"] is None
    assert docs[2]["version"] == 2
    assert docs[2]["supersedes"] == rows[0].entry_hash
    assert docs[2]["applied_l"] == 6.25
    assert docs[2]["pilot"] == "Nguyễn Văn Hưng"
    assert docs[3]["withdrawn"] is True
    assert docs[3]["supersedes"] == rows[1].entry_hash
    assert rows[0].prev_hash == GENESIS
    assert [r.prev_hash for r in rows[1:]] == [r.entry_hash for r in rows[:-1]]
    report = verify_chain(metadata.diary_chain())
    assert report.ok
    assert report.entries == {"f1": 4}
    assert report.heads == {"f1": rows[-1].entry_hash}


def test_a_drone_s_latest_versions_are_read_by_the_time_they_span(metadata: MetadataDB) -> None:
    """What a flight's compliance flags are read from, on both stores."""
    metadata.sync_diary("f1", [wanted("k1", {"v": 1}), wanted("k2", {"v": 1}, 500_000)], {"k1"})
    metadata.sync_diary("f1", [wanted("k1", {"v": 2})], {"k1"})  # a second version of k1
    metadata.sync_diary("f2", [wanted("k1", {"v": 3})], {"k1"})  # another field's entry
    other = WantedEntry("k9", "htx-a", "d2", 1000, 61_000, {"v": 9})  # another drone's
    metadata.sync_diary("f1", [other], {"k9"})
    found = metadata.diary_latest_of_drone("htx-a", "d1", 30_000, 30_000)
    assert [(r.field_id, r.entry_key, r.doc()["v"]) for r in found] == [
        ("f1", "k1", 2),
        ("f2", "k1", 3),
    ]
    assert metadata.diary_latest_of_drone("htx-a", "d1", 61_000, 500_000) != []  # both ends
    assert [
        r.entry_key for r in metadata.diary_latest_of_drone("htx-a", "d1", 62_000, 499_999)
    ] == []
    metadata.sync_diary("f2", [], {"k1"})  # withdrawn: the withdrawn version is the latest
    [f2] = [
        r for r in metadata.diary_latest_of_drone("htx-a", "d1", 0, 10**9) if r.field_id == "f2"
    ]
    assert f2.doc()["withdrawn"] is True


def test_a_row_changed_in_the_database_is_named(metadata: MetadataDB) -> None:
    for i in range(4):
        metadata.sync_diary("f1", [wanted(f"k{i}", {"litres": i})], {f"k{i}"})
    metadata.sync_diary("f2", [wanted("k0", {"litres": 9})], {"k0"})
    with metadata._write() as tx:
        tx.execute(
            "UPDATE diary_entries SET content = replace(content, '\"litres\":2', '\"litres\":20')"
            " WHERE field_id = 'f1' AND n = 3"
        )
    report = verify_chain(metadata.diary_chain())
    assert not report.ok
    [broken] = report.breaks
    assert (broken.field_id, broken.n, broken.entry_key) == ("f1", 3, "k2")
    assert "content" in broken.reason
    assert report.entries == {"f1": 4, "f2": 1}


def test_a_row_deleted_from_the_database_is_named_at_the_next_entry(
    metadata: MetadataDB,
) -> None:
    for i in range(3):
        metadata.sync_diary("f1", [wanted(f"k{i}", {"litres": i})], {f"k{i}"})
    with metadata._write() as tx:
        tx.execute("DELETE FROM diary_entries WHERE field_id = 'f1' AND n = 2")
    [broken] = verify_chain(metadata.diary_chain("f1")).breaks
    assert (broken.n, broken.entry_key) == (3, "k2")
    assert "missing" in broken.reason


# --- any single change to any stored row ----------------------------------------------------

bodies = st.dictionaries(
    st.sampled_from(["litres", "ha", "product", "pilot"]),
    st.one_of(st.integers(-5, 5), st.floats(0, 100, allow_nan=False), st.text(max_size=8)),
    min_size=1,
    max_size=3,
)
#: One sync: a field, the entries wanted, the keys considered.
syncs = st.lists(
    st.tuples(
        st.sampled_from(["f1", "f2"]),
        st.dictionaries(st.sampled_from(["k1", "k2", "k3"]), bodies, max_size=3),
        st.sets(st.sampled_from(["k1", "k2", "k3"])),
    ),
    min_size=1,
    max_size=8,
)
MUTATIONS = ("content", "content_hash", "prev_hash", "entry_hash", "written_ms", "n", "delete")


def _mutated(row: ChainRow, how: str) -> ChainRow:
    if how == "content":
        return dataclasses.replace(row, content=row.content.replace("}", ',"x":1}', 1))
    if how == "written_ms":
        return dataclasses.replace(row, written_ms=row.written_ms + 1)
    if how == "n":
        return dataclasses.replace(row, n=row.n + 100)
    value = getattr(row, how)
    flipped = ("1" if value[0] != "1" else "2") + value[1:]
    return dataclasses.replace(row, **{how: flipped})


Synced = list[tuple[str, dict[str, dict[str, Any]], set[str]]]


def _written(
    history: Synced,
) -> tuple[list[ChainRow], dict[tuple[str, str], dict[str, Any] | None]]:
    """The stored chain after the syncs, and what each entry should say last (None:
    withdrawn)."""
    last: dict[tuple[str, str], dict[str, Any] | None] = {}
    with tempfile.TemporaryDirectory() as folder:
        db = MetadataDB(Path(folder) / "m.db")
        try:
            for field_id, entries, scope in history:
                db.sync_diary(field_id, [wanted(k, b) for k, b in entries.items()], scope)
                for k in scope | entries.keys():
                    if k in entries:
                        last[(field_id, k)] = entries[k]
                    elif (field_id, k) in last:
                        last[(field_id, k)] = None
            return db.diary_chain(), last
        finally:
            db.close()


@settings(max_examples=40, deadline=None)
@given(syncs, st.data())
def test_any_single_change_breaks_the_chain_where_it_was_made(
    history: Synced, data: st.DataObject
) -> None:
    rows, last = _written(history)
    assert verify_chain(rows).ok
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        latest[(r.field_id, r.entry_key)] = dataclasses.asdict(r)
    for (field_id, key), body in last.items():
        doc = orjson.loads(latest[(field_id, key)]["content"])
        if body is None:
            assert doc["withdrawn"] is True
        else:
            assert {k: doc[k] for k in body} == orjson.loads(orjson.dumps(body))
    if not rows:
        return
    i = data.draw(st.integers(0, len(rows) - 1), label="row")
    how = data.draw(st.sampled_from(MUTATIONS), label="change")
    target = rows[i]
    field_rows = [r for r in rows if r.field_id == target.field_id]
    if how == "delete" and target is field_rows[-1]:
        how = "entry_hash"  # cutting the tail is caught only by a head kept elsewhere
    if how == "delete":
        changed = [r for r in rows if r is not target]
    else:
        changed = [_mutated(r, how) if r is target else r for r in rows]
    [broken] = verify_chain(changed).breaks
    assert broken.field_id == target.field_id
    expected_n = {"delete": target.n + 1, "n": target.n + 100}.get(how, target.n)
    assert broken.n == expected_n
    if how != "delete":
        assert broken.entry_key == target.entry_key
