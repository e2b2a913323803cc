"""Metadata migrations: numbered steps per aggregate, recorded in ``schema_migrations``,
applied once on SQLite and PostgreSQL alike, by one process at a time."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import ClassVar

import psycopg
import pytest

from storage.contract import StoreUnavailableError
from storage.metadata import MetadataDB, MetadataQueryError, Step
from tests.servers import Postgres

pytestmark = pytest.mark.integration

#: A database made before versions, dated tariffs and per-message rejections.
OLD_LAYOUT = """
CREATE TABLE fields (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, coop TEXT NOT NULL, owner TEXT NOT NULL,
    feature TEXT NOT NULL, updated_ms INTEGER NOT NULL
);
INSERT INTO fields VALUES ('f1', 'field', 'htx-a', 'nd-1', '{}', 1000);
CREATE TABLE coops (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, updated_ms INTEGER NOT NULL,
    tariff_vnd_per_ha INTEGER
);
INSERT INTO coops VALUES ('htx-a', 'HTX A', 2000, 250000);
CREATE TABLE rejected_messages (
    id INTEGER PRIMARY KEY, received_ms INTEGER NOT NULL, topic TEXT NOT NULL,
    reason TEXT NOT NULL, detail TEXT NOT NULL, payload BLOB NOT NULL
);
INSERT INTO rejected_messages VALUES (1, 5, 't', 'bad_json', 'd', x'00');
"""


def tables(db: MetadataDB) -> set[str]:
    if db.dialect == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
    else:
        sql = "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
    return {str(r[0]) for r in db._read(sql, ())}


def every_step(db: MetadataDB) -> set[tuple[str, int]]:
    return {(name, s.version) for name, steps in db.aggregate_steps() for s in steps}


def test_an_old_layout_sqlite_file_is_migrated_and_every_step_recorded(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(OLD_LAYOUT)
    db = MetadataDB(path)
    try:
        assert db.stored_field("f1") is not None
        coop = db.coop("htx-a")
        assert coop is not None
        assert [t.vnd for t in coop.tariffs] == [250_000]
        assert db.rejected_counts() == {"bad_json": 1}
        assert "fields" not in tables(db)
        assert db.applied_migrations() == every_step(db)
    finally:
        db.close()


def test_a_fresh_postgres_database_gets_every_table_sqlite_has(
    postgres: Postgres, tmp_path: Path
) -> None:
    pg = MetadataDB(postgres.create_database("fresh_tables"))
    lite = MetadataDB(tmp_path / "agridrone.db")
    try:
        assert tables(pg) == tables(lite)
        assert {"field_versions", "flights", "api_keys", "schema_migrations"} <= tables(pg)
        assert pg.applied_migrations() == every_step(pg) == lite.applied_migrations()
    finally:
        pg.close()
        lite.close()
        postgres.drop_database("fresh_tables")


def test_migrating_again_changes_nothing(metadata: MetadataDB, metadata_url: str) -> None:
    before = metadata.applied_migrations()
    assert metadata.migrate() == []
    again = MetadataDB(metadata_url)
    try:
        assert again.migrate() == []
        assert again.applied_migrations() == before
    finally:
        again.close()


class Notes(MetadataDB):
    """An aggregate released later: a table, then an index on it."""

    migrations: ClassVar[tuple[Step, ...]] = (
        Step(1, "notes", "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"),
        Step(2, "notes by body", "CREATE INDEX notes_by_body ON notes (body)"),
    )


def test_a_later_release_applies_only_its_new_steps(
    metadata: MetadataDB, metadata_url: str
) -> None:
    before = metadata.applied_migrations()
    later = Notes(metadata_url)
    try:
        assert later.migrate() == []  # applied when it opened
        assert later.applied_migrations() == before | {("Notes", 1), ("Notes", 2)}
        assert "notes" in tables(later)
        with later._write() as tx:
            tx.execute("INSERT INTO notes (body) VALUES (?)", ("hello",))
        assert later._read("SELECT id, body FROM notes", ()) == [(1, "hello")]
    finally:
        later.close()


class Broken(MetadataDB):
    """A release whose second step fails half-way."""

    migrations: ClassVar[tuple[Step, ...]] = (
        Step(1, "notes", "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"),
        Step(2, "broken", "CREATE INDEX notes_by_nothing ON notes (no_such_column)"),
    )


def test_a_failing_step_leaves_the_database_as_it_was(
    metadata: MetadataDB, metadata_url: str
) -> None:
    before = metadata.applied_migrations()
    # SQLite reports it as an operational error, PostgreSQL as a refused statement.
    with pytest.raises((StoreUnavailableError, MetadataQueryError), match="no_such_column"):
        Broken(metadata_url)
    assert metadata.applied_migrations() == before
    assert "notes" not in tables(metadata)


MIGRATE = """
import sys, time
from storage.metadata import MetadataDB
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
db = MetadataDB(sys.argv[1])
print(len(db.applied_migrations()))
db.close()
"""


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_two_processes_migrating_at_once_apply_each_step_once(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if kind == "sqlite":
        where = str(tmp_path / "race.db")
    else:
        postgres: Postgres = request.getfixturevalue("postgres")
        where = postgres.create_database("race")
        request.addfinalizer(lambda: postgres.drop_database("race"))
    start = f"{time.time() + 1.5:.3f}"  # both start migrating at this instant
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", MIGRATE, where, start],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=Path(__file__).resolve().parents[2],
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e.decode() for _, e in outs]
    db = MetadataDB(where)
    try:
        steps = every_step(db)
        assert [int(o) for o, _ in outs] == [len(steps), len(steps)]
        rows = db._read("SELECT aggregate, version FROM schema_migrations", ())
        assert sorted(rows) == sorted(steps)  # each once
    finally:
        db.close()


def test_postgres_keeps_64_bit_integers_json_text_and_bytes(postgres: Postgres) -> None:
    url = postgres.create_database("values64")
    db = MetadataDB(url)
    try:
        with db._write() as tx:
            tx.execute(
                "INSERT INTO rejected_messages (received_ms, topic, reason, detail, payload,"
                " count, by_reason) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (2**62, "t", "a", "d", b"\x00\xff", 2**40, '{"a": 1}'),
            )
        (row,) = db._read(
            "SELECT received_ms, payload, count, by_reason FROM rejected_messages", ()
        )
        assert row == (2**62, b"\x00\xff", 2**40, '{"a": 1}')
        with psycopg.connect(url) as conn:
            types: dict[str, str] = dict(
                conn.execute(
                    "SELECT column_name, data_type FROM information_schema.columns"
                    " WHERE table_name = 'rejected_messages'"
                ).fetchall()
            )
        assert (types["received_ms"], types["payload"], types["id"]) == (
            "bigint",
            "bytea",
            "bigint",
        )
    finally:
        db.close()
        postgres.drop_database("values64")
