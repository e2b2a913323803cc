"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import MetadataDep, StoreDep
from storage.contract import StoreError

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up (answered on the event loop: no worker thread needed, so it
    answers while every thread computes)."""
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
def readyz(store: StoreDep, metadata: MetadataDep) -> dict[str, str] | JSONResponse:
    """The telemetry store and the metadata database both answer."""
    checks: dict[str, str] = {}
    for name, target in (("store", store), ("metadata", metadata)):
        try:
            target.ping()
            checks[name] = "ok"
        except StoreError as exc:
            checks[name] = f"unavailable: {exc}"
    if all(v == "ok" for v in checks.values()):
        return {"status": "ok", **checks}
    return JSONResponse({"status": "unavailable", **checks}, status_code=503)
