"""The registry at scale: the spatial-index answers equal the brute-force ones, engines are
prepared incrementally (only what a change touches) and cached by registry version, in
this process and across processes sharing one metadata database."""

from __future__ import annotations

import dataclasses
import functools
import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
import shapely.affinity
from hypothesis import given, settings
from hypothesis import strategies as st

import flights.service
from api.catalog import FieldCatalog
from api.overlaps import _cross_pairs
from fields.coverage import CoverageEngine, FieldCoverage, field_targets, zone_applies
from fields.overlaps import overlaps_between, overlaps_within
from fields.registry import Field, FieldRegistry, parse_fields
from fields.stored import FieldHistory, to_stored
from fields.synthetic import DONG_TRIEU, collection, feature, rectangle
from flights.service import Engines, FlightWatcher
from storage.metadata import MetadataDB, StoredField
from storage.records import Sample
from storage.sqlite import SqliteStore

T0_MS = 1_800_000_000_000
HOUR = 3_600_000

box_m = st.tuples(st.floats(0, 300), st.floats(0, 300), st.floats(10, 80), st.floats(10, 80)).map(
    lambda b: rectangle(b[2], b[3], b[0], b[1])
)
coop = st.sampled_from(["htx-a", "htx-b"])


@st.composite
def registries(draw: st.DrawFn) -> FieldRegistry:
    """2-7 rectangular fields of two cooperatives (they may overlap) and 0-4 zones, each
    cooperative-scoped or commune-wide, all within a few hundred metres."""
    fields = [
        feature(f"f{i}", draw(box_m), coop=draw(coop)) for i in range(draw(st.integers(2, 7)))
    ]
    zones = [
        feature(f"z{i}", draw(box_m), kind="no_spray", coop=draw(st.sampled_from(["", "htx-a"])))
        for i in range(draw(st.integers(0, 4)))
    ]
    return parse_fields(collection(*fields, *zones))


def area_between(a: Any, b: Any) -> float:
    """Area of the symmetric difference of two geometries (0 when they are the same)."""
    return float(shapely.symmetric_difference(a, b).area)


# --- indexed answers equal brute-force answers -----------------------------------------


@settings(max_examples=40, deadline=None)
@given(registries())
def test_each_target_is_the_field_minus_every_zone_that_binds_it(registry: FieldRegistry) -> None:
    engine = CoverageEngine(registry)
    for f in registry.fields:
        binding = [z.geometry for z in registry.no_spray if zone_applies(z, f.coop)]
        brute = f.metric
        if binding:
            brute = shapely.difference(f.metric, f.plane.to_plane(shapely.union_all(binding)))
        assert area_between(engine.fields[f.id].target, brute) < 1e-3


@settings(max_examples=40, deadline=None)
@given(registries(), box_m)
def test_off_target_and_no_spray_equal_those_against_every_other_field_and_zone(
    registry: FieldRegistry, sprayed: Any
) -> None:
    engine = CoverageEngine(registry)
    for f in registry.fields:
        pf = engine.fields[f.id]
        footprint = f.plane.to_plane(DONG_TRIEU.to_wgs84(sprayed))
        state = FieldCoverage(f.id, footprint, shapely.Polygon(), pf.grid.zeros(), pf.grid.zeros())
        found = engine.geometry(state)
        others = field_targets(
            [g for g in registry.fields if g is not f], registry.no_spray, f.plane
        )
        zones = [z.geometry for z in registry.no_spray if zone_applies(z, f.coop)]
        forbidden = f.plane.to_plane(shapely.union_all(zones)) if zones else shapely.Polygon()
        off = shapely.difference(shapely.difference(footprint, pf.target), others)
        no_spray = shapely.intersection(footprint, shapely.difference(forbidden, others))
        assert area_between(found.off_target, off) < 1e-2
        assert area_between(found.no_spray, no_spray) < 1e-2


@settings(max_examples=40, deadline=None)
@given(registries())
def test_indexed_overlaps_are_every_pair_sharing_area(registry: FieldRegistry) -> None:
    fields = registry.fields
    found = {(o.a.id, o.b.id): o.area_m2 for o in overlaps_between(fields, fields)}
    brute = {}
    for a in fields:
        for b in fields:
            area = float(shapely.intersection(a.metric, a.plane.to_plane(b.geometry)).area)
            if a is not b and area > 1e-9:
                brute[a.id, b.id] = area
    assert found.keys() == brute.keys()
    for key, area in brute.items():
        assert found[key] == pytest.approx(area, rel=1e-6, abs=1e-6)


