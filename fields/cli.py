"""``agridrone coverage``: the offline front of the coverage engine.

Bad input (unreadable or invalid GeoJSON, a broken track, an unknown field id) gives a
one-paragraph message on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

EXIT_BAD_INPUT = 2


def register(subparsers: Any) -> None:
    """Add the ``coverage`` sub-command."""
    parser = subparsers.add_parser(
        "coverage",
        help="spray coverage of fields from a flown track",
        description=(
            "Coverage, gaps, overlap, off-target spray and dose of each field a track "
            "touches. JSON prints one object per field per line; GeoJSON prints the "
            "covered, missed, overlap, off-target and no-spray polygons."
        ),
    )
    parser.add_argument(
        "--field", required=True, type=Path, metavar="FIELDS.geojson", help="field registry"
    )
    parser.add_argument(
        "--track", required=True, type=Path, metavar="TRACK", help="CSV or JSON Lines samples"
    )
    parser.add_argument(
        "--swath", type=float, metavar="METRES", help="swath where samples carry no swath_m"
    )
    parser.add_argument(
        "--field-id",
        action="append",
        dest="field_ids",
        metavar="ID",
        help="report this field (repeatable); default: every field the track touches",
    )
    parser.add_argument("--format", choices=("json", "geojson"), default="json")
    parser.add_argument(
        "--repair",
        action="store_true",
        help="close unclosed rings and make_valid self-intersecting fields instead of failing",
    )
    parser.set_defaults(handler=run)


def _fail(message: str) -> int:
    sys.stderr.write(f"agridrone coverage: {message}\n")
    return EXIT_BAD_INPUT


def run(args: argparse.Namespace) -> int:
    """Compute and print coverage; 0 on success, 2 on bad input."""
    from fields.coverage import CoverageEngine, CoverageInputError, CoverageParams
    from fields.registry import FieldValidationError, load_fields
    from fields.tracks import TrackError, read_track

    if args.swath is not None and not args.swath > 0:
        return _fail(f"--swath must be a positive number of metres, got {args.swath}")
    try:
        registry = load_fields(args.field, repair=args.repair)
    except FieldValidationError as exc:
        return _fail(str(exc))
    if not registry.fields:
        return _fail(f"{args.field}: holds no fields to spray (only no-spray zones)")
    for note in registry.repairs:
        sys.stderr.write(f"agridrone coverage: {note}\n")
    known = {f.id for f in registry.fields}
    unknown = [fid for fid in args.field_ids or [] if fid not in known]
    if unknown:
        return _fail(
            f"no field {', '.join(map(repr, unknown))} in {args.field} "
            f"(it has {len(known)} fields, e.g. {', '.join(sorted(known)[:5])})"
        )
    try:
        samples = read_track(args.track)
        engine = CoverageEngine(registry, CoverageParams(default_swath_m=args.swath))
        states = engine.run(samples)
    except (TrackError, CoverageInputError) as exc:
        return _fail(str(exc))
    ids = list(args.field_ids or [])
    if not ids:
        ids = [f.id for f in registry.fields if states[f.id].passes > 0]
        if not ids and len(registry.fields) == 1:
            ids = [registry.fields[0].id]
    if not ids:
        sys.stderr.write(
            f"agridrone coverage: the track sprays none of the {len(known)} fields "
            f"in {args.field}\n"
        )
    _print(engine, [states[fid] for fid in ids], args.format)
    return 0


def _print(engine: Any, states: list[Any], fmt: str) -> None:
    results = [engine.result(state) for state in states]
    for r in results:
        if r.sparse and r.passes:
            sys.stderr.write(
                f"agridrone coverage: field {r.field_id}: positioning is sparse (samples "
                "further apart than half a swath): covered "
                f"{r.covered_ha:.4f} ± {r.uncertainty_ha:.4f} ha "
                f"({r.coverage_pct:.1f} ± {r.uncertainty_pct:.1f} %), gaps over the gap "
                "limit are not counted as sprayed\n"
            )
        elif r.uncertain and r.passes:
            sys.stderr.write(
                f"agridrone coverage: field {r.field_id}: positioning is {r.positioning}, "
                "not RTK; gaps and overlap are uncertain (GNSS error of a metre or more)\n"
            )
    if fmt == "json":
        for r in results:
            sys.stdout.write(json.dumps(r.metrics(), ensure_ascii=False) + "\n")
        return
    features = []
    for r, state in zip(results, states, strict=True):
        features.extend(engine.geometry(state).features(uncertain=r.uncertain))
    doc = {"type": "FeatureCollection", "features": features}
    sys.stdout.write(json.dumps(doc, ensure_ascii=False) + "\n")
