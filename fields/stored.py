"""Between the field registry and the metadata database: validated fields as rows and back,
and the registry as it was at any instant (from the stored versions)."""

from __future__ import annotations

import bisect
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Final, Generic, TypeVar

import orjson

from fields.registry import Field, FieldRegistry, FieldValidationError, parse_fields
from storage.metadata import FieldVersion, StoredField

log = logging.getLogger(__name__)

#: Registries (one per distinct set of versions valid together) kept parsed at once.
CACHED_SETS: Final = 16
#: Version sets (one per span between two consecutive version boundaries) kept at once.
CACHED_SPANS: Final = 256
#: Fields just stored by this process kept parsed for the next history (``to_stored``).
CACHED_STORED: Final = 200_000

VersionSet = tuple[tuple[str, int], ...]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LruCache(Generic[K, V]):
    """A small thread-safe least-recently-used map. ``get`` builds a missing value outside
    the lock, for values cheap enough that two threads building one at once is harmless."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K, build: Callable[[], V]) -> V:
        """The value under ``key``, built by ``build`` and kept when missing."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = build()
        self.put(key, value)
        return value

    def put(self, key: K, value: V) -> None:
        """Keep ``value`` under ``key`` (the least recently used item goes when full)."""
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        """Forget every value."""
        with self._lock:
            self._items.clear()

    def peek(self, key: K) -> V | None:
        """The value under ``key`` if kept, without building one."""
        with self._lock:
            return self._items.get(key)


#: Fields this process just stored, by their stored feature text, so that the next
#: ``FieldHistory`` takes them as parsed instead of validating and projecting them again
#: (a town's import would otherwise be parsed twice before its first coverage answer).
_just_stored: LruCache[str, Field] = LruCache(CACHED_STORED)


def forget_stored() -> None:
    """Forget the fields ``to_stored`` remembered (a benchmark's cold start)."""
    _just_stored.clear()


def to_stored(fields: Iterable[Field]) -> list[StoredField]:
    """Validated fields as the metadata database keeps them (GeoJSON Feature text); each
    is remembered as already parsed for the histories that will read it back."""
    out = []
    for f in fields:
        text = orjson.dumps(f.to_feature()).decode()
        _just_stored.put(text, f)
        out.append(StoredField(f.id, f.kind, f.coop, f.owner, text))
    return out


def stored_registry(rows: Sequence[StoredField]) -> FieldRegistry:
    """The registry rebuilt from stored features (they were valid when stored)."""
    doc = {"type": "FeatureCollection", "features": [orjson.loads(r.feature) for r in rows]}
    return parse_fields(doc, source="metadata database")


def registry_of(fields: Iterable[Field]) -> FieldRegistry | None:
    """A registry of already parsed fields (sorted by id), or ``None`` when there are none."""
    ordered = sorted(fields, key=lambda f: f.id)
    if not ordered:
        return None
    return FieldRegistry(
        fields=tuple(f for f in ordered if f.kind == "field"),
        no_spray=tuple(f for f in ordered if f.kind == "no_spray"),
    )


class UnusableFieldError(ValueError):
    """A stored version of a field cannot be used any more (it no longer passes validation:
    stored under older rules, or written around the API); the message says why and what to do."""

    def __init__(self, field_id: str, seq: int, reason: str) -> None:
        self.field_id = field_id
        self.seq = seq
        self.reason = reason
        super().__init__(
            f"field {field_id!r} (version {seq}) is stored with an outline that cannot be "
            f"used: {reason}. It is left out of listings, coverage and flight summaries; its "
            "cooperative or an operator redraws it (PUT) or deletes it (DELETE)"
        )


