"""``agridrone fields import FILE --coop C``: register a cooperative's plots from a GeoJSON
FeatureCollection of any size (or a KML, KMZ, Shapefile or ISOXML TaskData, converted by
``fields.gis``), with the API's validation and rules (docs/api.md, "Importing fields from the
command line").

The command acts as an operator of the local installation (it writes the metadata database
directly), so ``--force`` and commune-wide zones are available, as they are to an operator's
API key. Unlike the API, which refuses a whole request on the first problem, it stores every
feature without problems and lists the others. Features are read one at a time, validated,
checked against the registered fields (an ``STRtree`` picks the neighbours) and written in
large transactions; progress goes to stderr, the summary to stdout.

Exit codes: 0 every feature stored (or unchanged), 1 some refused, 2 the file is unreadable
(nothing stored) or the settings are wrong, 3 the metadata database failed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

if TYPE_CHECKING:
    from fields.stored import FieldHistory

EXIT_REFUSED: Final = 1
EXIT_BAD_INPUT: Final = 2
EXIT_STORE: Final = 3
#: Rows written per transaction (each a progress step).
WRITE_BATCH: Final = 10_000
#: Refused features listed in the summary (all of them with ``--json``).
SHOWN_REFUSALS: Final = 50


def register(subparsers: Any) -> None:
    """Add the ``fields`` sub-command (``fields import``)."""
    from agridrone.settings import add_settings_arguments

    fields_p: argparse.ArgumentParser = subparsers.add_parser(
        "fields", help="import a cooperative's fields and no-spray zones"
    )
    actions = fields_p.add_subparsers(dest="fields_command", required=True, metavar="ACTION")
    imp = actions.add_parser(
        "import",
        help="register fields from GeoJSON (any size), KML/KMZ, a Shapefile or ISOXML",
        description=(
            "Register a cooperative's fields and no-spray zones from a GeoJSON "
            "FeatureCollection, a KML or KMZ, a Shapefile (.shp beside its .dbf and .prj, or "
            "zipped) or an ISOXML TaskData (zipped, or TASKDATA.XML), told apart by content, "
            "with the API's validation and ownership/overlap rules; the "
            "command acts as an operator of this installation. A feature without 'coop' is "
            'the --coop cooperative\'s (a zone with "scope": "commune" is commune-wide). '
            "A refused feature never stops the others. Exit code 0: every feature stored "
            "or unchanged; 1: some refused (listed); 2: unreadable file (nothing stored); "
            "3: the metadata database failed."
        ),
    )
    imp.add_argument(
        "file", type=Path, metavar="FILE", help="GeoJSON, KML, KMZ, Shapefile or ISOXML file"
    )
    imp.add_argument("--coop", required=True, help="the cooperative the fields belong to")
    imp.add_argument(
        "--force",
        action="store_true",
        help="register fields over another cooperative's (an operator's choice; logged)",
    )
    imp.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    imp.add_argument("--quiet", action="store_true", help="no progress bar")
    add_settings_arguments(imp, "metadata_path", "metadata_url")
    imp.set_defaults(handler=run)


@dataclass
class Summary:
    """What an import did, feature by feature for the refused ones."""

    features: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    refused: dict[int, list[str]] = field(default_factory=dict)
    seconds: float = 0.0

    def refuse(self, index: int, reasons: list[str]) -> None:
        """Note a refused feature (several reasons add up)."""
        self.refused.setdefault(index, []).extend(reasons)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of the summary."""
        return {
            "features": self.features,
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "refused": [
                {"index": i, "reasons": reasons} for i, reasons in sorted(self.refused.items())
            ],
            "seconds": round(self.seconds, 3),
        }

    def write(self, out: TextIO, source: Path) -> None:
        """The human summary: counts, then each refused feature with its reasons."""
        out.write(
            f"{source}: {self.features} features: {self.added} added, {self.updated} updated,"
            f" {self.unchanged} unchanged, {len(self.refused)} refused ({self.seconds:.1f} s)\n"
        )
        for shown, (_, reasons) in enumerate(sorted(self.refused.items())):
            if shown == SHOWN_REFUSALS:
                rest = len(self.refused) - SHOWN_REFUSALS
                out.write(f"  ... and {rest} more refused features (--json lists them all)\n")
                break
            for reason in reasons:
                out.write(f"  refused: {reason}\n")


