"""API keys: only hashes are stored, keys parse back to their id, revocation sticks."""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api import keys_cli
from storage.keys import (
    KEY_PREFIX,
    ROLES,
    Role,
    generate_key,
    hash_key,
    is_key_id,
    key_matches,
    parse_key_id,
    validate_key_coop,
    validate_subject,
)
from storage.metadata import MetadataConflictError, MetadataDB
from storage.metadata.api_keys import ApiKeyTable

T0 = 1_764_300_000_000


@pytest.fixture
def db(tmp_path: Path) -> MetadataDB:
    return MetadataDB(tmp_path / "meta.db")


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    keys_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    result: int = args.handler(args)
    return result


def test_a_new_key_has_the_documented_shape_and_names_its_id() -> None:
    new = generate_key("farmer", "nd-hp-13", "", T0)
    assert new.key.startswith(KEY_PREFIX)
    assert len(new.key) == len("agd_") + 10 + 1 + 43
    assert parse_key_id(new.key) == new.record.key_id
    assert is_key_id(new.record.key_id)


def test_the_record_holds_the_sha256_of_the_key_and_not_the_key() -> None:
    new = generate_key("coop", "htx-hong-phong", "kế toán", T0)
    assert new.record.key_sha256 == hashlib.sha256(new.key.encode()).digest()
    assert new.key.encode() not in repr(new.record).encode()


def test_two_keys_for_the_same_subject_differ() -> None:
    a = generate_key("farmer", "nd-hp-13", "", T0)
    b = generate_key("farmer", "nd-hp-13", "", T0)
    assert a.key != b.key
    assert a.record.key_id != b.record.key_id


@settings(max_examples=50, deadline=None)
@given(role=st.sampled_from(ROLES), position=st.integers(min_value=0, max_value=57))
def test_changing_any_character_of_a_key_breaks_it(role: Role, position: int) -> None:
    new = generate_key(role, "htx-1", "", T0)
    assert key_matches(new.key, new.record)
    chars = list(new.key)
    chars[position] = "x" if chars[position] != "x" else "y"
    tampered = "".join(chars)
    assert not key_matches(tampered, new.record)


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "agd_",
        "agd_abcdefghij",
        "agd_ABCDEFGHIJ_" + "a" * 43,
        "agd_abcdefghij_" + "a" * 42,
        "agd_abcdefghij_" + "a" * 44,
        "xyz_abcdefghij_" + "a" * 43,
        "agd_abcdefghij_" + "a" * 42 + "!",
    ],
)
def test_malformed_keys_have_no_key_id(junk: str) -> None:
    assert parse_key_id(junk) is None


@pytest.mark.parametrize(
    ("role", "subject", "fragment"),
    [
        ("coop", "htx hong phong", "[A-Za-z0-9_-]"),
        ("coop", "htx.hong", "[A-Za-z0-9_-]"),
        ("farmer", "", "non-empty"),
        ("farmer", " nd-1", "spaces"),
        ("farmer", "x" * 129, "at most 128"),
        ("farmer", "a\nb", "control"),
        ("pilot", "p-1", "not one of"),
    ],
)
def test_unusable_subjects_are_refused_with_the_reason(
    role: str, subject: str, fragment: str
) -> None:
    problem = validate_subject(role, subject)
    assert problem is not None
    assert fragment in problem


@pytest.mark.parametrize(
    ("role", "subject"),
    [
        ("farmer", "Nguyễn Văn An"),
        ("farmer", "nd-hp-13"),
        ("coop", "htx-hong-phong"),
        ("operator", "ops@htx"),
    ],
)
def test_usable_subjects_pass(role: str, subject: str) -> None:
    assert validate_subject(role, subject) is None


def test_generate_key_refuses_a_bad_subject() -> None:
    with pytest.raises(ValueError, match="cooperative id"):
        generate_key("coop", "htx hong phong", "", T0)


@pytest.mark.parametrize(
    ("role", "coop", "fragment"),
    [
        ("coop", "htx-1", "only farmer keys"),
        ("operator", "htx-1", "only farmer keys"),
        ("farmer", "htx 1", "[A-Za-z0-9_-]"),
    ],
)
def test_only_farmer_keys_belong_to_a_cooperative(role: str, coop: str, fragment: str) -> None:
    problem = validate_key_coop(role, coop)
    assert problem is not None
    assert fragment in problem
    with pytest.raises(ValueError, match=re.escape(fragment)):
        generate_key(role, "htx-1", "", T0, coop=coop)  # type: ignore[arg-type]