class FieldHistory:
    """Every stored version of every field, each parsed once; the registry valid at any
    instant is assembled from them and cached per distinct set of versions, so a year of
    flights over a registry that changed twice costs three registries, not one per flight.
    Thread-safe.

    Given the ``previous`` history (of an earlier read of the same database), every version
    stored with the same feature text keeps its parsed ``Field``, the very same object: a
    change of one field re-parses one field, and engines and overlap caches keyed by
    ``Field`` (one object per version id) reuse what they computed for the others."""

    def __init__(
        self, versions: Sequence[FieldVersion], previous: FieldHistory | None = None
    ) -> None:
        self.versions: tuple[FieldVersion, ...] = tuple(versions)
        self._by_id: dict[str, list[FieldVersion]] = {}
        for v in self.versions:
            self._by_id.setdefault(v.id, []).append(v)
        self._by_key = {(v.id, v.seq): v for v in self.versions}
        self._parsed: dict[tuple[str, int], Field] = {}
        if previous is not None:
            for key, f in previous._parsed.items():
                now, then = self._by_key.get(key), previous._by_key.get(key)
                if now is not None and then is not None and now.field == then.field:
                    self._parsed[key] = f
        self._unusable: dict[tuple[str, int], str] = {}  # why a version cannot be used
        self._sets: OrderedDict[VersionSet, FieldRegistry | None] = OrderedDict()
        self._changes: tuple[tuple[int, int], ...] | None = None
        # Every instant a version starts or ends: between two of them the set of valid
        # versions cannot change, so ``key_at`` scans the versions once per span.
        ends = {b for v in self.versions for b in (v.valid_from_ms, v.valid_to_ms)}
        self._bounds: tuple[int, ...] = tuple(sorted(b for b in ends if b is not None))
        self._spans: LruCache[int, VersionSet] = LruCache(CACHED_SPANS)
        self._lock = threading.Lock()

    def of(self, field_id: str) -> list[FieldVersion]:
        """The field's versions, oldest first."""
        return list(self._by_id.get(field_id, ()))

    def version_at(self, field_id: str, ms: int) -> FieldVersion | None:
        """The field's version valid at ``ms``, or None."""
        return next((v for v in self._by_id.get(field_id, ()) if v.valid_at(ms)), None)

    def span_at(self, ms: int) -> int:
        """Which span between version boundaries holds ``ms``: instants of one span share
        one set of valid versions (a cheap cache key for what depends only on that set)."""
        return bisect.bisect_right(self._bounds, ms)

    def key_at(self, ms: int) -> VersionSet:
        """Which versions were valid together at ``ms`` (the cache key of ``registry_at``);
        computed once per span between version boundaries, since a report asks for each of
        thousands of flights."""
        return self._spans.get(
            self.span_at(ms),
            lambda: tuple((v.id, v.seq) for v in self.versions if v.valid_at(ms)),
        )

    def field(self, version: FieldVersion) -> Field:
        """The parsed field of one version; ``UnusableFieldError`` when the stored feature no
        longer passes validation (logged once per history)."""
        key = (version.id, version.seq)
        parsed = self._parsed.get(key)
        if parsed is not None:
            return parsed
        reason = self._unusable.get(key)
        if reason is not None:
            # A fresh error each time: a kept one would hold its traceback's frames (and
            # this history) in a cycle that gc.freeze() never collects.
            raise UnusableFieldError(version.id, version.seq, reason)
        stored = _just_stored.peek(version.field.feature)
        if stored is not None and stored.id == version.id:
            self._parsed[key] = stored
            return stored
        try:
            feature = orjson.loads(version.field.feature)
            one = parse_fields(feature, source=f"field {version.id} version {version.seq}")
        except (orjson.JSONDecodeError, FieldValidationError) as exc:
            problems = getattr(exc, "problems", None) or (str(exc),)
            failed = UnusableFieldError(version.id, version.seq, "; ".join(problems))
            self._unusable[key] = failed.reason
            log.warning(
                "field_version_unusable field=%s version=%d reason=%r",
                version.id,
                version.seq,
                failed.reason,
            )
            raise failed from exc
        parsed = next(iter((*one.fields, *one.no_spray)))
        self._parsed[key] = parsed
        return parsed

    def usable(self, versions: Iterable[FieldVersion]) -> list[Field]:
        """The parsed fields of ``versions``, leaving out (logged) those that cannot be used."""
        out = []
        for version in versions:
            try:
                out.append(self.field(version))
            except UnusableFieldError:
                continue
        return out

    def registry_at(self, ms: int) -> tuple[VersionSet, FieldRegistry | None]:
        """The registry as it was at ``ms`` (``None`` when no field was registered then),
        with its version set."""
        key = self.key_at(ms)
        with self._lock:
            if key in self._sets:
                self._sets.move_to_end(key)
                return key, self._sets[key]
            registry = registry_of(self.usable(self._by_key[k] for k in key))
            self._sets[key] = registry
            while len(self._sets) > CACHED_SETS:
                self._sets.popitem(last=False)
            return key, registry

    def versions_since(self, ms: int | None) -> list[Field]:
        """The parsed fields (kind ``field``) of every version still valid at or after
        ``ms`` (``None``: every version ever), deleted and replaced ones included; versions
        that no longer validate are left out (logged), as everywhere else."""
        return self.usable(
            v
            for v in self.versions
            if v.field.kind == "field"
            and (ms is None or v.valid_to_ms is None or ms < v.valid_to_ms)
        )

    def all_fields(self) -> list[Field]:
        """The parsed fields (kind ``field``) of every version ever."""
        return self.versions_since(None)

    def changes_summaries(self, version: FieldVersion) -> bool:
        """Whether ``version`` changed what flight summaries depend on, compared with the
        version before it: the outline, the kind, or the cooperative of a no-spray zone
        (whom it binds) or of a field under a cooperative's zone (which zones apply).
        A rename or a new owner does not (reports and audiences read those from the
        version valid at the flight's start when they answer). A first version never
        does: a new id is summarized into flights from then on (docs/api.md)."""
        before = [v for v in self.of(version.id) if v.seq < version.seq]
        if not before or version.valid_from_ms is None:
            return False
        prev = before[-1]
        if prev.valid_to_ms != version.valid_from_ms or prev.field.kind != version.field.kind:
            return True
        if _geometry(prev) != _geometry(version):
            return True
        if prev.field.coop == version.field.coop:
            return False
        if version.field.kind == "no_spray":
            return True
        coops = {prev.field.coop, version.field.coop}
        shape = self.field(version).geometry
        return any(
            z.field.kind == "no_spray"
            and z.field.coop in coops
            and self.field(z).geometry.intersects(shape)
            for z in self.versions
        )

    def summary_changes(self) -> tuple[tuple[int, int], ...]:
        """(valid_from_ms, recorded_ms) of every version that ``changes_summaries``: a flight
        that started at or after ``valid_from_ms`` and was summarized before
        ``recorded_ms`` was judged against other outlines (computed once)."""
        with self._lock:
            found = self._changes
        if found is None:
            found = tuple(
                (v.valid_from_ms, v.recorded_ms)
                for v in self.versions
                if v.valid_from_ms is not None and self.changes_summaries(v)
            )
            with self._lock:
                self._changes = found
        return found

    def outdated(self, start_ms: int, computed_ms: int) -> bool:
        """Whether a flight that started at ``start_ms``, summarized at ``computed_ms``, was
        summarized before a change (of any field or zone) that took effect by its start
        was recorded: the flight watcher summarizes it again (docs/flights.md)."""
        return any(
            valid_from <= start_ms and computed_ms < recorded
            for valid_from, recorded in self.summary_changes()
        )


def _geometry(version: FieldVersion) -> object:
    """The stored GeoJSON geometry of a version (as parsed JSON, compared exactly)."""
    doc = orjson.loads(version.field.feature)
    return doc.get("geometry") if isinstance(doc, dict) else None