@settings(max_examples=25, deadline=None)
@given(registries(), registries())
def test_foreign_overlaps_found_incrementally_equal_those_found_at_once(
    first: FieldRegistry, later: FieldRegistry
) -> None:
    again = [dataclasses.replace(f, id=f"n{f.id}") for f in later.fields]
    everything = [*first.fields, *again]
    _cross_pairs(first.fields)
    incremental = {(o.a.id, o.b.id) for o in _cross_pairs(everything)}
    at_once = {
        (o.a.id, o.b.id) for o in overlaps_within(everything) if o.across_coops and o.significant
    }
    assert {tuple(sorted(p)) for p in incremental} == {tuple(sorted(p)) for p in at_once}


# --- incremental preparation --------------------------------------------------------------


@functools.cache
def town() -> FieldRegistry:
    """Six 40 x 25 m plots in a row 1 m apart, a pond zone over plots 1 and 2 (htx-a's)
    and a commune-wide canal over plot 4."""
    plots = [
        feature(f"p{i}", rectangle(40, 25, i * 41.0, 0), coop="htx-a" if i < 3 else "htx-b")
        for i in range(6)
    ]
    pond = feature("pond", rectangle(20, 10, 70, 5), kind="no_spray", coop="htx-a")
    canal = feature("canal", rectangle(10, 40, 170, -5), kind="no_spray")
    return parse_fields(collection(*plots, pond, canal))


def moved(f: Field, dx: float) -> Field:
    """The same field or zone shifted ``dx`` metres east (a redraw: a new version)."""
    shape = shapely.affinity.translate(DONG_TRIEU.to_plane(f.geometry), dx)
    doc = feature(f.id, shape, coop=f.coop)
    if f.kind == "no_spray":
        doc["properties"]["kind"] = "no_spray"
    parsed = parse_fields(doc)
    return (*parsed.fields, *parsed.no_spray)[0]


def assert_same_engine(a: CoverageEngine, b: CoverageEngine) -> None:
    assert list(a.fields) == list(b.fields)
    for fid, pa in a.fields.items():
        pb = b.fields[fid]
        assert pa.field is pb.field
        assert pa.grid == pb.grid
        assert area_between(pa.target, pb.target) < 1e-9
        assert (pa.inside == pb.inside).all()


def changes() -> dict[str, tuple[FieldRegistry, int]]:
    """Registries after one change each, with how many fields the change binds anew."""
    base = town()
    fields, zones = list(base.fields), list(base.no_spray)
    extra = parse_fields(feature("p9", rectangle(40, 25, 0, 40), coop="htx-a")).fields[0]
    return {
        "edit a field": (dataclasses.replace(base, fields=(moved(fields[0], 0.5), *fields[1:])), 1),
        "add a field": (dataclasses.replace(base, fields=(*fields, extra)), 1),
        "delete a field": (dataclasses.replace(base, fields=tuple(fields[1:])), 0),
        # the pond moves 5 m east: it still binds plots 1 and 2, whose targets change
        "edit a zone": (dataclasses.replace(base, no_spray=(moved(zones[0], 5.0), zones[1])), 2),
        "delete a zone": (dataclasses.replace(base, no_spray=(zones[1],)), 2),
    }


@pytest.mark.parametrize("change", list(changes()))
def test_an_engine_built_on_the_previous_equals_a_fresh_one(change: str) -> None:
    before = CoverageEngine(town())
    after, _ = changes()[change]
    assert_same_engine(CoverageEngine(after, previous=before), CoverageEngine(after))


@pytest.mark.parametrize("change", list(changes()))
def test_a_change_prepares_only_the_fields_it_touches(change: str) -> None:
    before = CoverageEngine(town())
    after, touched = changes()[change]
    engine = CoverageEngine(after, previous=before)
    assert engine.stats.prepared == touched
    assert engine.stats.reused == len(after.fields) - touched


def test_engines_with_other_grid_parameters_prepare_everything_again() -> None:
    before = CoverageEngine(town())
    finer = dataclasses.replace(before.params, cell_m=0.25)
    assert CoverageEngine(town(), finer, previous=before).stats.reused == 0
    wider = dataclasses.replace(before.params, default_swath_m=7.0)
    assert CoverageEngine(town(), wider, previous=before).stats.reused == len(town().fields)


@pytest.mark.parametrize("enabled", [True, False])
def test_preparing_an_engine_leaves_the_garbage_collector_as_it_found_it(enabled: bool) -> None:
    # preparation pauses the cyclic collector (its full passes over a big heap made
    # preparation grow faster than the number of plots) and must hand it back unchanged
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        CoverageEngine(town())
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()