def test_a_name_with_control_characters_is_refused() -> None:
    with pytest.raises(ValueError, match="control characters"):
        generate_key("farmer", "nd-1", "Bà Hoa\nthôn 3", T0)


def test_a_farmer_keys_cooperative_is_stored_and_listed_by_it(metadata: MetadataDB) -> None:
    member = generate_key("farmer", "nd-hp-13", "Bà Hoa", T0, coop="htx-hong-phong")
    other = generate_key("farmer", "nd-as-01", "", T0 + 1, coop="htx-an-sinh")
    unscoped = generate_key("farmer", "nd-hp-13", "", T0 + 2)
    coop = generate_key("coop", "htx-hong-phong", "", T0 + 3)
    for new in (member, other, unscoped, coop):
        metadata.add_api_key(new.record)
    assert metadata.api_key(member.record.key_id) == member.record
    assert member.record.coop == "htx-hong-phong"
    assert metadata.api_key(unscoped.record.key_id) == unscoped.record
    assert metadata.api_keys(farmers_of="htx-hong-phong") == [member.record]
    metadata.revoke_api_key(member.record.key_id, T0 + 9)
    assert metadata.api_keys(farmers_of="htx-hong-phong", include_revoked=False) == []
    assert len(metadata.api_keys()) == 4


