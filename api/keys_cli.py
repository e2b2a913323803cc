"""``agridrone keys create|list|revoke|link``: API keys for farmers, cooperatives and operators.

``create`` prints the key once on stdout (its first line, so scripts can capture it); only
its SHA-256 is stored. With ``--login-url BASE`` it also prints a one-time login link for the
web app (``BASE/login/<token>``, a second line starting with http, valid 7 days, unusable
after its first use; only the token's SHA-256 is stored) and ``--qr FILE`` writes the link's
QR code as a PNG to hand to a farmer. ``link`` makes a new login link for an existing key.
``list`` never shows secrets. ``revoke`` also ends the key's browser sessions. Bad input
exits 2 with the reason.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from agridrone.settings import add_settings_arguments, settings_from_args
from agridrone.stores import open_metadata
from storage.keys import ROLES, ApiKeyRecord, generate_key, is_key_id, parse_key_id
from storage.logins import LOGIN_LINK_TTL_MS, check_base_url, hash_token, login_url, new_token
from storage.metadata import MetadataConflictError, MetadataDB

EXIT_BAD_INPUT: Final = 2


def register(subparsers: Any) -> None:
    """Add the ``keys`` sub-command."""
    keys: argparse.ArgumentParser = subparsers.add_parser(
        "keys", help="create, list and revoke API keys"
    )
    actions = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="make a key and print it once")
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument(
        "--subject",
        required=True,
        metavar="ID",
        help="farmer: the `owner` of their fields; coop: the cooperative id; operator: anyone",
    )
    create.add_argument("--name", default="", help="a note saying who holds the key")
    create.add_argument(
        "--coop",
        default="",
        metavar="COOP",
        help="farmer keys: the cooperative it is for (it then sees only that cooperative's"
        " fields, and that cooperative may manage it)",
    )
    link = actions.add_parser("link", help="a new one-time login link for an existing key")
    link.add_argument("key", metavar="KEY_ID", help="the key id from `keys list` (or the key)")
    for p in (create, link):
        p.add_argument(
            "--login-url",
            metavar="BASE",
            required=p is link,
            help="the web app's address (e.g. http://192.168.1.10:8000): also print a"
            " one-time login link BASE/login/<token>, valid 7 days",
        )
        p.add_argument(
            "--qr", metavar="FILE", type=Path, help="write the login link's QR code (PNG)"
        )
    listing = actions.add_parser("list", help="every key with its role and subject, no secrets")
    listing.add_argument("--active", action="store_true", help="leave out revoked keys")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    revoke = actions.add_parser("revoke", help="stop a key from working, at once")
    revoke.add_argument("key", metavar="KEY_ID", help="the key id from `keys list` (or the key)")
    for p in (create, listing, revoke, link):
        add_settings_arguments(p, "metadata_path")
        p.set_defaults(handler=run)


def _fail(command: str, message: str) -> int:
    sys.stderr.write(f"agridrone keys {command}: {message}\n")
    return EXIT_BAD_INPUT


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def run(args: argparse.Namespace) -> int:
    """Run one ``keys`` action; 0 on success, 2 on bad input."""
    metadata = open_metadata(settings_from_args(args))
    try:
        if args.keys_command == "create":
            return _create(args, metadata)
        if args.keys_command == "link":
            return _link(args, metadata)
        if args.keys_command == "list":
            _list(metadata.api_keys(include_revoked=not args.active), as_json=args.json)
            return 0
        return _revoke(args.key, metadata)
    finally:
        metadata.close()


def _link_problem(args: argparse.Namespace) -> str | None:
    if args.login_url is None:
        return "--qr needs --login-url BASE (the web app's address)" if args.qr else None
    problem = check_base_url(args.login_url)
    if problem is None and args.qr is not None and not args.qr.parent.is_dir():
        problem = f"--qr {str(args.qr)!r}: the folder {str(args.qr.parent)!r} does not exist"
    return problem


def _print_link(args: argparse.Namespace, metadata: MetadataDB, key_id: str) -> None:
    """Store a new login link for ``key_id``, print it, write its QR code if asked."""
    now = _now_ms()
    token = new_token()
    metadata.add_login_link(hash_token(token), key_id, now, now + LOGIN_LINK_TTL_MS)
    url = login_url(args.login_url, token)
    sys.stdout.write(url + "\n")
    if args.qr is not None:
        import segno

        segno.make(url, error="m").save(str(args.qr), kind="png", scale=8, border=4)
        sys.stderr.write(f"QR code of the login link written to {args.qr}\n")
    sys.stderr.write(
        f"login link for key {key_id}: works once, until {_iso(now + LOGIN_LINK_TTL_MS)};"
        " whoever opens it first is signed in as this key.\n"
    )


def _create(args: argparse.Namespace, metadata: MetadataDB) -> int:
    problem = _link_problem(args)
    if problem is not None:
        return _fail("create", problem)
    try:
        new = generate_key(args.role, args.subject, args.name, _now_ms(), coop=args.coop)
    except ValueError as exc:
        return _fail("create", str(exc))
    metadata.add_api_key(new.record)
    sys.stdout.write(new.key + "\n")
    sys.stderr.write(
        f"key {new.record.key_id}: {args.role} {args.subject!r}"
        f"{f' of {args.coop}' if args.coop else ''}. It is shown only this once "
        "and only its hash is kept; send it as `Authorization: Bearer <key>`.\n"
    )
    if args.login_url is not None:
        _print_link(args, metadata, new.record.key_id)
    return 0


def _link(args: argparse.Namespace, metadata: MetadataDB) -> int:
    problem = _link_problem(args)
    if problem is not None:
        return _fail("link", problem)
    key_id = args.key if is_key_id(args.key) else parse_key_id(args.key)
    record = metadata.api_key(key_id) if key_id else None
    if record is None or record.revoked:
        return _fail(
            "link", f"{args.key!r} is not the id of a key in use (see `agridrone keys list`)"
        )
    _print_link(args, metadata, record.key_id)
    return 0


def _revoke(given: str, metadata: MetadataDB) -> int:
    key_id = given if is_key_id(given) else parse_key_id(given)
    if key_id is None:
        return _fail(
            "revoke",
            f"{given!r} is neither a key id (10 letters/digits, see `keys list`) nor a key",
        )
    try:
        record = metadata.revoke_api_key(key_id, _now_ms())
    except MetadataConflictError as exc:
        return _fail("revoke", str(exc))
    ended = metadata.end_sessions_of_key(key_id, _now_ms())
    sys.stderr.write(
        f"key {key_id} ({record.role} {record.subject!r}) revoked at {_iso(record.revoked_ms)};"
        f" {ended} browser session(s) ended\n"
    )
    return 0


def _list(records: list[ApiKeyRecord], *, as_json: bool) -> None:
    if as_json:
        for r in records:
            doc = {
                "key_id": r.key_id,
                "role": r.role,
                "subject": r.subject,
                "name": r.name,
                "coop": r.coop or None,
                "created": _iso(r.created_ms),
                "revoked": _iso(r.revoked_ms),
            }
            sys.stdout.write(json.dumps(doc, ensure_ascii=False) + "\n")
        return
    rows = [("KEY_ID", "ROLE", "SUBJECT", "COOP", "CREATED", "REVOKED", "NAME")]
    rows.extend(
        (
            r.key_id,
            r.role,
            r.subject,
            r.coop or "-",
            _iso(r.created_ms) or "",
            _iso(r.revoked_ms) or "-",
            r.name,
        )
        for r in records
    )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        line = "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))
        sys.stdout.write(line.rstrip() + "\n")
