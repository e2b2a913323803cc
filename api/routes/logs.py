"""Flight-log upload: ``POST /api/v1/drones/{coop}/{drone}/logs`` with the file as the body.

For spray teams that fly out of coverage: the log a ground station or the drone recorded
(MAVLink ``.tlog``, ArduPilot DataFlash ``.bin``, PX4 ``.ulg``, Airdata/track CSV, told
apart by content) goes through the same validation and storage as live telemetry
(ingest/logimport.py). The drone's cooperative or an operator may upload; anyone else gets
the 404 of an unknown drone, as does a drone that is not registered.

The body is streamed to a temporary file (never held in memory) and refused with 413 as
soon as it passes the upload limit (``AGRIDRONE_LOG_UPLOAD_MAX_MIB``); the request-limits
middleware leaves this route's body alone (``api.limits.STREAMED_BODY``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Annotated, Any, Final

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.auth import PrincipalDep, can_see_drone
from api.catalog import heavy
from api.deps import MetadataDep, StoreDep
from api.routes.drones import CoopId, DroneId, _no_drone
from storage.contract import TelemetryStore
from storage.metadata import MetadataDB

router = APIRouter(tags=["drones"])

#: Upload limit when the application is given none (``create_app(log_upload_max_bytes=)``).
DEFAULT_MAX_BYTES: Final = 256 * 1024 * 1024
_NAME_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._ -]")


def _too_large(limit: int, declared: int | None = None) -> HTTPException:
    said = f" (Content-Length says {declared} bytes)" if declared is not None else ""
    return HTTPException(
        413,
        detail=f"the flight log is larger than the upload limit of {limit} bytes"
        f" ({limit / (1024 * 1024):.0f} MiB){said}; split the log or ask the operator to"
        " raise AGRIDRONE_LOG_UPLOAD_MAX_MIB",
    )


@router.post(
    "/drones/{coop}/{drone}/logs",
    responses={
        200: {"description": "the same file was imported for this drone before: nothing stored"},
        201: {"description": "imported: samples stored, rejected by reason, flights found"},
        404: {"description": "no such drone that the key may see"},
        413: {"description": "the file is larger than the upload limit"},
        415: {"description": "not a flight log of an accepted kind"},
        422: {"description": "a bad spray rule"},
    },
)
async def upload_log(  # noqa: PLR0917 -- path, key, stores, the request and options
    coop: CoopId,
    drone: DroneId,
    principal: PrincipalDep,
    store: StoreDep,
    metadata: MetadataDep,
    request: Request,
    spray: Annotated[
        str | None,
        Query(
            max_length=200,
            description="when the drone sprayed: a MAVLink rule set for .tlog/.bin (rc7>1500,"
            " servo9>1600, auto) or all / none (default none)",
        ),
    ] = None,
    name: Annotated[
        str | None, Query(max_length=200, description="the file's name, for the answer")
    ] = None,
) -> JSONResponse:
    """Import one flight log of the drone (body: the raw file, any content type).

    Answers 201 with samples stored, rejected by reason, flights found (each summarized,
    however old), and where a damaged file stopped or was skipped; 200 with the first
    import's result and ``already_imported: true`` when the same content was imported for
    this drone before (nothing is stored again).
    """
    if not can_see_drone(principal, coop):
        raise _no_drone(coop, drone)
    if await run_in_threadpool(metadata.drone, coop, drone) is None:
        raise _no_drone(coop, drone)
    limit: int = getattr(request.app.state, "log_upload_max_bytes", DEFAULT_MAX_BYTES)
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise _too_large(limit, int(declared))
    fd, tmp = tempfile.mkstemp(prefix="agridrone-log-", suffix=".upload")
    path = Path(tmp)
    try:
        digest = hashlib.sha256()
        size = 0
        with os.fdopen(fd, "wb") as f:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                digest.update(chunk)
                await run_in_threadpool(f.write, chunk)
        label = _NAME_UNSAFE.sub("_", name)[:200] if name else "upload"
        result = await run_in_threadpool(
            _import, path, coop, drone, store, metadata, spray, label, digest.hexdigest()
        )
    finally:
        await run_in_threadpool(_remove, path)
    return JSONResponse(result, status_code=200 if result["already_imported"] else 201)


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def _import(  # noqa: PLR0917 -- run in a thread with positional arguments
    path: Path,
    coop: str,
    drone: str,
    store: TelemetryStore,
    metadata: MetadataDB,
    spray: str | None,
    name: str,
    sha256: str,
) -> dict[str, Any]:
    from adapters._common import AdapterError, ConfigError
    from adapters.flightlog import UnsupportedLogError
    from ingest.logimport import LogImportError, import_log
    from storage.contract import StoreUnavailableError

    try:
        with heavy():
            result = import_log(
                path,
                coop=coop,
                drone=drone,
                store=store,
                metadata=metadata,
                spray=spray,
                name=name,
                sha256=sha256,
            )
    except UnsupportedLogError as exc:
        raise HTTPException(415, detail=str(exc)) from None
    except ConfigError as exc:
        raise HTTPException(422, detail=f"spray: {exc}") from None
    except AdapterError as exc:
        raise HTTPException(422, detail=str(exc)) from None
    except LogImportError as exc:
        raise StoreUnavailableError(str(exc)) from exc
    return result.to_dict()