def test_a_key_table_from_before_cooperatives_keeps_its_keys(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(ApiKeyTable.schema)
    new = generate_key("farmer", "nd-hp-13", "cũ", T0)
    r = new.record
    conn.execute(
        "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, NULL)",
        (r.key_id, r.key_sha256, r.role, r.subject, r.name, r.created_ms),
    )
    conn.execute(
        "CREATE TABLE schema_migrations (aggregate TEXT NOT NULL, version INTEGER NOT NULL,"
        " description TEXT NOT NULL, applied_ms INTEGER NOT NULL,"
        " PRIMARY KEY (aggregate, version))"
    )
    conn.execute("INSERT INTO schema_migrations VALUES ('ApiKeyTable', 1, 'create tables', 0)")
    conn.commit()
    conn.close()
    db = MetadataDB(path)
    assert db.api_key(r.key_id) == r  # coop "" : every field of its farmer, as before
    assert ("ApiKeyTable", 2) in db.applied_migrations()
    db.close()


def test_a_stored_key_is_found_by_its_id(db: MetadataDB) -> None:
    new = generate_key("coop", "htx-hong-phong", "văn phòng", T0)
    db.add_api_key(new.record)
    assert db.api_key(new.record.key_id) == new.record
    assert db.api_key("zzzzzzzzzz") is None


def test_the_database_file_never_contains_the_key(tmp_path: Path) -> None:
    db = MetadataDB(tmp_path / "meta.db")
    new = generate_key("operator", "ops", "", T0)
    db.add_api_key(new.record)
    db.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    secret = new.key.split("_", 2)[2].encode()  # the random part may itself hold "_"
    assert secret not in raw
    assert hash_key(new.key) in raw


def test_revoking_marks_the_key_and_keeps_the_first_time(db: MetadataDB) -> None:
    new = generate_key("farmer", "nd-hp-13", "", T0)
    db.add_api_key(new.record)
    first = db.revoke_api_key(new.record.key_id, T0 + 5)
    again = db.revoke_api_key(new.record.key_id, T0 + 9)
    assert first.revoked_ms == T0 + 5
    assert again.revoked_ms == T0 + 5
    stored = db.api_key(new.record.key_id)
    assert stored is not None
    assert stored.revoked


def test_revoking_an_unknown_key_names_it(db: MetadataDB) -> None:
    with pytest.raises(MetadataConflictError, match="no API key with id 'abcdefghij'"):
        db.revoke_api_key("abcdefghij", T0)


def test_listing_can_leave_out_revoked_keys(db: MetadataDB) -> None:
    keep = generate_key("farmer", "a", "", T0)
    drop = generate_key("farmer", "b", "", T0 + 1)
    db.add_api_key(keep.record)
    db.add_api_key(drop.record)
    db.revoke_api_key(drop.record.key_id, T0 + 2)
    assert [r.key_id for r in db.api_keys()] == [keep.record.key_id, drop.record.key_id]
    assert [r.key_id for r in db.api_keys(include_revoked=False)] == [keep.record.key_id]


def test_the_same_key_id_cannot_be_stored_twice(db: MetadataDB) -> None:
    new = generate_key("farmer", "a", "", T0)
    db.add_api_key(new.record)
    with pytest.raises(MetadataConflictError, match=new.record.key_id):
        db.add_api_key(new.record)


def test_an_unknown_role_cannot_reach_the_table(db: MetadataDB) -> None:
    new = generate_key("farmer", "a", "", T0)
    conn = sqlite3.connect(db.path)
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute(
            "INSERT INTO api_keys VALUES (?, ?, 'pilot', 's', '', 0, NULL, '')",
            ("x" * 10, new.record.key_sha256),
        )
    conn.close()


def test_cli_create_prints_only_the_key_and_stores_its_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(tmp_path / "meta.db")
    code = run_cli(
        ["keys", "create", "--role", "coop", "--subject", "htx-hong-phong", "--metadata-path", path]
    )
    out, err = capsys.readouterr()
    assert code == 0
    key = out.strip()
    key_id = parse_key_id(key)
    assert key_id is not None
    assert key_id in err
    record = MetadataDB(path).api_key(key_id)
    assert record is not None
    assert (record.role, record.subject) == ("coop", "htx-hong-phong")
    assert key_matches(key, record)


def test_cli_create_refuses_a_bad_subject_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(tmp_path / "meta.db")
    code = run_cli(
        ["keys", "create", "--role", "coop", "--subject", "a b", "--metadata-path", path]
    )
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert "keys create" in err
    assert "[A-Za-z0-9_-]" in err
    assert MetadataDB(path).api_keys() == []


def test_cli_list_shows_ids_and_subjects_but_never_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(tmp_path / "meta.db")
    run_cli(
        ["keys", "create", "--role", "farmer", "--subject", "nd-hp-13", "--metadata-path", path]
    )
    key = capsys.readouterr().out.strip()
    assert run_cli(["keys", "list", "--json", "--metadata-path", path]) == 0
    out = capsys.readouterr().out
    doc = json.loads(out)
    assert doc["key_id"] == parse_key_id(key)
    assert (doc["role"], doc["subject"], doc["revoked"]) == ("farmer", "nd-hp-13", None)
    assert key.split("_", 2)[2] not in out
    assert run_cli(["keys", "list", "--metadata-path", path]) == 0
    table = capsys.readouterr().out
    assert doc["key_id"] in table
    assert key.split("_", 2)[2] not in table


def test_cli_revoke_accepts_the_key_id_or_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(tmp_path / "meta.db")
    for _ in range(2):
        run_cli(
            ["keys", "create", "--role", "operator", "--subject", "ops", "--metadata-path", path]
        )
    first, second = capsys.readouterr().out.split()
    assert run_cli(["keys", "revoke", str(parse_key_id(first)), "--metadata-path", path]) == 0
    assert run_cli(["keys", "revoke", second, "--metadata-path", path]) == 0
    assert all(r.revoked for r in MetadataDB(path).api_keys())
    assert run_cli(["keys", "list", "--active", "--metadata-path", path]) == 0
    assert capsys.readouterr().out.strip().splitlines() == [
        "KEY_ID  ROLE  SUBJECT  COOP  CREATED  REVOKED  NAME"
    ]


@pytest.mark.parametrize("given_key", ["abcdefghij", "not-a-key"])
def test_cli_revoke_of_an_unknown_or_malformed_key_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], given_key: str
) -> None:
    code = run_cli(["keys", "revoke", given_key, "--metadata-path", str(tmp_path / "m.db")])
    assert code == 2
    assert "keys list" in capsys.readouterr().err


def test_cli_create_gives_a_farmer_key_its_cooperative(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(tmp_path / "meta.db")
    argv = ["keys", "create", "--role", "farmer", "--subject", "nd-1", "--coop", "htx-1"]
    assert run_cli([*argv, "--metadata-path", path]) == 0
    key_id = parse_key_id(capsys.readouterr().out.strip())
    assert key_id is not None
    record = MetadataDB(path).api_key(key_id)
    assert record is not None
    assert record.coop == "htx-1"
    assert run_cli(["keys", "list", "--json", "--metadata-path", path]) == 0
    assert json.loads(capsys.readouterr().out)["coop"] == "htx-1"
    refused = ["keys", "create", "--role", "coop", "--subject", "htx-1", "--coop", "htx-1"]
    assert run_cli([*refused, "--metadata-path", path]) == 2
    assert "only farmer keys" in capsys.readouterr().err
    assert len(MetadataDB(path).api_keys()) == 1
