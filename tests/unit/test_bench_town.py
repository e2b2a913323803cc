"""The benchmark town (bench/town.py): deterministic, exactly N plots the registry accepts,
no two plots sharing ground, zones of both scopes, documents within the API's limits."""

from __future__ import annotations

import functools

import numpy as np
import shapely

from bench.town import Town, town
from fields.registry import MAX_FEATURES, Field, FieldRegistry, parse_fields


@functools.cache
def small() -> Town:
    return town(1_200, seed=3)


@functools.cache
def parsed() -> FieldRegistry:
    fields: list[Field] = []
    zones: list[Field] = []
    for _coop, doc in small().documents():
        reg = parse_fields(doc)
        fields += reg.fields
        zones += reg.no_spray
    return FieldRegistry(tuple(fields), tuple(zones))


def test_the_same_seed_gives_the_same_town_and_another_seed_another() -> None:
    assert town(300, seed=3).features() == town(300, seed=3).features()
    assert town(300, seed=3).features() != town(300, seed=4).features()


def test_a_town_has_exactly_the_plots_asked_for_and_the_registry_accepts_them_all() -> None:
    assert len(parsed().fields) == 1_200
    assert len(parsed().no_spray) == len(small().zones)


def test_plots_are_003_to_05_ha_some_with_a_pond_cut_out() -> None:
    areas = np.array([f.area_m2 for f in parsed().fields])
    assert areas.min() >= 300.0
    assert areas.max() <= 5_000.0
    assert any(f.geometry.interiors for f in parsed().fields)


def test_no_two_plots_share_ground() -> None:
    shapes = np.array([f.geometry for f in parsed().fields])
    left, right = shapely.STRtree(shapes).query(shapes, predicate="intersects")
    assert (left == right).all()


def test_zones_bind_fields_of_both_scopes() -> None:
    scopes = {z.scope for z in parsed().no_spray}
    assert scopes == {"coop", "commune"}
    shapes = np.array([f.geometry for f in parsed().fields])
    zones = np.array([z.geometry for z in parsed().no_spray])
    _, hit = shapely.STRtree(shapes).query(zones, predicate="intersects")
    assert len(hit) > 0


def test_each_document_is_one_cooperatives_or_the_communes_within_the_limit() -> None:
    docs = list(town(12_000, seed=1).documents())
    assert all(len(doc["features"]) <= MAX_FEATURES for _, doc in docs)
    for coop, doc in docs:
        assert {f["properties"].get("coop") or None for f in doc["features"]} == {coop}


def test_block_local_and_town_coordinates_are_inverses() -> None:
    block = small().blocks[1]
    x, y = block.to_town(np.array([0.0, 100.0, 250.0]), np.array([0.0, 30.0, 90.0]))
    u, v = block.to_local(x, y)
    assert np.allclose(u, [0.0, 100.0, 250.0])
    assert np.allclose(v, [0.0, 30.0, 90.0])
