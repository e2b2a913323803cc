"""The FastAPI application: one router per resource, state opened once and shared.

Every error answer is JSON ``{"detail": ...}`` saying what to do: unknown routes and
methods, validation errors (reshaped to name the parameter), bodies over the limits
(``api.limits``), an unavailable store (503), and unexpected failures (500, logged with an
id; never a stack trace in the answer). No answer or log line repeats a key or password.
``/docs`` and ``/redoc`` work offline: their scripts come from the fastapi-offline package.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

import web
from api.catalog import FieldCatalog
from api.limits import RequestLimitsMiddleware
from api.problems import ProblemsError
from api.routes import (
    coverage,
    diary,
    drones,
    fields,
    flights,
    health,
    jobs,
    keys,
    logs,
    metrics,
    products,
    rejected,
    reports,
    session,
)
from fields.stored import UnusableFieldError
from storage.contract import StoreUnavailableError, TelemetryStore
from storage.metadata import MetadataDB
from storage.secrets import redact_urls

log = logging.getLogger("agridrone.api")


def create_app(
    store: TelemetryStore,
    metadata: MetadataDB,
    *,
    metrics_public: bool = False,
    log_upload_max_bytes: int = logs.DEFAULT_MAX_BYTES,
    tile_url: str | None = None,
) -> FastAPI:
    """The application over an already-open telemetry store and metadata database.

    ``metrics_public`` lets anyone read ``/metrics``; otherwise it needs an operator key.
    ``log_upload_max_bytes`` is the largest flight log ``POST .../logs`` accepts (413).
    The web app (``web``) is served at ``/``; ``tile_url`` is its optional map tile URL.
    """
    app = FastAPIOffline(
        title="agridrone",
        summary="Spraying-drone telemetry, field coverage and reports",
        version="0.1.0",
        static_url="/docs-static",
    )
    app.state.store = store
    app.state.metadata = metadata
    app.state.catalog = FieldCatalog(metadata)
    app.state.metrics_public = metrics_public
    app.state.log_upload_max_bytes = log_upload_max_bytes
    measured = metrics.ApiMetrics.create()
    app.state.metrics = measured
    app.add_middleware(RequestLimitsMiddleware)
    app.add_middleware(metrics.MetricsMiddleware, metrics=measured)
    measured.include(app, health.router)
    measured.include(app, metrics.router)
    routers = (
        drones.router,
        logs.router,
        fields.router,
        coverage.router,
        flights.router,
        rejected.router,
        reports.router,
        products.router,
        jobs.router,
        diary.router,
        session.router,
        keys.router,
    )
    for router in routers:
        measured.include(app, router, prefix="/api/v1")
    web.install(app, tile_url=tile_url)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StoreUnavailableError, _store_unavailable)
    app.add_exception_handler(UnusableFieldError, _unusable_field)
    app.add_exception_handler(Exception, _unexpected)
    return app


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    detail: Any = exc.detail
    headers = dict(exc.headers or {})
    if "route" not in request.scope and exc.status_code == 404:
        if web.wants_page(request):  # a browser that mistyped a page: a page, not JSON
            return web.not_found_page(request)
        detail = (
            f"no route {request.method} {request.url.path}; the routes are listed at /docs"
            " (API routes start with /api/v1/)"
        )
    elif exc.status_code == 405:
        allowed = headers.get("allow", headers.get("Allow", ""))
        detail = f"{request.method} is not allowed on {request.url.path}; use {allowed}"
    body: dict[str, Any] = {"detail": detail}
    if isinstance(exc, ProblemsError):
        body["coded_problems"] = exc.coded
    return JSONResponse(body, status_code=exc.status_code, headers=headers)


def describe_problem(error: dict[str, Any]) -> str:
    """One validation error as a sentence naming where it is and what was sent."""
    loc: Sequence[Any] = error.get("loc", ())
    where = str(loc[0]) if loc else "request"
    name = ".".join(str(p) for p in loc[1:])
    place = {
        "query": f"query parameter {name!r}",
        "path": f"path parameter {name!r}",
        "header": f"header {name!r}",
        "body": f"request body at {name!r}" if name else "request body",
    }.get(where, f"{where} {name!r}")
    message = str(error.get("msg", "is not valid"))
    if error.get("type") == "missing":
        return f"{place} is required"
    got = error.get("input")
    # Bodies and headers may hold secrets or megabytes: only short query/path values echo.
    echo = where in ("query", "path") and got is not None
    shown = f" (got {str(got)[:100]!r})" if echo else ""
    return f"{place}: {message}{shown}"


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [describe_problem(dict(e)) for e in exc.errors()]
    return JSONResponse({"detail": "; ".join(problems), "problems": problems}, status_code=422)


async def _store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    reason = redact_urls(str(exc))
    log.warning("store_unavailable path=%s error=%r", request.url.path, reason)
    return JSONResponse(
        {"detail": f"the data store is not answering ({reason}); try again in a minute"},
        status_code=503,
        headers={"Retry-After": "30"},
    )


async def _unusable_field(request: Request, exc: Exception) -> JSONResponse:
    """A stored field version that no longer validates, met by a route that already checked
    the caller may see it: 409 saying why and what to do (not a 500)."""
    assert isinstance(exc, UnusableFieldError)
    log.warning(
        "unusable_field path=%s field=%s version=%d", request.url.path, exc.field_id, exc.seq
    )
    return JSONResponse({"detail": str(exc)}, status_code=409)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    error_id = uuid.uuid4().hex[:12]
    log.error(
        "unexpected_error id=%s method=%s path=%s",
        error_id,
        request.method,
        request.url.path,
        exc_info=exc,
    )
    return JSONResponse(
        {
            "detail": f"internal error {error_id}: the request could not be answered;"
            " an operator can find this id in the API log"
        },
        status_code=500,
    )
