"""``agridrone jobs refly JOB_ID``: a job's re-fly list (the missed pieces of its fields
worth flying again, with a flight line each, in flying order), as ``GET
/api/v1/jobs/{id}/refly`` answers it to an operator: text for a pilot, JSON, GeoJSON or
CSV. Bad input exits 2; a job whose flights cannot be read now exits 1."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import orjson

from agridrone.settings import add_settings_arguments, settings_from_args
from agridrone.stores import open_metadata
from api.catalog import FieldCatalog
from fields.refly import DEFAULT_MIN_M2, MAX_MIN_M2, TooManyPiecesError, feature_collection
from flights.refly import ReflyStaleError, ReflyStateError, refly_list
from reports.refly_render import to_csv, to_text

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


def register(subparsers: Any) -> None:
    """Add the ``jobs`` sub-command."""
    jobs: argparse.ArgumentParser = subparsers.add_parser(
        "jobs", help="spray jobs: `jobs refly JOB_ID` lists the missed areas to fly again"
    )
    actions = jobs.add_subparsers(dest="jobs_command", required=True, metavar="ACTION")
    refly = actions.add_parser(
        "refly",
        help="the missed areas of a job's fields to fly again, in flying order",
        description="The missed pieces of every field the job named, left by the job's own"
        " flights, of at least --min-m2, each with a flight line (the long axis of its"
        " minimum rotated rectangle), field by field, nearest next.",
    )
    refly.add_argument("job_id", metavar="JOB_ID", help="{coop}.{drone}.{job}")
    refly.add_argument(
        "--min-m2",
        type=float,
        default=DEFAULT_MIN_M2,
        metavar="M2",
        help=f"smallest piece listed, more than 0 and at most {MAX_MIN_M2:,.0f} m²"
        f" (default {DEFAULT_MIN_M2:g})",
    )
    refly.add_argument("--format", choices=("text", "json", "geojson", "csv"), default="text")
    refly.add_argument("--lang", choices=("vi", "en"), default="vi", help="text and CSV")
    refly.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    add_settings_arguments(refly, "metadata_path")
    refly.set_defaults(handler=run)


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> int:
    sys.stderr.write(f"agridrone jobs refly: {message}\n")
    return code


def run(args: argparse.Namespace) -> int:
    """Print a job's re-fly list: 0, 1 when its flights cannot be read now, 2 on bad input."""
    min_m2 = args.min_m2
    if not 0 < min_m2 <= MAX_MIN_M2:
        return _fail(f"--min-m2 must be more than 0 and at most {MAX_MIN_M2:g} m², got {min_m2:g}")
    metadata = open_metadata(settings_from_args(args))
    try:
        job = metadata.job(args.job_id)
        if job is None:
            return _fail(f"no job {args.job_id!r}; jobs are named {{coop}}.{{drone}}.{{job}}")
        current = FieldCatalog(metadata).current()
        try:
            answer = refly_list(
                metadata,
                job,
                current.engine_at,
                min_m2,
                outdated=lambda p: current.history.outdated(p.start_ms, p.computed_ms),
            )
        except ReflyStaleError as exc:
            return _fail(
                f"flight {exc.flight_id} is being summarized again (the fields changed);"
                " try again in a minute",
                EXIT_FAILED,
            )
        except (ReflyStateError, TooManyPiecesError) as exc:
            code = EXIT_BAD_INPUT if isinstance(exc, TooManyPiecesError) else EXIT_FAILED
            return _fail(str(exc), code)
    finally:
        metadata.close()
    doc = answer.to_dict()
    if args.format == "json":
        data = (json.dumps(doc, ensure_ascii=False, indent=1) + "\n").encode()
    elif args.format == "geojson":
        data = orjson.dumps(feature_collection(answer.pieces, job=job.id, min_m2=min_m2))
    elif args.format == "csv":
        data = to_csv(doc["pieces"], args.lang)
    else:
        data = to_text(doc, args.lang).encode()
    if args.output is None:
        sys.stdout.write(data.decode())
    else:
        args.output.write_bytes(data)
        sys.stderr.write(f"wrote {len(answer.pieces)} pieces to {args.output}\n")
    return 0
