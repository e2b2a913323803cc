"""Typed dependencies the routes declare."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from storage.contract import TelemetryStore
from storage.metadata import MetadataDB


def _store(request: Request) -> TelemetryStore:
    return cast(TelemetryStore, request.app.state.store)


def _metadata(request: Request) -> MetadataDB:
    return cast(MetadataDB, request.app.state.metadata)


StoreDep = Annotated[TelemetryStore, Depends(_store)]
MetadataDep = Annotated[MetadataDB, Depends(_metadata)]
