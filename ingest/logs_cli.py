"""``agridrone logs import FILE --coop C --drone D``: import a flight log uploaded after the
flight (MAVLink ``.tlog``, ArduPilot DataFlash ``.bin``, PX4 ``.ulg``, Airdata/track CSV)
through the same validation and storage as live telemetry (ingest/logimport.py,
docs/integrations.md "Flight-log upload").

The kind is recognised by content, not by name. Progress goes to stderr, the summary to
stdout (``--json``: one JSON object, the API's answer). The drone must be registered.

Exit codes: 0 imported (or imported before: nothing stored again); 1 imported what was
readable, but the file is damaged (cut short or with corrupt stretches, the summary says
where); 2 nothing imported: not a flight log, bad option, unknown drone; 3 the telemetry
store or the metadata database failed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

if TYPE_CHECKING:
    from agridrone.settings import Settings
    from ingest.logimport import ImportResult
    from storage.metadata import MetadataDB

EXIT_DAMAGED: Final = 1
EXIT_BAD_INPUT: Final = 2
EXIT_STORE: Final = 3


def register(subparsers: Any) -> None:
    """Add the ``logs`` sub-command (``logs import``)."""
    from agridrone.settings import STORE_SETTINGS, add_settings_arguments

    logs_p: argparse.ArgumentParser = subparsers.add_parser(
        "logs", help="import flight logs uploaded after the flight"
    )
    actions = logs_p.add_subparsers(dest="logs_command", required=True, metavar="ACTION")
    imp = actions.add_parser(
        "import",
        help="import one flight log (.tlog, .bin, .ulg, Airdata/track CSV)",
        description=(
            "Import one drone's flight log: a MAVLink telemetry log (.tlog), an ArduPilot "
            "DataFlash log (.bin), a PX4 ULog (.ulg) or a flight-record CSV (Airdata export "
            "or ts,lat,lon,... track), recognised by content. Samples go through the live "
            "telemetry's validation into the store; the flights in the log are summarized. "
            "The same file again stores nothing. Exit code 0: imported; 1: imported what was "
            "readable of a damaged file; 2: nothing imported (not a flight log, bad option, "
            "unknown drone); 3: the store or metadata database failed."
        ),
    )
    imp.add_argument("file", type=Path, metavar="FILE", help="the flight log")
    imp.add_argument("--coop", required=True, help="the drone's cooperative")
    imp.add_argument("--drone", required=True, help="the drone (registered)")
    imp.add_argument(
        "--spray",
        default=None,
        metavar="RULE",
        help=(
            "when the drone sprayed: a MAVLink rule set for .tlog/.bin (rc7>1500, "
            "servo9>1600, auto; comma = all must hold), or 'all' / 'none' for any log "
            "(default: none)"
        ),
    )
    imp.add_argument("--json", action="store_true", help="print the result as one JSON object")
    imp.add_argument("--quiet", action="store_true", help="no progress bar")
    add_settings_arguments(imp, *STORE_SETTINGS, "rejected_max_rows")
    imp.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:  # noqa: PLR0911 -- one return per exit code
    """Import the file; the exit code says how it went (module doc)."""
    from adapters._common import AdapterError
    from agridrone.settings import settings_from_args
    from agridrone.stores import open_metadata
    from ingest.logimport import LogImportError, detect_kind
    from ingest.wire import is_valid_id
    from storage.contract import StoreError

    problem = _argument_problem(args, is_valid_id)
    if problem is not None:
        return _fail(problem)
    settings = settings_from_args(args)
    try:
        metadata = open_metadata(settings)
    except StoreError as exc:
        return _fail(f"{exc}; check --metadata-path or --metadata-url", EXIT_STORE)
    try:
        if metadata.drone(args.coop, args.drone) is None:
            return _fail(
                f"drone {args.drone!r} of cooperative {args.coop!r} is not registered "
                "(register it: agridrone drones add --coop C --drone D); nothing imported"
            )
        detect_kind(args.file)  # refuse another kind before the progress bar shows
        result = _import(args, settings, metadata)
    except AdapterError as exc:
        return _fail(f"{args.file}: {exc}; nothing imported")
    except LogImportError as exc:
        return _fail(str(exc), EXIT_STORE)
    except StoreError as exc:
        return _fail(f"{exc}; nothing recorded as imported: run the import again", EXIT_STORE)
    finally:
        metadata.close()
    if args.json:
        import orjson

        sys.stdout.write(orjson.dumps(result.to_dict()).decode() + "\n")
    else:
        write_summary(result, sys.stdout)
    return 0 if result.complete else EXIT_DAMAGED


def _import(args: argparse.Namespace, settings: Settings, metadata: MetadataDB) -> ImportResult:
    from agridrone.stores import open_telemetry_store
    from ingest.logimport import import_log

    store = open_telemetry_store(settings)
    try:
        with _bar(not args.quiet, args.file.stat().st_size) as bar:
            return import_log(
                args.file,
                coop=args.coop,
                drone=args.drone,
                store=store,
                metadata=metadata,
                spray=args.spray,
                progress=lambda done: bar.update(done - bar.n),
                rejected_max_rows=settings.rejected_max_rows,
            )
    finally:
        store.close()


def _argument_problem(args: argparse.Namespace, valid: Callable[[str], bool]) -> str | None:
    for label, value in (("--coop", args.coop), ("--drone", args.drone)):
        if not valid(value):
            return f"{label} {value!r} is not a valid id: 1 to 64 letters, digits, '_', '-'"
    if not args.file.is_file():
        return f"{args.file}: no such file"
    return None


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def write_summary(r: ImportResult, out: TextIO) -> None:
    """The human summary of an import."""
    if r.already_imported:
        out.write(
            f"{r.name}: already imported for {r.coop}/{r.drone} at {_when(r.imported_ms)}"
            f" (same content, sha256 {r.sha256[:12]}); nothing stored again."
            f" It held {len(r.flights)} flights.\n"
        )
        return
    rejected = sum(r.rejected.values())
    out.write(
        f"{r.name} ({r.kind}, {r.bytes} bytes, {r.messages} messages, {r.seconds:.1f} s):"
        f" {r.samples_stored} samples and {r.events_stored} events stored,"
        f" {rejected} rejected, {len(r.flights)} flights found\n"
    )
    out.write(f"  time span: {_when(r.first_ms)} .. {_when(r.last_ms)}\n")
    for reason, n in sorted(r.rejected.items()):
        out.write(f"  rejected {reason}: {n}\n")
    for f in r.flights:
        state = " (still open)" if f.open else ""
        out.write(f"  flight {f.id}: {_when(f.start_ms)} .. {_when(f.end_ms)}{state}\n")
    for e in r.flight_errors:
        out.write(f"  flight not summarized: {e}\n")
    if r.stopped is not None:
        out.write(f"  stopped {r.stopped}\n")
    for p in r.skipped:
        out.write(f"  skipped {p}\n")
    if r.skipped_count > len(r.skipped):
        out.write(f"  ... {r.skipped_count - len(r.skipped)} more corrupt stretches skipped\n")
    for name, n in sorted(r.notes.items()):
        out.write(f"  {name.replace('_', ' ')}: {n}\n")
    for notice in r.notices:
        out.write(f"  note: {notice}\n")


def _bar(enabled: bool, total: int) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc="importing",
        unit="B",
        unit_scale=True,
        file=sys.stderr,
        disable=not enabled,
        mininterval=0.5,
        leave=True,
        dynamic_ncols=True,
    )


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> int:
    sys.stderr.write(f"agridrone logs import: {message}\n")
    return code