# --- caches by registry version -----------------------------------------------------------


def stored(*fields: Field) -> list[StoredField]:
    return to_stored(fields)


def test_a_new_history_keeps_the_parsed_fields_of_unchanged_versions(
    metadata: MetadataDB,
) -> None:
    metadata.save_fields(stored(*town().fields), at_ms=T0_MS)
    first = FieldHistory(metadata.field_versions())
    _, before = first.registry_at(T0_MS)
    metadata.save_fields(stored(moved(town().fields[0], 0.5)), at_ms=T0_MS + 1)
    second = FieldHistory(metadata.field_versions(), previous=first)
    _, after = second.registry_at(T0_MS + 1)
    assert before is not None
    assert after is not None
    kept = {f.id for f in after.fields} & {f.id for f in before.fields if f in set(after.fields)}
    assert kept == {f.id for f in town().fields} - {"p0"}


def test_the_summarizers_engines_are_the_same_object_until_the_fields_change(
    metadata: MetadataDB,
) -> None:
    metadata.save_fields(stored(*town().fields), at_ms=T0_MS)
    first = Engines.current(metadata)
    engine = first.for_swath(6.0, T0_MS + 1)
    assert Engines.current(metadata) is first
    assert first.for_swath(6.0, T0_MS + 1) is engine
    metadata.save_fields(stored(moved(town().fields[0], 0.5)), at_ms=T0_MS + 10)
    second = Engines.current(metadata)
    assert second is not first
    rebuilt = second.for_swath(6.0, T0_MS + 20)
    assert rebuilt is not None
    assert (rebuilt.stats.prepared, rebuilt.stats.reused) == (1, len(town().fields) - 1)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "telemetry.db")
    yield s
    s.close()


def spraying(start_ms: int, seconds: int) -> list[Sample]:
    """A drone spraying east over the plots at 5 m/s, 1 Hz."""
    x = np.arange(seconds) * 5.0
    lon, lat = DONG_TRIEU.inverse(x, np.full(seconds, 12.0))
    return [
        Sample(
            "htx-a",
            "d1",
            start_ms + 1000 * i,
            float(lat[i]),
            float(lon[i]),
            spraying=True,
            swath_m=6.0,
            flow_lpm=5.0,
        )
        for i in range(seconds)
    ]


def test_summarizer_rounds_do_not_rebuild_engines_when_nothing_changed(
    store: SqliteStore, metadata: MetadataDB, monkeypatch: pytest.MonkeyPatch
) -> None:
    metadata.save_fields(stored(*town().fields), at_ms=T0_MS - HOUR)
    built: list[CoverageEngine] = []
    real = CoverageEngine

    def counting(*args: Any, **kwargs: Any) -> CoverageEngine:
        built.append(real(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(flights.service, "CoverageEngine", counting)
    watcher = FlightWatcher(settle_s=30)
    for k in range(3):
        store.write_samples(spraying(T0_MS + k * HOUR, 60))
        outcomes = watcher.poll(store, metadata, T0_MS + (k + 1) * HOUR)
        assert sum(len(o.saved) for o in outcomes) == 1
    assert len(built) == 1


def test_a_second_catalog_over_the_same_database_sees_a_change_made_through_the_first(
    tmp_path: Path,
) -> None:
    one, two = MetadataDB(tmp_path / "shared.db"), MetadataDB(tmp_path / "shared.db")
    try:
        one.save_fields(stored(*town().fields), at_ms=T0_MS)
        first, second = FieldCatalog(one), FieldCatalog(two)
        assert set(second.current().by_id) == set(first.current().by_id)
        extra = parse_fields(feature("p9", rectangle(40, 25, 0, 40), coop="htx-a")).fields[0]
        one.save_fields(stored(extra), at_ms=T0_MS + 1)
        assert "p9" in first.current().by_id
        assert "p9" in second.current().by_id
    finally:
        one.close()
        two.close()


def test_a_new_catalog_prepares_only_the_changed_field(metadata: MetadataDB) -> None:
    metadata.save_fields(stored(*town().fields), at_ms=T0_MS)
    catalog = FieldCatalog(metadata)
    before = catalog.current().engine_at(T0_MS + 1)
    assert before is not None
    assert before.stats.prepared == len(town().fields)
    metadata.save_fields(stored(moved(town().fields[0], 0.5)), at_ms=T0_MS + 10)
    after = catalog.current().engine_at(T0_MS + 20)
    assert after is not None
    assert (after.stats.prepared, after.stats.reused) == (1, len(town().fields) - 1)
