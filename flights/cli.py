"""``agridrone flights rebuild|list``: recompute stored flight summaries from the telemetry
store, and list what is stored.

``--from``/``--to`` take RFC 3339 times with an offset or bare dates (local midnight in
Asia/Ho_Chi_Minh), as the API does; a flight belongs to the window it started in.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Final

import orjson

from agridrone.settings import STORE_SETTINGS, add_settings_arguments, settings_from_args
from agridrone.stores import open_metadata, open_telemetry_store
from api.times import TimeInputError, parse_time, rfc3339
from flights.segment import IDLE_GAP_S
from flights.service import rebuild
from storage.contract import StoreError
from storage.metadata import MetadataDB, StoredFlight

EXIT_FAILED: Final = 1
EXIT_BAD_INPUT: Final = 2


def register(subparsers: Any) -> None:
    """Add the ``flights`` sub-command."""
    flights: argparse.ArgumentParser = subparsers.add_parser(
        "flights", help="rebuild and list stored flight summaries"
    )
    actions = flights.add_subparsers(dest="flights_command", required=True, metavar="ACTION")
    rebuild_p = actions.add_parser(
        "rebuild",
        help="recompute the flights that started in [from, to) from the telemetry store",
    )
    listing = actions.add_parser("list", help="stored flights that started in [from, to)")
    for p in (rebuild_p, listing):
        p.add_argument("--from", dest="from_", required=True, metavar="TIME", help="start")
        p.add_argument("--to", required=True, metavar="TIME", help="end (exclusive)")
        p.add_argument("--coop", help="only this cooperative's drones")
        p.add_argument("--drone", help="only this drone")
        p.add_argument("--json", action="store_true", help="one JSON object per line")
        p.set_defaults(handler=run)
    rebuild_p.add_argument(
        "--idle-gap",
        type=float,
        default=IDLE_GAP_S,
        metavar="SECONDS",
        help=f"silence that ends a flight (default {IDLE_GAP_S:g})",
    )
    rebuild_p.add_argument(
        "--quiet", action="store_true", help="no progress bar (it goes to stderr, per drone)"
    )
    listing.add_argument("--field", help="only flights over this field")
    add_settings_arguments(rebuild_p, *STORE_SETTINGS)
    add_settings_arguments(listing, "metadata_path")


def _fail(command: str, message: str, code: int = EXIT_BAD_INPUT) -> int:
    sys.stderr.write(f"agridrone flights {command}: {message}\n")
    return code


def run(args: argparse.Namespace) -> int:
    """Run one ``flights`` action; 0 on success, 1 when flights failed or a store is down,
    2 on bad input."""
    command = args.flights_command
    try:
        start_ms, end_ms = parse_time("--from", args.from_), parse_time("--to", args.to)
    except TimeInputError as exc:
        return _fail(command, str(exc))
    if end_ms <= start_ms:
        return _fail(command, f"--to ({args.to}) must be after --from ({args.from_})")
    settings = settings_from_args(args)
    try:
        if command == "list":
            metadata = open_metadata(settings)
            try:
                _list(args, metadata, start_ms, end_ms)
            finally:
                metadata.close()
            return 0
        if args.idle_gap <= 0:
            return _fail(command, f"--idle-gap must be > 0 s, got {args.idle_gap:g}")
        return _rebuild(args, settings, start_ms, end_ms)
    except StoreError as exc:
        return _fail(command, f"{exc}; check the store settings and retry", EXIT_FAILED)


def _rebuild(args: argparse.Namespace, settings: Any, start_ms: int, end_ms: int) -> int:
    from tqdm import tqdm

    store = open_telemetry_store(settings)
    metadata = open_metadata(settings)
    bar = tqdm(desc="rebuilding", unit="drone", file=sys.stderr, disable=args.quiet)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        outcomes = rebuild(
            store,
            metadata,
            start_ms,
            end_ms,
            now_ms=time.time_ns() // 1_000_000,
            coop=args.coop,
            drone=args.drone,
            idle_gap_s=args.idle_gap,
            progress=progress,
        )
    finally:
        bar.close()
        store.close()
        metadata.close()
    out = sys.stdout
    for o in outcomes:
        if args.json:
            out.write(orjson.dumps(o.to_dict()).decode() + "\n")
        else:
            out.write(
                f"{o.coop}/{o.drone}: {len(o.saved)} stored, {len(o.open)} still open,"
                f" {len(o.failed)} failed, {o.removed} stale removed"
                f" ({o.samples_read} samples read)\n"
            )
        for reason in o.failed:
            sys.stderr.write(f"agridrone flights rebuild: {reason}\n")
    failed = sum(len(o.failed) for o in outcomes)
    sys.stderr.write(
        f"rebuilt {sum(len(o.saved) for o in outcomes)} flights of {len(outcomes)} drones"
        f" from {rfc3339(start_ms)} to {rfc3339(end_ms)}"
        + (f"; {failed} could not be summarized (above)" if failed else "")
        + "\n"
    )
    return EXIT_FAILED if failed else 0


def _list(args: argparse.Namespace, metadata: MetadataDB, start_ms: int, end_ms: int) -> None:
    rows = metadata.flights(start_ms, end_ms, coop=args.coop, drone=args.drone, field=args.field)
    out = sys.stdout
    if args.json:
        for r in rows:
            out.write(orjson.dumps(r.summary_dict()).decode() + "\n")
        return
    out.write(f"{'flight':<40} {'start':<29} {'min':>6} {'litres':>8} {'ha':>8}  quality  fields\n")
    for r in rows:
        out.write(_line(r) + "\n")


def _line(r: StoredFlight) -> str:
    s = r.summary_dict()
    fields = ",".join(f["field_id"] for f in s.get("fields", []))
    return (
        f"{r.id:<40} {rfc3339(r.start_ms):<29} {(r.end_ms - r.start_ms) / 60_000:>6.1f}"
        f" {s.get('applied_l', 0.0):>8.2f} {s.get('sprayed_ha', 0.0):>8.4f}"
        f"  {s.get('quality', '?'):<7}  {fields or '-'}"
    )
