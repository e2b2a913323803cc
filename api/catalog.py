"""The registered fields, parsed once and shared by the routes, reloaded when they change.

Parsing every stored feature (validation, projection) and preparing a coverage engine over
them costs far more than answering a request, so the API keeps one ``Catalog`` and swaps
it for a new one only when ``MetadataDB.fields_version`` moves (a cheap query, read from
the database on every request, so another API process's change is seen at once). The new
catalog reuses the previous one's parsed fields and prepared engine fields for every
version that did not change: a change costs the changed fields, not the registry.
A catalog also holds every past version of the fields (``history``) and hands out the
registry and engine as they were at any instant, for flights of the past.
"""

from __future__ import annotations

import contextlib
import gc
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final

from fastapi import HTTPException

from fields.coverage import CoverageEngine, CoverageParams
from fields.registry import Field, FieldRegistry
from fields.stored import (
    CACHED_SETS,
    FieldHistory,
    LruCache,
    VersionSet,
    registry_of,
)
from storage.metadata import MetadataDB

#: Coverage engines of past registries kept at once.
CACHED_ENGINES: Final = 8
#: Seconds a client is told to wait for a flight being summarized again.
RETRY_AFTER_S: Final = 60
#: Heavy geometry (coverage answers) running at once, one per core: more threads only
#: fight over the GIL, and the event loop (``/healthz``, cheap routes) waits behind them.
HEAVY_SLOTS: Final = max(1, os.cpu_count() or 1)
_heavy = threading.BoundedSemaphore(HEAVY_SLOTS)


@contextlib.contextmanager
def heavy() -> Iterator[None]:
    """Hold one of the ``HEAVY_SLOTS`` while computing: sync routes run in the server's
    thread pool, and a thread waiting here holds no GIL, so however many clients ask for
    coverage at once, the event loop keeps answering."""
    with _heavy:
        yield


def being_recomputed(flight_id: str, start: str, end: str) -> HTTPException:
    """The 503 for a flight summarized before a field or zone change that reaches back
    past its start: the flight watcher is summarizing it again. It names no field, no
    version and no time of the change, which may be another cooperative's."""
    return HTTPException(
        503,
        detail=f"flight {flight_id} is being summarized again because the registered fields "
        "changed with effect from before it flew; try again in a minute. If this lasts, an "
        f"operator recomputes it with `agridrone flights rebuild --from {start} --to {end}`",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


@dataclass(eq=False)
class Catalog:
    """One version of the field registry (and its history), with coverage engines built on
    first use."""

    version: tuple[int, int]
    registry: FieldRegistry | None
    by_id: dict[str, Field]
    history: FieldHistory = field(default_factory=lambda: FieldHistory(()))
    _past: OrderedDict[VersionSet, CoverageEngine] = field(default_factory=OrderedDict)
    _ids: LruCache[int, Mapping[str, Field]] = field(default_factory=lambda: LruCache(CACHED_SETS))
    _owners: LruCache[int, Mapping[str, tuple[str, str]]] = field(
        default_factory=lambda: LruCache(CACHED_SETS)
    )
    _by_span: LruCache[int, CoverageEngine | None] = field(
        default_factory=lambda: LruCache(CACHED_ENGINES)
    )
    _lock: threading.Lock = field(default_factory=threading.Lock)
    #: The previous catalog's latest engine: fields it prepared that did not change since
    #: are reused by this catalog's first engine (then dropped).
    base_engine: CoverageEngine | None = None

    def latest_engine(self) -> CoverageEngine | None:
        """The engine built or used most recently (the base of the next catalog's)."""
        with self._lock:
            if self._past:
                return next(reversed(self._past.values()))
            return self.base_engine

    def engine(self) -> CoverageEngine | None:
        """The coverage engine over the fields valid now (default parameters), or ``None``
        without fields; the same cached engine ``engine_at`` gives for any instant since
        the last change. Stored coverage states decode against it: grids do not depend on
        swath."""
        return self.engine_at(int(time.time() * 1000))

    def by_id_at(self, ms: int) -> Mapping[str, Field]:
        """The fields and zones valid at ``ms``, by id (reports join flights with it); one
        shared mapping per span of the history, not to be changed, since a report asks for
        each of thousands of flights."""
        return self._ids.get(self.history.span_at(ms), lambda: self._by_id_at(ms))

    def _by_id_at(self, ms: int) -> Mapping[str, Field]:
        _, registry = self.history.registry_at(ms)
        return {} if registry is None else {f.id: f for f in registry.fields + registry.no_spray}

    def owners_at(self, ms: int) -> Mapping[str, tuple[str, str]]:
        """(owner, coop) by id of every field and zone version valid at ``ms``, usable or
        not (who may see a flight is decided by ownership when it flew); one shared mapping
        per span of the history, not to be changed, since a flight list asks for each."""
        return self._owners.get(
            self.history.span_at(ms),
            lambda: {
                v.id: (v.field.owner, v.field.coop) for v in self.history.versions if v.valid_at(ms)
            },
        )

    def engine_at(self, ms: int) -> CoverageEngine | None:
        """The coverage engine over the registry as it was at ``ms`` (default parameters),
        or ``None`` when no field was registered then; looked up by the span of the
        history holding ``ms`` (a version set of a town is a 100,000-long key to hash)."""
        return self._by_span.get(self.history.span_at(ms), lambda: self._engine_at(ms))

    def _engine_at(self, ms: int) -> CoverageEngine | None:
        key, registry = self.history.registry_at(ms)
        if registry is None or not registry.fields:
            return None
        with self._lock:
            engine = self._past.get(key)
            if engine is None:
                base = next(reversed(self._past.values())) if self._past else self.base_engine
                engine = CoverageEngine(registry, CoverageParams(), previous=base)
                self._past[key] = engine
                self.base_engine = None
                while len(self._past) > CACHED_ENGINES:
                    self._past.popitem(last=False)
            self._past.move_to_end(key)
        # The engine lives until the registry changes: keep its objects out of the cyclic
        # collector's full scans (a town's take ~1 s each, holding the GIL).
        gc.freeze()
        return engine


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
                self._current = _load(self._metadata, version, self._current)
            return self._current


def _load(metadata: MetadataDB, version: tuple[int, int], previous: Catalog | None) -> Catalog:
    """The catalog of ``version``; what the ``previous`` one parsed and prepared for
    versions that did not change is reused (one changed field costs one field's work)."""
    history = FieldHistory(
        metadata.field_versions(), previous=previous.history if previous else None
    )
    current = history.usable(v for v in history.versions if v.valid_to_ms is None)
    registry = registry_of(current)
    by_id = {f.id: f for f in current}
    # The parsed registry lives until the next change: out of the cyclic collector's scans.
    # Unfreeze and collect first, once per change, so the cycles of catalogs now dropped are
    # freed instead of kept frozen forever.
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    # The version read before the rows: a save racing with this load makes the next call
    # see a newer version and load again, never keep stale rows under a new version.
    return Catalog(
        version=version,
        registry=registry,
        by_id=by_id,
        history=history,
        base_engine=previous.latest_engine() if previous else None,
    )
