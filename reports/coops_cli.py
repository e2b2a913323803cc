"""``agridrone coops set|list|member``: cooperatives' names, tariffs and member names.

A usage report bills sprayed hectares at the cooperative's tariff (VND per hectare, whole
đồng), so the report route refuses a cooperative without one rather than bill 0. Member
names label the rows of reports grouped by member (ids otherwise). Bad input exits 2.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any, Final

from agridrone.settings import add_settings_arguments, settings_from_args
from storage.metadata import MetadataDB

EXIT_BAD_INPUT: Final = 2
#: Above any real tariff (a hectare sprayed costs a few hundred thousand đồng).
MAX_TARIFF_VND_PER_HA: Final = 100_000_000
_ID_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")


def register(subparsers: Any) -> None:
    """Add the ``coops`` sub-command."""
    coops: argparse.ArgumentParser = subparsers.add_parser(
        "coops", help="cooperatives: names, tariffs for usage reports, member names"
    )
    actions = coops.add_subparsers(dest="coops_command", required=True, metavar="ACTION")
    put = actions.add_parser("set", help="create or update a cooperative")
    put.add_argument("coop", metavar="COOP", help="the cooperative id used in topics and fields")
    put.add_argument("--name", help="display name, e.g. 'HTX Hồng Phong'")
    put.add_argument(
        "--tariff-vnd-per-ha", type=int, metavar="VND", help="price per sprayed hectare"
    )
    listing = actions.add_parser("list", help="every cooperative with its tariff")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    member = actions.add_parser("member", help="name a member (the `owner` of their fields)")
    member.add_argument("coop", metavar="COOP")
    member.add_argument("member", metavar="MEMBER", help="the member id (field `owner`)")
    member.add_argument("--name", required=True, help="the name shown in reports")
    for p in (put, listing, member):
        add_settings_arguments(p, "metadata_path")
        p.set_defaults(handler=run)


def _fail(command: str, message: str) -> int:
    sys.stderr.write(f"agridrone coops {command}: {message}\n")
    return EXIT_BAD_INPUT


def run(args: argparse.Namespace) -> int:
    """Run one ``coops`` action; 0 on success, 2 on bad input."""
    command: str = args.coops_command
    if command in ("set", "member") and _ID_RE.fullmatch(args.coop) is None:
        return _fail(command, f"cooperative id {args.coop!r} does not match [A-Za-z0-9_-]{{1,64}}")
    if command == "member" and _ID_RE.fullmatch(args.member) is None:
        return _fail(command, f"member id {args.member!r} does not match [A-Za-z0-9_-]{{1,64}}")
    tariff = getattr(args, "tariff_vnd_per_ha", None)
    if tariff is not None and not 0 <= tariff <= MAX_TARIFF_VND_PER_HA:
        return _fail(command, f"tariff {tariff} VND/ha is not in 0..{MAX_TARIFF_VND_PER_HA:,}")
    metadata = MetadataDB(settings_from_args(args).metadata_path)
    try:
        if command == "set":
            r = metadata.set_coop(args.coop, name=args.name, tariff_vnd_per_ha=tariff)
            sys.stderr.write(
                f"cooperative {r.id} ({r.name}): tariff {_tariff(r.tariff_vnd_per_ha)}\n"
            )
        elif command == "member":
            metadata.set_members(args.coop, {args.member: args.name})
            sys.stderr.write(f"cooperative {args.coop}: member {args.member} is {args.name!r}\n")
        else:
            for r in metadata.coops():
                doc = {"id": r.id, "name": r.name, "tariff_vnd_per_ha": r.tariff_vnd_per_ha}
                line = (
                    json.dumps(doc, ensure_ascii=False)
                    if args.json
                    else f"{r.id}  {_tariff(r.tariff_vnd_per_ha)}  {r.name}"
                )
                sys.stdout.write(line + "\n")
        return 0
    finally:
        metadata.close()


def _tariff(value: int | None) -> str:
    return "not set" if value is None else f"{value} VND/ha"
