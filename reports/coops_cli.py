"""``agridrone coops set|list|member``: cooperatives' names, tariff histories, member names
and the bank account members pay invoices into.

A usage report bills sprayed hectares at the tariff in force on the local day each flight
started, so the report route refuses a cooperative without one rather than bill 0. A
tariff is per hectare or per sào (360 m²), whole đồng, from a local date; every tariff set
is kept. Member names label the rows of reports grouped by member (ids otherwise). The bank
account (NAPAS BIN, account number, holder's name) goes into each invoice's VietQR code.
Bad input exits 2.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, date, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from agridrone.settings import add_settings_arguments, settings_from_args
from agridrone.stores import open_metadata
from reports.usage import TARIFF_TZ, TariffUnit
from reports.vietqr import VietQRError, account_name, check_bank
from storage.metadata import BankAccount, CoopRecord, MetadataDB, TariffRecord

EXIT_BAD_INPUT: Final = 2
#: Above any real tariff (a hectare sprayed costs a few hundred thousand đồng).
MAX_TARIFF_VND_PER_HA: Final = 100_000_000
#: The same price per sào (1 ha = 250/9 sào).
MAX_TARIFF_VND_PER_SAO: Final = MAX_TARIFF_VND_PER_HA * 9 // 250
_ID_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
_DATE_RE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
_UNIT_NAME: Final = {"ha": "ha", "sao": "sào"}


def register(subparsers: Any) -> None:
    """Add the ``coops`` sub-command."""
    coops: argparse.ArgumentParser = subparsers.add_parser(
        "coops", help="cooperatives: names, tariffs for usage reports, member names"
    )
    actions = coops.add_subparsers(dest="coops_command", required=True, metavar="ACTION")
    put = actions.add_parser(
        "set",
        help="create or rename a cooperative, or add a tariff to its history",
        description="A cooperative's first tariff applies from the beginning unless --from "
        "says otherwise; a later one needs --from (the first local day of the new price). "
        "Flights keep the price of the day they flew; every tariff set is kept.",
    )
    put.add_argument("coop", metavar="COOP", help="the cooperative id used in topics and fields")
    put.add_argument("--name", help="display name, e.g. 'HTX Hồng Phong'")
    price = put.add_mutually_exclusive_group()
    price.add_argument(
        "--tariff-vnd-per-ha", type=int, metavar="VND", help="price per sprayed hectare"
    )
    price.add_argument(
        "--tariff-vnd-per-sao",
        type=int,
        metavar="VND",
        help="price per sprayed sào Bắc Bộ (360 m²)",
    )
    put.add_argument(
        "--from",
        dest="effective_from",
        metavar="YYYY-MM-DD",
        help=f"first day of the tariff, from 00:00 {TARIFF_TZ}",
    )
    put.add_argument(
        "--bank-bin", metavar="BIN", help="the bank's 6-digit NAPAS BIN (e.g. 970405: Agribank)"
    )
    put.add_argument("--bank-account", metavar="NUMBER", help="the account members pay into")
    put.add_argument(
        "--account-name",
        metavar="NAME",
        help="the account holder as the bank shows it; stored upper case without diacritics",
    )
    listing = actions.add_parser("list", help="every cooperative with its tariff history")
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
    tariff: tuple[int, TariffUnit] | None = None
    effective_from: date | None = None
    bank: BankAccount | None = None
    if command == "set":
        try:
            tariff = _tariff_arg(args)
            effective_from = _date_arg(args.effective_from)
            bank = _bank_arg(args)
        except ValueError as exc:
            return _fail(command, str(exc))
    metadata = open_metadata(settings_from_args(args))
    try:
        if command == "set":
            return _set(metadata, args, tariff, effective_from, bank)
        if command == "member":
            metadata.set_members(args.coop, {args.member: args.name})
            sys.stderr.write(f"cooperative {args.coop}: member {args.member} is {args.name!r}\n")
        else:
            for r in metadata.coops():
                sys.stdout.write(_json_line(r) if args.json else _text_lines(r))
        return 0
    finally:
        metadata.close()


def _tariff_arg(args: argparse.Namespace) -> tuple[int, TariffUnit] | None:
    """(VND, unit) from --tariff-vnd-per-ha/--tariff-vnd-per-sao, checked, or None."""
    choices: tuple[tuple[TariffUnit, int | None, int], ...] = (
        ("ha", args.tariff_vnd_per_ha, MAX_TARIFF_VND_PER_HA),
        ("sao", args.tariff_vnd_per_sao, MAX_TARIFF_VND_PER_SAO),
    )
    for unit, value, most in choices:
        if value is not None:
            if not 0 <= value <= most:
                raise ValueError(f"tariff {value} VND/{_UNIT_NAME[unit]} is not in 0..{most:,}")
            return value, unit
    if args.effective_from is not None:
        raise ValueError("--from needs a price: --tariff-vnd-per-ha or --tariff-vnd-per-sao")
    return None


def _bank_arg(args: argparse.Namespace) -> BankAccount | None:
    """The bank account from --bank-bin/--bank-account/--account-name (all three or none),
    checked as a VietQR code needs it."""
    given = (args.bank_bin, args.bank_account, args.account_name)
    if all(v is None for v in given):
        return None
    if any(v is None for v in given):
        raise ValueError("give --bank-bin, --bank-account and --account-name together")
    try:
        check_bank(args.bank_bin, args.bank_account)
        return BankAccount(args.bank_bin, args.bank_account, account_name(args.account_name))
    except VietQRError as exc:
        raise ValueError(str(exc)) from None


def _bank_text(bank: BankAccount) -> str:
    return f"bank {bank.bank_bin}, account {bank.account}, {bank.account_name}"


def _date_arg(text: str | None) -> date | None:
    if text is None:
        return None
    problem = ValueError(f"--from {text!r} is not a date YYYY-MM-DD (the first local day)")
    if _DATE_RE.fullmatch(text) is None:
        raise problem
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise problem from None


def _set(
    metadata: MetadataDB,
    args: argparse.Namespace,
    tariff: tuple[int, TariffUnit] | None,
    effective_from: date | None,
    bank: BankAccount | None,
) -> int:
    before = metadata.coop(args.coop)
    if tariff is not None and effective_from is None and before is not None and before.tariffs:
        return _fail(
            "set",
            f"cooperative {args.coop} already has a tariff ({_price(before.tariffs[-1])}); say "
            "from which local day the new price applies with --from YYYY-MM-DD (flights "
            "before that day keep their price)",
        )
    if args.name is not None or before is None:
        metadata.set_coop(args.coop, name=args.name)
    if bank is not None:
        banked = metadata.set_bank(args.coop, bank)
        sys.stderr.write(f"cooperative {banked.id} ({banked.name}): {_bank_text(bank)}\n")
        if tariff is None:
            return 0
    if tariff is None:
        named = metadata.coop(args.coop)
        sys.stderr.write(f"cooperative {args.coop} ({named.name if named else args.coop})\n")
        return 0
    vnd, unit = tariff
    r = metadata.add_tariff(args.coop, vnd, unit=unit, effective_from=effective_from)
    since = "from the beginning" if effective_from is None else f"from {effective_from}"
    sys.stderr.write(f"cooperative {r.id} ({r.name}): {_price(r.tariffs[-1])} {since}\n")
    today = datetime.now(ZoneInfo(TARIFF_TZ)).date()
    if effective_from is not None and effective_from <= today:
        sys.stderr.write(
            f"note: {effective_from} is not in the future: flights flown from that day on"
            " are billed at this price in every report from now on\n"
        )
    return 0


def _price(t: TariffRecord) -> str:
    return f"{t.vnd} VND/{_UNIT_NAME[t.unit]}"


def _superseded(tariffs: tuple[TariffRecord, ...]) -> list[bool]:
    """Whether each tariff was replaced by one set later for the same first day."""
    last = {t.effective_from: i for i, t in enumerate(tariffs)}
    return [last[t.effective_from] != i for i, t in enumerate(tariffs)]


def _set_at(ms: int) -> str:
    when = datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone(ZoneInfo(TARIFF_TZ))
    return when.isoformat(timespec="seconds")


def _json_line(r: CoopRecord) -> str:
    doc = {
        "id": r.id,
        "name": r.name,
        "tariffs": [
            {
                "from": None if t.effective_from is None else t.effective_from.isoformat(),
                "vnd": t.vnd,
                "unit": t.unit,
                "set": _set_at(t.set_ms),
                "superseded": gone,
            }
            for t, gone in zip(r.tariffs, _superseded(r.tariffs), strict=True)
        ],
        "bank": None
        if r.bank is None
        else {
            "bin": r.bank.bank_bin,
            "account": r.bank.account,
            "account_name": r.bank.account_name,
        },
    }
    return json.dumps(doc, ensure_ascii=False) + "\n"


def _text_lines(r: CoopRecord) -> str:
    lines = [f"{r.id}  {r.name}"]
    if not r.tariffs:
        lines.append("  tariff not set")
    order = sorted(
        zip(r.tariffs, _superseded(r.tariffs), strict=True),
        key=lambda tg: tg[0].effective_from or date.min,
    )
    for t, gone in order:
        since = "from the beginning" if t.effective_from is None else f"from {t.effective_from}"
        note = "  (superseded by a later one from the same day)" if gone else ""
        lines.append(f"  {_price(t):<18} {since:<20} set {_set_at(t.set_ms)}{note}")
    lines.append("  bank account not set" if r.bank is None else f"  {_bank_text(r.bank)}")
    return "\n".join(lines) + "\n"
