"""``agridrone diary FIELD`` (a field's spray diary as text, JSON, CSV or PDF) and
``agridrone diary verify`` (check every field's hash chain; exit 1 naming the first broken
entry of each broken field)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from agridrone.settings import add_settings_arguments, settings_from_args
from agridrone.stores import open_metadata
from api.routes.diary import diary_entries, field_header, period_label
from api.times import TimeInputError, parse_time
from fields.stored import FieldHistory, UnusableFieldError
from flights.compliance import RULE_RANGES, ComplianceParams, check_rules
from reports.diary_render import DiaryFontError, cell, columns, to_csv, to_pdf
from storage.diary_chain import verify_chain

EXIT_BROKEN = 1
EXIT_BAD_INPUT = 2
_ALL_TIME = (0, 253_402_128_000_000)


def register(subparsers: Any) -> None:
    """Add the ``diary`` sub-command."""
    diary: argparse.ArgumentParser = subparsers.add_parser(
        "diary",
        help="a field's spray diary; `diary verify` checks the diaries' hash chains",
        description="`agridrone diary FIELD` prints a field's diary; `agridrone diary "
        "verify` checks every field's chain (or --field's) and names the first broken "
        "entry; `agridrone diary rules --coop C [--buffer-m 20 ...]` shows or sets the "
        "thresholds of a cooperative's compliance flags. A field whose id is 'verify' or "
        "'rules' is shown with --field.",
    )
    diary.add_argument(
        "what", metavar="FIELD|verify|rules", nargs="?", help="field id, verify, or rules"
    )
    diary.add_argument("--coop", help="with rules: the cooperative whose thresholds to show/set")
    for name, (lo, hi) in RULE_RANGES.items():
        diary.add_argument(
            f"--{name.replace('_', '-')}",
            type=float,
            metavar="X",
            help=f"with rules: {name} ({lo:g}..{hi:g};"
            f" default {getattr(ComplianceParams(), name):g})",
        )
    diary.add_argument("--field", help="the field (with verify: only its chain)")
    diary.add_argument("--from", dest="from_", metavar="WHEN", help="date or RFC 3339")
    diary.add_argument("--to", metavar="WHEN", help="date or RFC 3339")
    diary.add_argument("--format", choices=("text", "json", "csv", "pdf"), default="text")
    diary.add_argument("--lang", choices=("vi", "en"), default="vi")
    diary.add_argument("--history", action="store_true", help="every version written")
    diary.add_argument("-o", "--output", type=Path, help="write here (csv and pdf need it)")
    add_settings_arguments(diary, "metadata_path")
    diary.set_defaults(handler=run)


def _fail(message: str) -> int:
    sys.stderr.write(f"agridrone diary: {message}\n")
    return EXIT_BAD_INPUT


def run(args: argparse.Namespace) -> int:  # noqa: PLR0911 -- one exit per refusal
    """Show a diary (0) or verify the chains (0 intact, 1 broken); 2 on bad input."""
    if args.what == "rules":
        return _rules(args)
    verify = args.what == "verify"
    field_id = args.field if (verify or args.what is None) else args.what
    if not verify and not field_id:
        return _fail("name a field (agridrone diary FIELD) or verify")
    if args.format in ("csv", "pdf") and args.output is None and not verify:
        return _fail(f"--format {args.format} needs --output FILE")
    try:
        start = _ALL_TIME[0] if args.from_ is None else parse_time("from", args.from_)
        end = _ALL_TIME[1] if args.to is None else parse_time("to", args.to)
    except TimeInputError as exc:
        return _fail(str(exc))
    metadata = open_metadata(settings_from_args(args))
    try:
        if verify:
            return _verify(metadata, field_id)
        history = FieldHistory(metadata.field_versions())
        versions = [v for v in history.of(field_id) if v.field.kind == "field"]
        if not versions:
            return _fail(f"no field {field_id!r}")
        try:
            header = field_header(metadata, history.field(versions[-1]))
        except UnusableFieldError as exc:
            return _fail(str(exc))
        rows = metadata.diary_rows(field_id, start, end)
        entries = diary_entries(rows, history=args.history)
        head = rows[-1].entry_hash if rows else None
        return _write(args, entries, header, head)
    finally:
        metadata.close()


def _write(
    args: argparse.Namespace,
    entries: list[dict[str, Any]],
    header: dict[str, Any],
    head: str | None,
) -> int:
    lang = args.lang
    if args.format == "json":
        doc = {"field": header, "entries": entries, "chain_head": head}
        text = json.dumps(doc, ensure_ascii=False, indent=1) + "\n"
        _emit(args.output, text.encode())
    elif args.format == "csv":
        _emit(args.output, to_csv(entries, lang))
    elif args.format == "pdf":
        period = period_label(args.from_, args.to, lang)
        try:
            pdf = to_pdf(entries, header, lang, period=period, head_hash=head)
        except DiaryFontError as exc:
            return _fail(str(exc))
        _emit(args.output, pdf)
    else:
        cols = columns(lang)
        lines = [f"{header['id']}  {header['name']}  {header['area']}"]
        for e in entries:
            cells = [
                f"{c.vi if lang == 'vi' else c.en}: {v}" for c in cols if (v := cell(c, e, lang))
            ]
            lines.append("- " + "; ".join(cells))
        if not entries:
            lines.append("(no entries)" if lang == "en" else "(chưa có lần phun nào)")
        _emit(args.output, ("\n".join(lines) + "\n").encode())
    if args.output is not None:
        sys.stderr.write(f"wrote {len(entries)} entries to {args.output}\n")
    return 0


def _emit(output: Path | None, data: bytes) -> None:
    if output is None:
        sys.stdout.write(data.decode())
    else:
        output.write_bytes(data)


def _rules(args: argparse.Namespace) -> int:
    """Show a cooperative's thresholds, after setting those given."""
    if not args.coop:
        return _fail("rules needs --coop")
    given = {n: v for n in RULE_RANGES if (v := getattr(args, n)) is not None}
    problem = check_rules(given)
    if problem is not None:
        return _fail(problem)
    metadata = open_metadata(settings_from_args(args))
    try:
        rules = metadata.set_diary_rules(args.coop, given) if given else None
        rules = metadata.diary_rules(args.coop) if rules is None else rules
    finally:
        metadata.close()
    params = ComplianceParams.of(rules)
    for name in RULE_RANGES:
        own = "" if name in rules else "  (default)"
        sys.stdout.write(f"{name} {getattr(params, name):g}{own}\n")
    if given:
        sys.stderr.write(
            f"cooperative {args.coop}: entries written from now on use these thresholds;"
            " entries already written keep theirs\n"
        )
    return 0


def _verify(metadata: Any, field_id: str | None) -> int:
    report = verify_chain(metadata.diary_chain(field_id))
    for fid in sorted(report.entries):
        head = report.heads.get(fid, "-")
        sys.stdout.write(f"{fid}  {report.entries[fid]} entries  head {head}\n")
    for b in report.breaks:
        sys.stdout.write(f"BROKEN {b}\n")
    total = sum(report.entries.values())
    if report.ok:
        sys.stderr.write(f"{total} entries in {len(report.entries)} chains: intact\n")
        return 0
    sys.stderr.write(
        f"{len(report.breaks)} of {len(report.entries)} chains broken; the first broken entry"
        " of each is named above\n"
    )
    return EXIT_BROKEN
