"""The FastAPI application: one router per resource, state opened once and shared."""

from __future__ import annotations

from fastapi import FastAPI

from api.routes import drones, fields, health
from storage.contract import TelemetryStore
from storage.metadata import MetadataDB


def create_app(store: TelemetryStore, metadata: MetadataDB) -> FastAPI:
    """The application over an already-open telemetry store and metadata database."""
    app = FastAPI(
        title="agridrone",
        summary="Spraying-drone telemetry, field coverage and reports",
        version="0.1.0",
    )
    app.state.store = store
    app.state.metadata = metadata
    app.include_router(health.router)
    app.include_router(drones.router, prefix="/api/v1")
    app.include_router(fields.router, prefix="/api/v1")
    return app
