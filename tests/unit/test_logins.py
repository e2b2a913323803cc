"""Login links and browser sessions as stored (on SQLite and PostgreSQL), and the
``keys create --login-url/--qr`` and ``keys link`` commands."""

from __future__ import annotations

import argparse
import io
import logging
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import segno

from api import keys_cli
from storage.keys import generate_key
from storage.logins import (
    LOGIN_LINK_TTL_MS,
    SessionRecord,
    check_base_url,
    hash_token,
    is_token,
    login_url,
    new_token,
)
from storage.metadata import MetadataDB

T0 = 1_764_300_000_000
DAY = 86_400_000


def _key(metadata: MetadataDB) -> str:
    new = generate_key("farmer", "nd-hp-00", "", T0)
    metadata.add_api_key(new.record)
    return new.record.key_id


def test_a_link_works_once_and_only_until_it_expires(metadata: MetadataDB) -> None:
    key_id = _key(metadata)
    token = new_token()
    metadata.add_login_link(hash_token(token), key_id, T0, T0 + LOGIN_LINK_TTL_MS)
    assert metadata.use_login_link(hash_token(new_token()), T0 + 1) is None
    assert metadata.use_login_link(hash_token(token), T0 + LOGIN_LINK_TTL_MS) is None  # expired
    assert metadata.use_login_link(hash_token(token), T0 + 1) == key_id
    assert metadata.use_login_link(hash_token(token), T0 + 2) is None  # used


def test_two_openings_at_once_sign_in_once(metadata: MetadataDB) -> None:
    key_id = _key(metadata)
    token = new_token()
    metadata.add_login_link(hash_token(token), key_id, T0, T0 + LOGIN_LINK_TTL_MS)
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda _: metadata.use_login_link(hash_token(token), T0 + 1), range(8)))
    assert got.count(key_id) == 1
    assert got.count(None) == 7


def test_sessions_end_one_by_one_or_all_of_a_key(metadata: MetadataDB) -> None:
    key_id = _key(metadata)
    a, b = (SessionRecord(hash_token(new_token()), key_id, new_token(), T0, T0 + DAY) for _ in "ab")
    metadata.add_session(a)
    metadata.add_session(b)
    assert metadata.session(a.session_sha256) == a
    assert a.live(T0 + 1)
    assert not a.live(T0 + DAY)
    assert metadata.end_session(a.session_sha256, T0 + 5)
    assert not metadata.end_session(a.session_sha256, T0 + 6)
    ended = metadata.session(a.session_sha256)
    assert ended is not None
    assert ended.ended_ms == T0 + 5
    assert not ended.live(T0 + 6)
    assert metadata.end_sessions_of_key(key_id, T0 + 7) == 1
    still = metadata.session(b.session_sha256)
    assert still is not None
    assert not still.live(T0 + 8)
    assert metadata.session(hash_token(new_token())) is None


def test_old_links_and_sessions_are_dropped(metadata: MetadataDB) -> None:
    key_id = _key(metadata)
    old = SessionRecord(hash_token(new_token()), key_id, new_token(), T0, T0 + DAY)
    metadata.add_session(old)
    old_link = new_token()
    metadata.add_login_link(hash_token(old_link), key_id, T0, T0 + DAY)
    later = T0 + 3 * DAY
    metadata.add_session(SessionRecord(hash_token(new_token()), key_id, "c", later, later + DAY))
    metadata.add_login_link(hash_token(new_token()), key_id, later, later + DAY)
    assert metadata.session(old.session_sha256) is None
    rows = metadata._read("SELECT token_sha256 FROM login_links", ())
    assert hash_token(old_link) not in {bytes(r[0]) for r in rows}
    assert len(rows) == 1


@pytest.mark.parametrize(
    ("base", "ok"),
    [
        ("http://192.168.1.10:8000", True),
        ("https://htx.example.vn/agridrone/", True),
        ("ftp://x", False),
        ("192.168.1.10:8000", False),
        ("http://u:p@host", False),
        ("http://host/?a=1", False),
        ("http://", False),
    ],
)
def test_login_url_bases(base: str, ok: bool) -> None:
    assert (check_base_url(base) is None) == ok


def test_a_login_url_ends_with_its_token() -> None:
    token = new_token()
    assert is_token(token)
    assert login_url("https://h.vn/a/", token) == f"https://h.vn/a/login/{token}"


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    keys_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    result: int = args.handler(args)
    return result


def test_keys_create_prints_a_login_link_and_its_qr_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "meta.db"
    qr = tmp_path / "hung.png"
    argv = ["keys", "create", "--role", "farmer", "--subject", "nd-hp-00", "--name", "Hưng"]
    code = _run(
        [*argv, "--login-url", "http://10.0.0.5:8000", "--qr", str(qr), "--metadata-path", str(db)]
    )
    assert code == 0
    key, url = capsys.readouterr().out.splitlines()
    assert key.startswith("agd_")
    assert url.startswith("http://10.0.0.5:8000/login/")
    token = url.rsplit("/", 1)[1]
    # The PNG is the QR code of exactly this link (segno is deterministic).
    expected = io.BytesIO()
    segno.make(url, error="m").save(expected, kind="png", scale=8, border=4)
    assert qr.read_bytes() == expected.getvalue()
    # Only the token's hash is kept, in a row naming the new key.
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT token_sha256, key_id, expires_ms - created_ms FROM login_links"
        ).fetchall()
    assert rows == [(hash_token(token), key.split("_")[1], LOGIN_LINK_TTL_MS)]
    assert token.encode() not in db.read_bytes()

    # ``keys link`` makes another link for the same key.
    assert (
        _run(
            [
                "keys",
                "link",
                key.split("_")[1],
                "--login-url",
                "https://a.vn",
                "--metadata-path",
                str(db),
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.startswith("https://a.vn/login/")


@pytest.mark.parametrize(
    "extra",
    [
        ["--qr", "x.png"],  # a QR code of no link
        ["--login-url", "10.0.0.5:8000"],
        ["--login-url", "http://h", "--qr", "/no/such/folder/x.png"],
    ],
)
def test_bad_login_link_options_exit_2_and_make_no_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    db = tmp_path / "meta.db"
    argv = ["keys", "create", "--role", "farmer", "--subject", "nd-1", "--metadata-path", str(db)]
    assert _run([*argv, *extra]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "agridrone keys create:" in err
    assert MetadataDB(db).api_keys() == []


def test_revoking_a_key_ends_its_sessions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "meta.db"
    metadata = MetadataDB(db)
    key_id = _key(metadata)
    session = SessionRecord(hash_token(new_token()), key_id, "c", T0, T0 + 100 * 365 * DAY)
    metadata.add_session(session)
    assert _run(["keys", "revoke", key_id, "--metadata-path", str(db)]) == 0
    assert "1 browser session(s) ended" in capsys.readouterr().err
    ended = metadata.session(session.session_sha256)
    assert ended is not None
    assert ended.ended_ms is not None
    assert (
        _run(["keys", "link", key_id, "--login-url", "http://h", "--metadata-path", str(db)]) == 2
    )


def test_access_log_lines_hide_login_tokens() -> None:
    from web.pages import HideLoginTokens

    token = new_token()
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("10.0.0.9:5000", "GET", f"/login/{token}", "1.1", 200),
        None,
    )
    assert HideLoginTokens().filter(record)
    assert token not in record.getMessage()
    assert record.getMessage() == '10.0.0.9:5000 - "GET /login/*** HTTP/1.1" 200'
    other = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, "%s", ("/api/v1/fields",), None
    )
    assert HideLoginTokens().filter(other)
    assert other.getMessage() == "/api/v1/fields"
