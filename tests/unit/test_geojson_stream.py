"""Reading a FeatureCollection one feature at a time: the same features as reading it whole,
whatever the chunking, and syntax errors located by line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fields import geojson_stream
from fields.geojson_stream import FeatureStream, UnreadableFileError
from fields.synthetic import collection, feature, rectangle


def features_of(path: Path) -> list[object]:
    return [f for _, f in FeatureStream(path)]


@pytest.fixture(params=[3, 1 << 20], ids=["tiny chunks", "one chunk"])
def chunk(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    size: int = request.param
    monkeypatch.setattr(geojson_stream, "CHUNK_BYTES", size)
    return size


def test_the_features_are_those_of_the_whole_document(tmp_path: Path, chunk: int) -> None:
    doc = collection(*(feature(f"p{k}", rectangle(10, 10, 20 * k, 0)) for k in range(20)))
    doc["name"] = "đông triều"  # a member before or after the features changes nothing
    path = tmp_path / "f.geojson"
    text = json.dumps(doc, indent=2, ensure_ascii=False)
    path.write_text(text, encoding="utf-8")
    assert features_of(path) == json.loads(text)["features"]


def test_members_may_come_in_any_order(tmp_path: Path, chunk: int) -> None:
    path = tmp_path / "f.geojson"
    path.write_text('{"features": [{"type": "Feature"}], "type": "FeatureCollection"}')
    assert features_of(path) == [{"type": "Feature"}]


def test_a_single_feature_is_a_document_of_one(tmp_path: Path, chunk: int) -> None:
    one = feature("p1", rectangle(10, 10))
    path = tmp_path / "f.geojson"
    path.write_text(json.dumps(one))
    assert features_of(path) == [json.loads(json.dumps(one))]


def test_a_syntax_error_names_its_line(tmp_path: Path, chunk: int) -> None:
    path = tmp_path / "f.geojson"
    path.write_text('{"type": "FeatureCollection", "features": [\n{"type": "Feature"},\n{x}\n]}')
    with pytest.raises(UnreadableFileError, match=r"not valid JSON: .* at line 3"):
        features_of(path)


def test_a_number_too_long_to_convert_is_invalid_json_at_its_offset(
    tmp_path: Path, chunk: int
) -> None:
    path = tmp_path / "f.geojson"
    head = '{"type": "FeatureCollection", "features": [\n{"type": "Feature", "n": '
    path.write_text(head + "7" * 5_000 + "}\n]}")
    where = rf"line 2, column 26 \(character {len(head)}\)"
    with pytest.raises(
        UnreadableFileError, match=rf"not valid JSON: a number with more .* {where}"
    ):
        features_of(path)


def test_a_truncated_file_is_unreadable(tmp_path: Path, chunk: int) -> None:
    path = tmp_path / "f.geojson"
    path.write_text('{"type": "FeatureCollection", "features": [{"type": "Feature"}')
    with pytest.raises(UnreadableFileError, match="line 1"):
        features_of(path)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[]", "expected a GeoJSON object"),
        ('{"type": "FeatureCollection", "features": []}', "holds no features"),
        ('{"type": "FeatureCollection"}', "has no 'features' list"),
        ('{"type": "Topology", "features": [{}]}', "top-level type is 'Topology'"),
        ('{"type": "Feature"} {}', "extra data after the GeoJSON object"),
    ],
)
def test_what_is_not_a_feature_collection_is_refused(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "f.geojson"
    path.write_text(text)
    with pytest.raises(UnreadableFileError, match=problem):
        features_of(path)


def test_text_that_is_not_utf8_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "f.geojson"
    path.write_bytes(b'{"type": "FeatureCollection", "features": [{"name": "\xff"}]}')
    with pytest.raises(UnreadableFileError, match="not UTF-8"):
        features_of(path)
