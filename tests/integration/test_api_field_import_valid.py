"""Importing only the valid features of a document (``POST /api/v1/fields?valid_only=true``)
and the codes of every refusal, over real HTTP against both layouts: the features without a
problem are stored, every refused one is listed with its reasons (English text, code and
parameters) by the same rules as a whole import; without the flag a document with any
problem stores nothing and its answer carries the same codes beside its unchanged detail."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.integration.api_world import HP, YT, World
from tests.integration.test_api_field_input import call, square, stored

pytestmark = pytest.mark.integration


def _ids() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    return f"v-ok-{tag}", f"v-bad-{tag}"


def _collection(*features: Any) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


def _post(world: World, who: str, body: Any, **params: str) -> httpx.Response:
    return call(world, "POST", "/fields", who, json=body, params=params)


def test_a_document_with_problems_stores_nothing_and_codes_each_problem(world: World) -> None:
    ok, _ = _ids()
    body = _collection(square(ok), square("bad id!"), {"type": "Feature"})
    response = _post(world, "coop_hp", body)
    assert response.status_code == 422
    answer = response.json()
    texts = answer["detail"]["problems"]
    assert answer["detail"]["message"] == "the GeoJSON has problems"
    coded = answer["coded_problems"]
    assert [p["text"] for p in coded] == texts
    assert [(p["index"], p["id"], p["code"]) for p in coded] == [
        (1, "bad id!", "id_invalid"),
        (2, None, "no_id"),
        (2, None, "no_geometry"),
    ]
    assert coded[0]["params"] == {"id": "'bad id!'"}
    assert stored(world, ok) is None


def test_valid_only_stores_the_valid_features_and_lists_the_refused_ones(world: World) -> None:
    ok, bad = _ids()
    body = _collection(square(ok), square(bad, owner="a b"), {"type": "Feature"})
    response = _post(world, "coop_hp", body, valid_only="true")
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["imported"] == 1
    assert [f["id"] for f in answer["fields"]] == [ok]
    assert [(p["index"], p["code"]) for p in answer["refused"]] == [
        (1, "property_id_invalid"),
        (2, "no_id"),
        (2, "no_geometry"),
    ]
    assert answer["refused"][0]["params"] == {"key": "owner", "value": "'a b'"}
    assert answer["refused"][0]["text"].startswith(f"feature 1 ({bad}): property 'owner'")
    assert stored(world, ok) is not None
    assert stored(world, bad) is None


def test_valid_only_applies_the_ownership_and_overlap_rules_feature_by_feature(
    world: World,
) -> None:
    """Yên Thọ's file: one plot of its own, one of Hồng Phong's, one taking Hồng Phong's
    id, one drawn over Hồng Phong's field, a commune-wide zone: only the first is stored."""
    mine, foreign = _ids()
    over = f"v-over-{uuid.uuid4().hex[:8]}"
    hp_field = call(world, "GET", "/fields/dt-hp-004", "operator").json()
    drawn_over = {
        "type": "Feature",
        "properties": {"id": over, "owner": "nd-yt-02", "coop": YT},
        "geometry": hp_field["geometry"],
    }
    zone = square(f"v-zone-{uuid.uuid4().hex[:8]}", coop="", kind="no_spray", scope="commune")
    body = _collection(
        square(mine, coop=YT, owner="nd-yt-02"),
        square(foreign, coop=HP),
        square("dt-hp-004", coop=YT, owner="nd-yt-02"),
        drawn_over,
        zone,
    )
    before = call(world, "GET", "/fields/dt-hp-004", "operator").json()
    response = _post(world, "coop_yt", body, valid_only="true")
    assert response.status_code == 201, response.text
    answer = response.json()
    assert [f["id"] for f in answer["fields"]] == [mine]
    refused = {p["index"]: p for p in answer["refused"]}
    codes: dict[int, set[str]] = {}
    for p in answer["refused"]:
        codes.setdefault(p["index"], set()).add(p["code"])
    assert codes == {1: {"foreign"}, 2: {"taken"}, 3: {"overlap"}, 4: {"commune", "foreign"}}
    assert refused[1]["params"] == {"coop": HP, "import_coop": YT}
    assert set(refused[3]["params"]) == {"area_m2", "pct"}
    assert refused[3]["params"]["area_m2"] % 10 == 0  # rounded, as the 409 says it
    assert HP not in refused[2]["text"]  # a taken id names no holder
    assert stored(world, mine) is not None
    assert all(stored(world, f) is None for f in (foreign, over))
    assert call(world, "GET", "/fields/dt-hp-004", "operator").json() == before


def test_valid_only_with_nothing_valid_is_a_422_and_stores_nothing(world: World) -> None:
    _, bad = _ids()
    response = _post(world, "coop_hp", _collection(square(bad, name=5)), valid_only="true")
    assert response.status_code == 422
    answer = response.json()
    assert answer["detail"]["message"].startswith("no feature of the GeoJSON can be imported")
    assert [p["code"] for p in answer["coded_problems"]] == ["text_not_string"]
    assert stored(world, bad) is None


def test_a_document_that_is_no_geojson_of_fields_is_refused_whole_even_valid_only(
    world: World,
) -> None:
    for params in ({}, {"valid_only": "true"}):
        response = _post(world, "coop_hp", {"type": "Point"}, **params)
        assert response.status_code == 422
        (problem,) = response.json()["coded_problems"]
        assert (problem["index"], problem["code"]) == (None, "doc_wrong_type")


def test_the_refusals_of_a_whole_import_carry_codes_beside_their_detail(world: World) -> None:
    ok, _ = _ids()
    foreign = _post(world, "coop_yt", _collection(square(ok, coop=HP)))
    assert foreign.status_code == 422
    assert foreign.json()["detail"]["message"] == f"your key is for cooperative {YT!r}"
    assert [p["code"] for p in foreign.json()["coded_problems"]] == ["foreign"]
    zone = square(ok, coop="", kind="no_spray", scope="commune")
    commune = _post(world, "coop_hp", zone)
    assert commune.status_code == 403
    assert [p["code"] for p in commune.json()["coded_problems"]] == ["commune"]
    hp_field = call(world, "GET", "/fields/dt-hp-004", "operator").json()
    over = {
        "type": "Feature",
        "properties": {"id": ok, "coop": YT},
        "geometry": hp_field["geometry"],
    }
    overlap = _post(world, "coop_yt", over)
    assert overlap.status_code == 409
    assert [p["code"] for p in overlap.json()["coded_problems"]] == ["overlap"]
    assert stored(world, ok) is None


def test_valid_only_is_no_way_round_the_roles(world: World) -> None:
    ok, _ = _ids()
    response = _post(world, "farmer_hp00", _collection(square(ok)), valid_only="true")
    assert response.status_code == 403
    forced = _post(world, "coop_hp", _collection(square(ok)), valid_only="true", force="true")
    assert forced.status_code == 403
    assert stored(world, ok) is None