def run(args: argparse.Namespace) -> int:
    """Import the file; the exit code says whether everything was stored (module doc)."""
    from agridrone.settings import settings_from_args
    from agridrone.stores import open_metadata
    from fields.geojson_stream import UnreadableFileError
    from fields.registry import is_valid_id
    from storage.contract import StoreError

    if not is_valid_id(args.coop):
        return _fail(f"--coop {args.coop!r} is not a valid id: 1 to 64 letters, digits, '_', '-'")
    settings = settings_from_args(args)
    started = time.perf_counter()
    try:
        metadata = open_metadata(settings)
        try:
            summary = import_file(
                args.file,
                metadata,
                coop=args.coop,
                force=args.force,
                progress=not args.quiet,
            )
        finally:
            metadata.close()
    except UnreadableFileError as exc:
        return _fail(f"{exc}; nothing was stored")
    except StoreError as exc:
        return _fail(f"{exc}; check --metadata-path or --metadata-url and retry", EXIT_STORE)
    summary.seconds = time.perf_counter() - started
    if args.json:
        import orjson

        sys.stdout.write(orjson.dumps(summary.to_dict()).decode() + "\n")
    else:
        summary.write(sys.stdout, args.file)
    return EXIT_REFUSED if summary.refused else 0


def import_file(
    path: Path, metadata: Any, *, coop: str, force: bool = False, progress: bool = True
) -> Summary:
    """Read, check and store one file's features (the command without its printing);
    ``UnreadableFileError`` before anything is stored when the file cannot be read whole."""
    import logging

    from fields.importing import Importer, import_starts, plan_import
    from fields.registry import Field, parse_feature
    from fields.stored import FieldHistory

    log = logging.getLogger("agridrone.fields")
    summary = Summary()
    parsed: list[tuple[int, Field]] = []
    stream = _features_of(path)
    with _bar(progress, "reading", stream.size, "B") as bar:
        for index, feature in stream:
            summary.features += 1
            f, problems, _ = parse_feature(index, _owned(feature, coop))
            if f is None:
                summary.refuse(index, [p.text for p in problems])
            else:
                parsed.append((index, f))
            if index % 256 == 0:
                bar.update(stream.bytes_read - bar.n)
        bar.update(stream.bytes_read - bar.n)
    with _bar(progress, "checking", 1, "") as bar:
        history = FieldHistory(metadata.field_versions())
        now = int(time.time() * 1000)
        starts = import_starts((f for _, f in parsed), history, now)
        plan = plan_import(
            Importer(coop, operator=True, force=force), parsed, history, valid_from=starts
        )
        bar.update(1)
    for o in plan.overlaps:
        log.warning(
            "%s by=cli field=%s coop=%s other=%s other_coop=%s area_m2=%.1f",
            "field_overlap_forced" if force else "field_overlap_refused",
            o.a.id,
            o.a.coop,
            o.b.id,
            o.b.coop,
            o.area_m2,
        )
    for p in plan.problems:
        summary.refuse(p.index, [f"feature {p.index} ({p.field_id}): {p.detail}"])
    to_store = plan.to_store
    rows = [p.row for p in to_store]
    # What the plan saw of each id: the write refuses a row whose id changed since (another
    # cooperative may register it through the API while this import plans).
    expected = {p.row.id: _latest_seq(history, p.row.id) for p in to_store}
    index_of = {p.row.id: p.index for p in to_store}
    by = f"cli:{coop} (agridrone fields import {path.name})"
    changed_meanwhile: set[str] = set()
    with _bar(progress, "storing", len(rows), "") as bar:
        for k in range(0, len(rows), WRITE_BATCH):
            batch = rows[k : k + WRITE_BATCH]
            saved = metadata.save_fields_bulk(batch, at_ms=now, by=by, expected=expected)
            for r in saved.refused:
                changed_meanwhile.add(r.id)
                summary.refuse(index_of[r.id], [_changed_reason(index_of[r.id], r.id, r.reason)])
                log.warning(
                    "field_import_refused by=cli field=%s coop=%s reason=%s_during_import",
                    r.id,
                    coop,
                    r.reason,
                )
            bar.update(len(batch))
    summary.added = sum(p.row.id not in changed_meanwhile for p in plan.added)
    summary.updated = sum(p.row.id not in changed_meanwhile for p in plan.updated)
    summary.unchanged = len(plan.unchanged)
    return summary


