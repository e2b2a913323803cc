"""The registered fields, parsed once and shared by the routes, reloaded when they change.

Parsing every stored feature (validation, projection) and preparing a coverage engine over
them costs far more than answering a request, so the API keeps one ``Catalog`` and swaps
it for a new one only when ``MetadataDB.fields_version`` moves (a cheap indexed query).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from fields.coverage import CoverageEngine, CoverageParams
from fields.registry import Field, FieldRegistry
from fields.stored import stored_registry
from storage.metadata import MetadataDB


@dataclass(eq=False)
class Catalog:
    """One version of the field registry, with its coverage engine built on first use."""

    version: tuple[int, int]
    registry: FieldRegistry | None
    by_id: dict[str, Field]
    _engine: CoverageEngine | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def engine(self) -> CoverageEngine | None:
        """The coverage engine over these fields (default parameters), or ``None`` without
        fields. Stored coverage states decode against it: grids do not depend on swath."""
        if self.registry is None or not self.registry.fields:
            return None
        with self._lock:
            if self._engine is None:
                self._engine = CoverageEngine(self.registry, CoverageParams())
            return self._engine


class FieldCatalog:
    """Hands out the current ``Catalog``; thread-safe, one reload per change."""

    def __init__(self, metadata: MetadataDB) -> None:
        self._metadata = metadata
        self._lock = threading.Lock()
        self._current: Catalog | None = None

    def current(self) -> Catalog:
        """The catalog of the fields registered now."""
        version = self._metadata.fields_version()
        current = self._current
        if current is not None and current.version == version:
            return current
        with self._lock:
            if self._current is None or self._current.version != version:
                self._current = _load(self._metadata, version)
            return self._current


def _load(metadata: MetadataDB, version: tuple[int, int]) -> Catalog:
    rows = metadata.stored_fields()
    registry = stored_registry(rows) if rows else None
    by_id = {} if registry is None else {f.id: f for f in (*registry.fields, *registry.no_spray)}
    # The version read before the rows: a save racing with this load makes the next call
    # see a newer version and load again, never keep stale rows under a new version.
    return Catalog(version=version, registry=registry, by_id=by_id)
