"""Typed dependencies the routes declare."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from api.catalog import FieldCatalog
from storage.contract import TelemetryStore
from storage.metadata import MetadataDB


def _store(request: Request) -> TelemetryStore:
    return cast(TelemetryStore, request.app.state.store)


def _metadata(request: Request) -> MetadataDB:
    return cast(MetadataDB, request.app.state.metadata)


def _catalog(request: Request) -> FieldCatalog:
    return cast(FieldCatalog, request.app.state.catalog)


StoreDep = Annotated[TelemetryStore, Depends(_store)]
MetadataDep = Annotated[MetadataDB, Depends(_metadata)]
CatalogDep = Annotated[FieldCatalog, Depends(_catalog)]