def _features_of(path: Path) -> Any:
    """What reads the file's features: GeoJSON is streamed one feature at a time, any other
    format (a zip, XML, a ``.shp``) is read whole and converted (``GisFile``)."""
    from fields.geojson_stream import FeatureStream

    try:
        with path.open("rb") as f:
            head = f.read(64)
    except OSError:
        head = b""  # (the stream says why it cannot be read)
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if path.suffix.lower() == ".shp" or head[:4] == b"PK\x03\x04" or start == b"<":
        return GisFile(path)
    return FeatureStream(path)


class GisFile:
    """The features of a KML, KMZ, Shapefile or ISOXML file, converted to GeoJSON features
    (``fields.gis``), with ``FeatureStream``'s interface: ``(index, feature)`` pairs, ``size``
    and ``bytes_read``; ``UnreadableFileError`` when the file cannot be read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.size = path.stat().st_size
        except OSError:
            self.size = 0
        self.bytes_read = 0

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        from fields import gis
        from fields.geojson_stream import UnreadableFileError

        try:
            if self.path.suffix.lower() == ".shp":
                fc = gis.read_shapefile(self._beside(), gis.FILE_LIMITS, str(self.path))
            else:
                data = self._bytes(self.path)
                fc = gis.read(data, gis.FILE_LIMITS, what=str(self.path)).collection
        except gis.GisFormatError as exc:
            raise UnreadableFileError(str(exc)) from exc
        except OSError as exc:
            raise UnreadableFileError(f"{self.path}: cannot read the file: {exc.strerror}") from exc
        self.bytes_read = self.size
        yield from enumerate(fc["features"])

    def _beside(self) -> dict[str, bytes]:
        """The ``.shp`` and the files beside it of the same name (.dbf, .shx, .prj, .cpg)."""
        stem = self.path.stem.lower()
        return {
            p.name: self._bytes(p)
            for p in self.path.parent.iterdir()
            if p.is_file() and p.stem.lower() == stem
        }

    @staticmethod
    def _bytes(path: Path) -> bytes:
        from fields import gis

        if path.stat().st_size > gis.FILE_LIMITS.max_bytes:
            raise gis.GisTooLargeError(
                f"{path} is over the limit of {gis.FILE_LIMITS.max_bytes >> 20} MiB: split it"
            )
        return path.read_bytes()


def _latest_seq(history: FieldHistory, field_id: str) -> int | None:
    """The latest version's ``seq`` of an id in the planned-against history (None: new)."""
    versions = history.of(field_id)
    return versions[-1].seq if versions else None


def _changed_reason(index: int, field_id: str, why: str) -> str:
    """Why a planned feature was not stored: its id changed while the import ran. Names only
    the id, as the API's 409 does, never the other cooperative or its field."""
    if why == "taken":
        what = f"field {field_id} now belongs to another cooperative or is a commune-wide zone"
    else:
        what = f"field {field_id} was changed"
    return f"feature {index} ({field_id}): changed during import ({what}); import again"


def _owned(feature: Any, coop: str) -> Any:
    """The feature with ``coop`` set to the import's cooperative when it names none (a zone
    that says ``"scope": "commune"`` stays commune-wide)."""
    if not isinstance(feature, dict):
        return feature
    props = feature.get("properties")
    if props is None:
        props = {}
    if not isinstance(props, dict) or props.get("coop") not in (None, ""):
        return feature
    if props.get("scope") == "commune":
        return feature
    return {**feature, "properties": {**props, "coop": coop}}


def _bar(enabled: bool, what: str, total: int, unit: str) -> Any:
    """A progress bar on stderr (tqdm); a silent one when ``enabled`` is false."""
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=what,
        unit=unit or "it",
        unit_scale=bool(unit),
        file=sys.stderr,
        disable=not enabled,
        mininterval=0.5,
        leave=True,
        dynamic_ncols=True,
    )


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> int:
    sys.stderr.write(f"agridrone fields import: {message}\n")
    return code
