"""Every problem of a GeoJSON document of fields has a code and parameters beside its English
line, so the web app says it in Vietnamese: each code the registry and the import rules can
give has a message in every language, and each message's placeholders are parameters of that
code's problems."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Final, get_args

import pytest

from fields.importing import Rule
from fields.registry import (
    MAX_FEATURES,
    FieldProblem,
    FieldValidationError,
    load_fields,
    parse_each,
    parse_feature,
    parse_fields,
)
from web.i18n import LANGS, catalogue

ROOT: Final = Path(__file__).resolve().parents[2]
LON, LAT = 106.60, 21.10
RING: Final = [[LON, LAT], [LON + 0.001, LAT], [LON + 0.001, LAT + 0.001], [LON, LAT + 0.001]]
SQUARE: Final = {"type": "Polygon", "coordinates": [[*RING, RING[0]]]}


def feature(props: dict[str, Any] | None = None, geometry: Any = SQUARE) -> dict[str, Any]:
    return {"type": "Feature", "properties": {"id": "f-1", **(props or {})}, "geometry": geometry}


def polygon(*ring: list[float]) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [list(ring)]}


#: A document (or one feature) giving each code, and the parameters that problem has.
SAMPLES: Final[dict[str, tuple[Any, dict[str, Any]]]] = {
    "doc_not_object": ([], {}),
    "doc_no_features_list": ({"type": "FeatureCollection"}, {}),
    "doc_no_features": ({"type": "FeatureCollection", "features": []}, {}),
    "doc_wrong_type": ({"type": "Polygon"}, {"type": "'Polygon'"}),
    "doc_too_many_features": (
        {"type": "FeatureCollection", "features": [{}] * (MAX_FEATURES + 1)},
        {"n": MAX_FEATURES + 1, "max": MAX_FEATURES},
    ),
    "not_feature": ({"type": "FeatureCollection", "features": [{"type": "Point"}]}, {}),
    "properties_not_object": ({"type": "Feature", "properties": [1], "geometry": SQUARE}, {}),
    "property_name_not_unicode": (feature({"\ud800": 1}), {}),
    "property_not_unicode": (feature({"note": "\ud800"}), {"where": "'note'"}),
    "property_key_not_unicode": (feature({"note": {"\ud800": 1}}), {"where": "'note'"}),
    "property_int_too_big": (feature({"n": 2**70}), {"where": "'n'", "bits": 71}),
    "unknown_kind": (feature({"kind": "no-spray"}), {"kind": "'no-spray'"}),
    "no_id": ({"type": "Feature", "properties": {}, "geometry": SQUARE}, {}),
    "id_type": (feature({"id": 1.5}), {"value": "1.5"}),
    "id_invalid": (feature({"id": "bad id!"}), {"id": "'bad id!'"}),
    "scope_not_zone": (feature({"scope": "coop"}), {}),
    "scope_unknown": (feature({"kind": "no_spray", "scope": "x"}), {"scope": "'x'"}),
    "scope_commune_with_coop": (
        feature({"kind": "no_spray", "scope": "commune", "coop": "htx-1"}),
        {"coop": "htx-1"},
    ),
    "scope_coop_without_coop": (feature({"kind": "no_spray", "scope": "coop"}), {}),
    "text_not_string": (feature({"name": 5}), {"key": "name", "value": "5"}),
    "property_id_invalid": (feature({"owner": "a b"}), {"key": "owner", "value": "'a b'"}),
    "text_too_long": (feature({"crop": "x" * 201}), {"key": "crop", "n": 201, "max": 200}),
    "properties_too_deep": (feature({"d": [[[[[[[[[1]]]]]]]]]}), {"max": 8}),
    "properties_too_big": (feature({"big": "x" * 17_000}), {"bytes": 17_010, "max": 16_384}),
    "too_many_positions": (
        feature(geometry=polygon(*([[LON, LAT]] * 20_001))),
        {"n": 20_001, "max": 20_000},
    ),
    "no_geometry": (feature(geometry=None), {}),
    "geometry_type": (feature(geometry={"type": "Point", "coordinates": [LON, LAT]}), {}),
    "no_polygons": (feature(geometry={"type": "MultiPolygon", "coordinates": []}), {}),
    "no_rings": (feature(geometry={"type": "Polygon", "coordinates": []}), {}),
    "ring_not_list": (feature(geometry={"type": "Polygon", "coordinates": [5]}), {"ring": 0}),
    "vertex_not_pair": (
        feature(geometry=polygon([LON], *RING)),
        {"ring": 0, "vertex": 0, "value": f"[{LON}]"},
    ),
    "vertex_not_finite": (
        feature(geometry=polygon([float("nan"), LAT], *RING)),
        {"ring": 0, "vertex": 0, "value": f"[nan, {LAT}]"},
    ),
    "vertex_swapped": (
        feature(geometry=polygon(*[[lat, lon] for lon, lat in RING])),
        {"ring": 0, "vertex": 0, "position": f"[{LAT}, {LON}]", "fixed": f"[{LON}, {LAT}]"},
    ),
    "vertex_maybe_swapped": (
        feature(geometry=polygon([10.0, 120.0], *RING)),
        {"ring": 0, "vertex": 0, "position": "[10.0, 120.0]"},
    ),
    "vertex_out_of_range": (
        feature(geometry=polygon([200.0, 100.0], *RING)),
        {"ring": 0, "vertex": 0, "position": "[200.0, 100.0]"},
    ),
    "ring_not_closed": (
        feature(geometry=polygon(*RING)),
        {"ring": 0, "first": f"[{LON}, {LAT}]", "last": f"[{LON}, {LAT + 0.001}]"},
    ),
    "ring_too_short": (feature(geometry=polygon(RING[0], RING[1], RING[0])), {"ring": 0, "n": 3}),
    "invalid_geometry": (
        feature(geometry=polygon(RING[0], RING[2], RING[1], RING[3], RING[0])),
        {},
    ),
    "antimeridian": (
        feature(geometry=polygon([179.99, 0.0], [-179.99, 0.0], [-179.99, 0.01], [179.99, 0.0])),
        {"start": "[179.99, 0.0]", "end": "[-179.99, 0.0]"},
    ),
    "area_too_small": (
        feature(geometry=polygon([LON, LAT], [LON + 1e-5, LAT], [LON, LAT + 1e-5], [LON, LAT])),
        {"min": 10.0},
    ),
    "area_too_big": (
        feature(
            geometry=polygon([LON, LAT], [LON + 0.09, LAT], [LON + 0.09, LAT + 0.09], [LON, LAT])
        ),
        {"max": 500.0},
    ),
    "extent_too_big": (
        feature(
            {"kind": "no_spray"},
            polygon([LON, LAT], [LON + 0.2, LAT], [LON + 0.2, LAT + 1e-4], [LON, LAT]),
        ),
        {"width": 0.2, "max": 0.1},
    ),
    "duplicate_id": (
        {"type": "FeatureCollection", "features": [feature(), feature()]},
        {"first": 0},
    ),
}


def _problem(doc: Any, code: str) -> tuple[FieldProblem, tuple[str, ...]]:
    """The problem with ``code`` of ``doc``, and every English line of it."""
    with pytest.raises(FieldValidationError) as info:
        parse_fields(doc, source="test")
    found = [p for p in info.value.coded if p.code == code]
    assert found, info.value.coded
    return found[0], info.value.problems


@pytest.mark.parametrize("code", list(SAMPLES))
def test_each_problem_has_its_code_and_parameters_beside_the_same_english_line(code: str) -> None:
    doc, params = SAMPLES[code]
    problem, lines = _problem(doc, code)
    assert problem.text in lines
    assert {k: problem.params[k] for k in params} == params
    for lang in LANGS:
        wanted = set(re.findall(r"\{(\w+)\}", catalogue(lang)[f"problem_{code}"]))
        assert wanted <= set(problem.params), (lang, wanted, problem.params)


def test_a_problem_names_its_feature_by_index_and_id() -> None:
    doc = {
        "type": "FeatureCollection",
        "features": [feature({"id": "ok"}), feature({"id": "bad id!"}), {"type": "Feature"}],
    }
    with pytest.raises(FieldValidationError) as info:
        parse_fields(doc)
    coded = [(p.index, p.feature_id, p.code) for p in info.value.coded]
    assert coded == [(1, "bad id!", "id_invalid"), (2, None, "no_id"), (2, None, "no_geometry")]
    assert info.value.problems[0].startswith(
        "feature 1 (bad id!): 'id' 'bad id!' is not a valid id"
    )


def test_a_problem_inside_a_multipolygon_names_its_polygon_and_ring() -> None:
    hole = [[LON + 2e-4, LAT + 2e-4], [LON + 3e-4, LAT + 2e-4], [LON + 3e-4, LAT + 3e-4]]
    geometry = {
        "type": "MultiPolygon",
        "coordinates": [[[*RING, RING[0]]], [[*RING, RING[0]], hole]],
    }
    problem, _ = _problem(feature(geometry=geometry), "ring_not_closed")
    assert (problem.params["polygon"], problem.params["ring"]) == (1, 1)
    assert problem.text.startswith("feature 0 (f-1) polygon 1 hole 1: ring not closed")


def test_parse_each_keeps_the_valid_features_and_lists_the_others() -> None:
    doc = {
        "type": "FeatureCollection",
        "features": [feature({"id": "a"}), feature({"id": "b c"}), feature({"id": "a"})],
    }
    parsed, problems, _ = parse_each(doc)
    assert [(i, f.id) for i, f in parsed] == [(0, "a")]
    assert [(p.index, p.code) for p in problems] == [(1, "id_invalid"), (2, "duplicate_id")]


def test_a_streamed_feature_gives_coded_problems_too() -> None:
    f, problems, _ = parse_feature(7, {"type": "Feature", "properties": {}, "geometry": SQUARE})
    assert f is None
    assert [(p.index, p.code, p.text) for p in problems] == [
        (7, "no_id", "feature 7: no 'id' property")
    ]


def test_a_file_that_cannot_be_read_is_one_problem_of_the_document(tmp_path: Path) -> None:
    bad = tmp_path / "bad.geojson"
    bad.write_text("{", encoding="utf-8")
    with pytest.raises(FieldValidationError) as info:
        load_fields(bad)
    (problem,) = info.value.coded
    assert (problem.code, problem.index) == ("doc_not_json", None)
    assert problem.params["reason"]


def _codes_in(path: Path) -> set[str]:
    """The codes a module's problems may carry, read from its source."""
    src = path.read_text(encoding="utf-8")
    codes = set(
        re.findall(
            r'(?:problem\(|document_problem\(|return \(|^\s*\()\s*"([a-z][a-z_]*)",', src, re.M
        )
    )
    return codes | set(re.findall(r'^\s+"([a-z]+_[a-z_]+)",\n\s+f?"', src, re.M))


def test_every_code_has_a_message_in_every_language() -> None:
    codes = _codes_in(ROOT / "fields" / "registry.py")
    codes |= _codes_in(ROOT / "api" / "routes" / "fields.py")
    codes |= set(get_args(Rule))  # the import rules' problems carry their rule as code
    assert {"no_id", "overlap", "taken", "not_storable", "doc_not_json"} <= codes
    assert set(SAMPLES) <= codes
    for lang in LANGS:
        messages = catalogue(lang)
        assert {c for c in codes if f"problem_{c}" not in messages} == set(), lang
