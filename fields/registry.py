"""The field registry: GeoJSON (RFC 7946, WGS84) in, validated frozen ``Field`` records out.

Every problem in a file is collected, one line per feature with the feature's index and id,
so a user fixes the whole file in one go. Repairs (closing rings, ``shapely.make_valid``)
happen only with ``repair=True`` and are listed in ``FieldRegistry.repairs``.
Persistence belongs to the storage package; ``Field.to_feature`` gives it the GeoJSON.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import shapely
from shapely.geometry import MultiPolygon, Polygon, mapping

from fields.projection import LocalPlane, utm_epsg

#: One sào Bắc Bộ (the northern Vietnamese land unit) in square metres.
SAO_M2: Final = 360.0
M2_PER_HA: Final = 10_000.0
MIN_FIELD_M2: Final = 10.0
MAX_FIELD_M2: Final = 500 * M2_PER_HA
#: Longest side of a field's or zone's lon/lat bounding box, in degrees (about 11 km): a
#: 500 ha field is a few km across at most, and anything wider (a district outline, a ring
#: that wraps round the globe) would make the local metric plane meaningless.
MAX_EXTENT_DEG: Final = 0.1
#: Integers a property may hold: what a signed or unsigned 64-bit integer can carry (the
#: metadata database stores features as JSON through orjson, which refuses anything wider).
MIN_PROPERTY_INT: Final = -(2**63)
MAX_PROPERTY_INT: Final = 2**64 - 1

Kind = Literal["field", "no_spray"]
#: Whose fields a no-spray zone applies to: its cooperative's only, or every field.
Scope = Literal["coop", "commune"]
SCOPES: Final = ("coop", "commune")
#: Every kind a feature may declare; a feature without ``kind`` is a field.
KINDS: Final[tuple[Kind, ...]] = ("field", "no_spray")

#: Ids of fields, owners and cooperatives: letters, digits, ``_`` and ``-``, 1 to 64 of
#: them (no ``/``, ``..``, spaces or control characters: ids end up in URLs and file names).
ID_PATTERN: Final = r"[A-Za-z0-9_-]{1,64}"
_ID: Final = re.compile(ID_PATTERN)

# Limits of one document, shared by the CLI and the API (docs/api.md, "Limits").
#: Features in one document.
MAX_FEATURES: Final = 5_000
#: Positions in one feature (all its rings): a 500 ha outline traced every metre fits.
MAX_VERTICES_PER_FEATURE: Final = 20_000
#: Positions in one document.
MAX_VERTICES: Final = 200_000
#: Characters of ``name`` and ``crop``.
MAX_TEXT_CHARS: Final = 200
#: Size of a feature's other properties, as compact JSON (UTF-8 bytes).
MAX_EXTRA_PROPERTIES_BYTES: Final = 16_384
#: Nesting of a feature's other properties (a flat object is depth 1).
MAX_PROPERTY_DEPTH: Final = 8

#: Rough box around Vietnam, for the "did you swap lat and lon?" hint.
_VIETNAM_LON = (102.0, 110.0)
_VIETNAM_LAT = (8.0, 24.0)


@dataclass(frozen=True, slots=True, eq=False)
class Field:
    """One registered plot (or no-spray zone) with its WGS84 and metric geometry."""

    id: str
    kind: Kind
    geometry: Any  # shapely Polygon | MultiPolygon, WGS84 lon/lat
    plane: LocalPlane
    metric: Any  # the same geometry in ``plane`` metres
    name: str = ""
    owner: str = ""
    coop: str = ""
    crop: str = ""
    properties: Mapping[str, Any] = field(default_factory=dict)

    @property
    def area_m2(self) -> float:
        """Area in square metres (ellipsoidal, via the local plane; < 1 ppm error)."""
        return float(self.metric.area)

    @property
    def area_ha(self) -> float:
        """Area in hectares."""
        return self.area_m2 / M2_PER_HA

    @property
    def area_sao(self) -> float:
        """Area in sào Bắc Bộ (360 m²), the unit northern farmers use."""
        return self.area_m2 / SAO_M2

    @property
    def scope(self) -> Scope | None:
        """A no-spray zone's reach: ``coop`` (its cooperative's fields only) or ``commune``
        (every field; a zone without a cooperative); ``None`` for a field."""
        if self.kind != "no_spray":
            return None
        return "coop" if self.coop else "commune"

    @property
    def utm_epsg(self) -> int:
        """EPSG code of the UTM zone of the centroid (32648 for Đông Triều)."""
        c = self.geometry.centroid
        return utm_epsg(float(c.x), float(c.y))

    def to_feature(self) -> dict[str, Any]:
        """The field as a GeoJSON Feature (what the metadata database stores)."""
        props = dict(self.properties)
        props.update(id=self.id, name=self.name, owner=self.owner, coop=self.coop)
        props["crop"] = self.crop
        if self.kind == "no_spray":
            props["kind"] = "no_spray"
            props["scope"] = self.scope
        return {"type": "Feature", "properties": props, "geometry": mapping(self.geometry)}


@dataclass(frozen=True, slots=True)
class FieldRegistry:
    """Fields to spray and no-spray zones, with the repairs applied while loading."""

    fields: tuple[Field, ...]
    no_spray: tuple[Field, ...] = ()
    repairs: tuple[str, ...] = ()

    def get(self, field_id: str) -> Field:
        """The field with this id; ``KeyError`` names the known ids when it is missing."""
        for f in self.fields:
            if f.id == field_id:
                return f
        known = ", ".join(f.id for f in self.fields[:20])
        raise KeyError(f"no field {field_id!r} in the registry (known: {known})")

    def __iter__(self) -> Iterator[Field]:
        return iter(self.fields)

    def __len__(self) -> int:
        return len(self.fields)


#: A problem's parameter: what a page puts into its own sentence.
Param = str | int | float
#: A problem found inside a function: (code, English text, parameters).
_Why = tuple[str, str, dict[str, Param]]


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One problem of a GeoJSON document of fields. ``text`` is the English line the API and
    the CLI list; ``code`` and ``params`` say the same for a page to put in its own language
    (``web/messages``: ``problem_<code>``); ``index`` and ``feature_id`` name the feature
    (``None``: the whole document). Inside a feature, ``params`` may hold ``polygon`` (of a
    MultiPolygon) and ``ring`` (0: the outer ring, n: hole n)."""

    text: str
    code: str
    params: Mapping[str, Param] = field(default_factory=dict)
    index: int | None = None
    feature_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The problem as the API answers it."""
        return {
            "index": self.index,
            "id": self.feature_id,
            "code": self.code,
            "params": dict(self.params),
            "text": self.text,
        }


def document_problem(code: str, text: str, **params: Param) -> FieldProblem:
    """A problem of the whole document (no feature of it can be read)."""
    return FieldProblem(text, code, params)


@dataclass(frozen=True, slots=True)
class _Where:
    """Where in a document a problem is: a feature ("feature 3 (dt-1)"), maybe a part of it."""

    index: int
    feature_id: str | None
    text: str
    params: Mapping[str, Param] = field(default_factory=dict)

    def inside(self, text: str, **params: Param) -> _Where:
        """A part of this place: "feature 3 (dt-1) polygon 1", "... outer ring"."""
        return _Where(self.index, self.feature_id, f"{self.text} {text}", {**self.params, **params})

    def problem(self, code: str, text: str, **params: Param) -> FieldProblem:
        """The problem ``text`` (English, without the place) found here."""
        return FieldProblem(
            f"{self.text}: {text}", code, {**self.params, **params}, self.index, self.feature_id
        )

    def why(self, found: _Why) -> FieldProblem:
        """A problem a helper found here."""
        return self.problem(found[0], found[1], **found[2])


class FieldValidationError(ValueError):
    """The GeoJSON holds problems; ``problems`` lists every one as a line naming its feature,
    ``coded`` the same with their codes and parameters."""

    def __init__(self, source: str, problems: Sequence[FieldProblem]) -> None:
        self.source = source
        self.coded = tuple(problems)
        self.problems = tuple(p.text for p in self.coded)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s):\n{lines}")


def load_fields(path: str | Path, *, repair: bool = False) -> FieldRegistry:
    """Read and validate a GeoJSON file of fields (thin I/O over ``parse_fields``)."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        reason = str(exc.strerror)
        unreadable = document_problem(
            "doc_unreadable", f"cannot read the file: {reason}", reason=reason
        )
        raise FieldValidationError(str(p), [unreadable]) from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        not_json = document_problem("doc_not_json", f"not valid JSON: {exc}", reason=str(exc))
        raise FieldValidationError(str(p), [not_json]) from exc
    except RecursionError as exc:
        too_deep = document_problem(
            "doc_too_deep",
            "JSON nested too deeply to read; GeoJSON of fields needs fewer than 10 levels",
        )
        raise FieldValidationError(str(p), [too_deep]) from exc
    return parse_fields(doc, repair=repair, source=str(p))


def parse_fields(doc: Any, *, repair: bool = False, source: str = "<geojson>") -> FieldRegistry:
    """Validate a GeoJSON Feature or FeatureCollection of Polygon/MultiPolygon fields.

    Documents over the limits above are refused whole, naming the limit, before any
    geometry is built.
    """
    parsed, problems, repairs = parse_each(doc, repair=repair, source=source)
    if problems:
        raise FieldValidationError(source, problems)
    return FieldRegistry(
        fields=tuple(f for _, f in parsed if f.kind == "field"),
        no_spray=tuple(f for _, f in parsed if f.kind == "no_spray"),
        repairs=tuple(repairs),
    )


def parse_each(
    doc: Any, *, repair: bool = False, source: str = "<geojson>"
) -> tuple[list[tuple[int, Field]], list[FieldProblem], list[str]]:
    """Every feature of a document validated on its own: the (index, field) of the valid
    ones, the problems of the others (each problem naming its feature; a feature whose id
    repeats an earlier valid one's is refused) and the repairs made. A document that is no
    GeoJSON of features, or over the limits, raises ``FieldValidationError``: nothing of it
    is read."""
    features = _features(doc, source)
    if len(features) > MAX_FEATURES:
        too_many = document_problem(
            "doc_too_many_features",
            f"{len(features)} features; at most {MAX_FEATURES} per document:"
            " split it into several imports",
            n=len(features),
            max=MAX_FEATURES,
        )
        raise FieldValidationError(source, [too_many])
    total = sum(_vertex_count(f) for f in features)
    if total > MAX_VERTICES:
        too_big = document_problem(
            "doc_too_many_positions",
            f"{total} positions in all; at most {MAX_VERTICES} per document:"
            " split it into several imports or simplify the outlines",
            n=total,
            max=MAX_VERTICES,
        )
        raise FieldValidationError(source, [too_big])
    problems: list[FieldProblem] = []
    repairs: list[str] = []
    parsed: list[tuple[int, Field]] = []
    for index, feature in enumerate(features):
        f = _parse_feature(index, feature, repair, problems, repairs)
        if f is not None:
            parsed.append((index, f))
    first_seen: dict[str, int] = {}
    kept: list[tuple[int, Field]] = []
    for index, f in parsed:
        if f.id in first_seen:
            first = first_seen[f.id]
            where = _Where(index, f.id, f"feature {index} ({f.id})")
            problems.append(
                where.problem(
                    "duplicate_id", f"duplicate id, already used by feature {first}", first=first
                )
            )
        else:
            first_seen[f.id] = index
            kept.append((index, f))
    return kept, problems, repairs


def _features(doc: Any, source: str) -> list[Any]:
    if not isinstance(doc, Mapping):
        raise FieldValidationError(
            source, [document_problem("doc_not_object", "top level is not a GeoJSON object")]
        )
    kind = doc.get("type")
    if kind == "FeatureCollection":
        features = doc.get("features")
        if not isinstance(features, list):
            raise FieldValidationError(
                source,
                [
                    document_problem(
                        "doc_no_features_list", "FeatureCollection has no 'features' list"
                    )
                ],
            )
        if not features:
            raise FieldValidationError(
                source,
                [document_problem("doc_no_features", "FeatureCollection holds no features")],
            )
        return features
    if kind == "Feature":
        return [doc]
    wrong = document_problem(
        "doc_wrong_type",
        f"top-level type is {_shown(kind)}; expected 'Feature' or 'FeatureCollection'",
        type=_shown(kind),
    )
    raise FieldValidationError(source, [wrong])


def _parse_feature(
    index: int, feature: Any, repair: bool, problems: list[FieldProblem], repairs: list[str]
) -> Field | None:
    if not isinstance(feature, Mapping) or feature.get("type") != "Feature":
        where = _Where(index, None, f"feature {index}")
        problems.append(where.problem("not_feature", "not a GeoJSON Feature object"))
        return None
    props = feature.get("properties") or {}
    if not isinstance(props, Mapping):
        where = _Where(index, None, f"feature {index}")
        problems.append(where.problem("properties_not_object", "'properties' is not an object"))
        return None
    raw_id = props.get("id", feature.get("id"))
    shown_id = str(raw_id)[:80] if _utf8(str(raw_id)) else _shown(raw_id)
    named = raw_id not in (None, "")
    where = _Where(
        index, shown_id if named else None, f"feature {index}" + (f" ({shown_id})" if named else "")
    )
    count_before = len(problems)
    _check_values(props, where, problems)
    storable = len(problems) == count_before
    kind = _kind(props.get("kind"), where, problems)
    fid = _feature_id(raw_id, kind or "field", index, where, problems)
    texts = _texts(props, where, problems)
    _check_scope(props.get("scope"), kind or "field", texts.get("coop", ""), where, problems)
    extra = {k: v for k, v in props.items() if k not in ("id", "kind", "scope", *texts)}
    if storable:  # (the size check encodes the properties: only storable ones can be)
        _check_extra(extra, where, problems)
    vertices = _vertex_count(feature)
    geometry = None
    if vertices > MAX_VERTICES_PER_FEATURE:
        problems.append(
            where.problem(
                "too_many_positions",
                f"{vertices} positions; at most {MAX_VERTICES_PER_FEATURE} per feature:"
                " simplify the outline",
                n=vertices,
                max=MAX_VERTICES_PER_FEATURE,
            )
        )
    else:
        geometry = _geometry(feature.get("geometry"), where, repair, problems, repairs)
    if geometry is None or len(problems) > count_before or fid is None or kind is None:
        return None
    crossing = _antimeridian_problem(feature.get("geometry"))
    if crossing:
        problems.append(where.why(crossing))
        return None
    centre = geometry.centroid
    plane = LocalPlane.around(float(centre.x), float(centre.y))
    metric = plane.to_plane(geometry)
    size = _size_problem(kind, geometry, float(metric.area))
    if size:
        problems.append(where.why(size))
        return None
    return Field(
        id=fid,
        kind=kind,
        geometry=geometry,
        plane=plane,
        metric=metric,
        properties=extra,
        **texts,
    )


def _antimeridian_problem(geom: Any) -> _Why | None:
    """Why a (structurally valid) Polygon or MultiPolygon crosses the antimeridian, or None.

    RFC 7946 (3.1.9) splits such shapes in two at 180°; read as given, a ring from 179.9° to
    -179.9° goes the long way round the globe. Two consecutive positions more than 180° of
    longitude apart can only mean that.
    """
    coords = geom["coordinates"]
    polygons = [coords] if geom["type"] == "Polygon" else coords
    for rings in polygons:
        for ring in rings:
            for a, b in itertools.pairwise([*ring, ring[0]]):
                if abs(float(b[0]) - float(a[0])) > 180.0:
                    start, end = str(list(a[:2])), str(list(b[:2]))
                    return (
                        "antimeridian",
                        (
                            f"crosses the antimeridian (longitude ±180°) between {start} "
                            f"and {end}; fields there must be split in two at 180° "
                            "(RFC 7946, section 3.1.9), or check the longitudes' signs"
                        ),
                        {"start": start, "end": end},
                    )
    return None


def _size_problem(kind: Kind, geometry: Any, area: float) -> _Why | None:
    """Why a feature's area (m²) or extent is out of bounds for a field or zone, or None."""
    if kind == "field" and area < MIN_FIELD_M2:
        return (
            "area_too_small",
            f"area {area:.2f} m² is under the {MIN_FIELD_M2:.0f} m² minimum",
            {"m2": round(area, 2), "min": MIN_FIELD_M2},
        )
    if area > MAX_FIELD_M2:
        return (
            "area_too_big",
            (
                f"area {area / M2_PER_HA:.1f} ha is over the "
                f"{MAX_FIELD_M2 / M2_PER_HA:.0f} ha maximum (wrong units or a district outline?)"
            ),
            {"ha": round(area / M2_PER_HA, 1), "max": MAX_FIELD_M2 / M2_PER_HA},
        )
    return _extent_problem(geometry)


def _extent_problem(geometry: Any) -> _Why | None:
    """Why a geometry's lon/lat bounding box is too large for one field or zone, or None."""
    minx, miny, maxx, maxy = (float(v) for v in geometry.bounds)
    width, height = maxx - minx, maxy - miny
    if width <= MAX_EXTENT_DEG and height <= MAX_EXTENT_DEG:
        return None
    return (
        "extent_too_big",
        (
            f"its bounding box spans {width:.4f}° of longitude by {height:.4f}° of latitude; "
            f"a field or zone spans at most {MAX_EXTENT_DEG:g}° (about 11 km) each way "
            "(wrong coordinates, or several places in one feature?)"
        ),
        {"width": round(width, 4), "height": round(height, 4), "max": MAX_EXTENT_DEG},
    )


def geometry_problem(field: Field) -> str:
    """Why an already built field's geometry cannot be used for coverage (it crosses the
    antimeridian, spans too much, or is invalid in its metric plane), or "". For fields that
    did not come through ``parse_fields`` (stored under older rules, built by code)."""
    extent = _extent_problem(field.geometry)
    if extent:
        return extent[1]
    if not shapely.is_valid(field.metric):
        return f"its outline is invalid in metres ({shapely.is_valid_reason(field.metric)})"
    return ""


def _check_scope(
    scope: Any, kind: Kind, coop: str, where: _Where, problems: list[FieldProblem]
) -> None:
    """A zone's ``scope`` must agree with its ``coop``; absent, the ``coop`` decides it."""
    if scope is None:
        return
    if kind != "no_spray":
        problems.append(
            where.problem(
                "scope_not_zone", '\'scope\' is for no-spray zones only ("kind": "no_spray")'
            )
        )
    elif scope not in SCOPES:
        problems.append(
            where.problem(
                "scope_unknown",
                f"'scope' is {_shown(scope)}; expected one of {', '.join(SCOPES)}",
                scope=_shown(scope),
            )
        )
    elif scope == "commune" and coop:
        problems.append(
            where.problem(
                "scope_commune_with_coop",
                "a commune-wide zone (scope 'commune') belongs to no cooperative; "
                f"drop 'coop' ({coop!r}) or use scope 'coop'",
                coop=coop,
            )
        )
    elif scope == "coop" and not coop:
        problems.append(
            where.problem(
                "scope_coop_without_coop", "scope 'coop' needs the zone's 'coop' property"
            )
        )


def _shown(value: Any) -> str:
    """A value quoted for a message, cut to 80 characters (inputs can be huge)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _kind(raw: Any, where: _Where, problems: list[FieldProblem]) -> Kind | None:
    """The declared kind; a missing one means a field, anything unknown is a problem."""
    if raw is None:
        return "field"
    for kind in KINDS:
        if raw == kind:
            return kind
    known = ", ".join(repr(k) for k in KINDS)
    problems.append(
        where.problem(
            "unknown_kind",
            f"unknown kind {_shown(raw)}; the kinds are {known}"
            " (leave 'kind' out for a field to spray)",
            kind=_shown(raw),
        )
    )
    return None


def is_valid_id(value: str) -> bool:
    """Whether ``value`` is a usable id of a field, owner or cooperative (``ID_PATTERN``)."""
    return _ID.fullmatch(value) is not None


def _feature_id(
    raw_id: Any, kind: Kind, index: int, where: _Where, problems: list[FieldProblem]
) -> str | None:
    if raw_id is None or raw_id == "":
        if kind == "no_spray":
            return f"no-spray-{index}"
        problems.append(where.problem("no_id", "no 'id' property"))
        return None
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int):
        problems.append(
            where.problem(
                "id_type",
                f"'id' must be a string or integer, got {_shown(raw_id)}",
                value=_shown(raw_id),
            )
        )
        return None
    fid = str(raw_id)
    if not is_valid_id(fid):
        problems.append(
            where.problem(
                "id_invalid",
                f"'id' {_shown(fid)} is not a valid id: use 1 to 64 letters, digits,"
                " '_' or '-' (no spaces, '/' or '.')",
                id=_shown(fid),
            )
        )
        return None
    return fid


def _texts(props: Mapping[str, Any], where: _Where, problems: list[FieldProblem]) -> dict[str, str]:
    """``name``, ``owner``, ``coop`` and ``crop`` as strings; owner and coop are ids."""
    texts: dict[str, str] = {}
    for key in ("name", "owner", "coop", "crop"):
        value = props.get(key, "")
        if value is None:
            value = ""
        if not isinstance(value, str):
            problems.append(
                where.problem(
                    "text_not_string",
                    f"property {key!r} must be a string, got {_shown(value)}",
                    key=key,
                    value=_shown(value),
                )
            )
        text = str(value)
        if key in ("owner", "coop") and text and not is_valid_id(text):
            problems.append(
                where.problem(
                    "property_id_invalid",
                    f"property {key!r} {_shown(text)} is not a valid id: use 1 to 64"
                    " letters, digits, '_' or '-'",
                    key=key,
                    value=_shown(text),
                )
            )
        elif len(text) > MAX_TEXT_CHARS:
            problems.append(
                where.problem(
                    "text_too_long",
                    f"property {key!r} has {len(text)} characters; at most {MAX_TEXT_CHARS}",
                    key=key,
                    n=len(text),
                    max=MAX_TEXT_CHARS,
                )
            )
        texts[key] = text
    return texts


def json_depth(value: Any, stop_above: int) -> int:
    """How deeply JSON arrays and objects nest in ``value`` (a scalar is 0); iterative, and
    it stops counting once past ``stop_above`` (the API's body check uses it too)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, Mapping):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        deepest = max(deepest, level + 1)
        if deepest > stop_above:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def _check_values(props: Mapping[str, Any], where: _Where, problems: list[FieldProblem]) -> None:
    """Every property must be storable as JSON: integers within 64 bits (signed or
    unsigned), strings and keys that encode as UTF-8 (no lone surrogate such as ``\\ud800``).
    One problem per property, naming it and where inside it; walked iteratively."""
    for key, value in props.items():
        name = _shown_key(key)
        if not _utf8(str(key)):
            problems.append(where.problem("property_name_not_unicode", f"{name} {_NOT_UNICODE}"))
            continue
        found = _value_problem(name, value)
        if found:
            problems.append(where.problem(found[0], f"property {found[1]}", **found[2]))


_NOT_UNICODE: Final = "is not valid Unicode (it holds a lone surrogate such as \\ud800)"


def _value_problem(name: str, value: Any) -> _Why | None:
    """The first unstorable value inside one property, as (code, "<where> <why>", params),
    or None."""
    stack: list[tuple[str, Any, int]] = [(name, value, 0)]
    while stack:
        where, item, level = stack.pop()
        if isinstance(item, bool):
            continue
        if isinstance(item, int) and not MIN_PROPERTY_INT <= item <= MAX_PROPERTY_INT:
            return (
                "property_int_too_big",
                (
                    f"{where} is an integer of {item.bit_length()} bits; integers must fit in 64 "
                    f"bits ({MIN_PROPERTY_INT} to {MAX_PROPERTY_INT}): send larger numbers as text"
                ),
                {"where": where, "bits": item.bit_length()},
            )
        if isinstance(item, str) and not _utf8(item):
            return ("property_not_unicode", f"{where} {_NOT_UNICODE}", {"where": where})
        if level >= MAX_PROPERTY_DEPTH:
            continue
        if isinstance(item, Mapping):
            for k, v in item.items():
                if not _utf8(str(k)):
                    return (
                        "property_key_not_unicode",
                        f"{where} has a key that {_NOT_UNICODE}",
                        {"where": where},
                    )
                stack.append((f"{where}.{_shown_key(k)}", v, level + 1))
        elif isinstance(item, list | tuple):
            stack.extend((f"{where}[{i}]", v, level + 1) for i, v in enumerate(item))
    return None


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shown_key(key: Any) -> str:
    """A property name for a message: quoted, cut to 40 characters, never unencodable."""
    text = str(key)
    return repr(text[:40]) if _utf8(text) else "a property name"


def _check_extra(extra: Mapping[str, Any], where: _Where, problems: list[FieldProblem]) -> None:
    """Other properties are kept as given, within a size and nesting limit."""
    if json_depth(extra, MAX_PROPERTY_DEPTH) > MAX_PROPERTY_DEPTH:
        problems.append(
            where.problem(
                "properties_too_deep",
                f"its other properties nest deeper than {MAX_PROPERTY_DEPTH} levels",
                max=MAX_PROPERTY_DEPTH,
            )
        )
        return
    size = len(json.dumps(extra, ensure_ascii=False, separators=(",", ":")).encode())
    if size > MAX_EXTRA_PROPERTIES_BYTES:
        problems.append(
            where.problem(
                "properties_too_big",
                f"its other properties take {size} bytes as JSON; at most"
                f" {MAX_EXTRA_PROPERTIES_BYTES}",
                bytes=size,
                max=MAX_EXTRA_PROPERTIES_BYTES,
            )
        )


def _vertex_count(feature: Any) -> int:
    """Positions in a feature's Polygon or MultiPolygon, counted without validating them."""
    geometry = feature.get("geometry") if isinstance(feature, Mapping) else None
    if not isinstance(geometry, Mapping):
        return 0
    coords = geometry.get("coordinates")
    if not isinstance(coords, list | tuple):
        return 0
    polygons = [coords] if geometry.get("type") == "Polygon" else coords
    return sum(
        len(ring)
        for rings in polygons
        if isinstance(rings, list | tuple)
        for ring in rings
        if isinstance(ring, list | tuple)
    )


def _geometry(
    geom: Any, where: _Where, repair: bool, problems: list[FieldProblem], repairs: list[str]
) -> Any:
    if not isinstance(geom, Mapping):
        problems.append(where.problem("no_geometry", "no geometry"))
        return None
    gtype = geom.get("type")
    coords = geom.get("coordinates")
    polygons = [coords] if gtype == "Polygon" else coords
    if gtype not in ("Polygon", "MultiPolygon"):
        problems.append(
            where.problem(
                "geometry_type",
                f"geometry type {_shown(gtype)}; expected Polygon or MultiPolygon",
                type=_shown(gtype),
            )
        )
        return None
    if not isinstance(polygons, list | tuple) or not polygons:
        problems.append(where.problem("no_polygons", f"{gtype} has no polygons", type=gtype))
        return None
    shapes = []
    for p_index, rings in enumerate(polygons):
        part = where if gtype == "Polygon" else where.inside(f"polygon {p_index}", polygon=p_index)
        shape = _polygon(rings, part, repair, problems, repairs)
        if shape is not None:
            shapes.append(shape)
    if len(shapes) != len(polygons):
        return None
    result = shapes[0] if gtype == "Polygon" else MultiPolygon(shapes)
    return _valid(result, where, repair, problems, repairs)


def _valid(
    result: Any, where: _Where, repair: bool, problems: list[FieldProblem], repairs: list[str]
) -> Any:
    """The geometry if valid, its ``make_valid`` repair when asked, else None (reported)."""
    if not shapely.is_valid(result):
        reason = shapely.is_valid_reason(result)
        if not repair:
            problems.append(
                where.problem(
                    "invalid_geometry",
                    f"invalid geometry ({reason}); load with repair to fix",
                    reason=reason,
                )
            )
            return None
        repairs.append(f"{where.text}: repaired invalid geometry ({reason}) with make_valid")
        result = polygonal(shapely.make_valid(result))
        if result is None:
            problems.append(
                where.problem("nothing_polygonal", "nothing polygonal is left after make_valid")
            )
            return None
    return shapely.normalize(result)


def _polygon(
    rings: Any, where: _Where, repair: bool, problems: list[FieldProblem], repairs: list[str]
) -> Polygon | None:
    if not isinstance(rings, list | tuple) or not rings:
        problems.append(where.problem("no_rings", "polygon has no rings"))
        return None
    clean: list[list[tuple[float, float]]] = []
    for r_index, ring in enumerate(rings):
        name = "outer ring" if r_index == 0 else f"hole {r_index}"
        place = where.inside(name, ring=r_index)
        points = _ring_points(ring, place, problems)
        if points is None:
            return None
        if points[0] != points[-1]:
            first, last = str(list(points[0])), str(list(points[-1]))
            msg = f"ring not closed (first vertex {first} != last vertex {last})"
            if not repair:
                problems.append(
                    place.problem(
                        "ring_not_closed",
                        msg + "; load with repair to close it",
                        first=first,
                        last=last,
                    )
                )
                return None
            repairs.append(f"{place.text}: {msg}; closed it")
            points = [*points, points[0]]
        if len(points) < 4:
            problems.append(
                place.problem(
                    "ring_too_short",
                    f"a ring needs at least 4 positions, has {len(points)}",
                    n=len(points),
                )
            )
            return None
        clean.append(points)
    return Polygon(clean[0], clean[1:])


def _ring_points(
    ring: Any, where: _Where, problems: list[FieldProblem]
) -> list[tuple[float, float]] | None:
    if not isinstance(ring, list | tuple) or not ring:
        problems.append(where.problem("ring_not_list", "not a list of positions"))
        return None
    points: list[tuple[float, float]] = []
    for v_index, pos in enumerate(ring):
        ok = (
            isinstance(pos, list | tuple)
            and len(pos) >= 2
            and all(isinstance(c, int | float) and not isinstance(c, bool) for c in pos[:2])
        )
        if not ok:
            problems.append(
                where.problem(
                    "vertex_not_pair",
                    f"vertex {v_index} is not a [lon, lat] pair: {_shown(pos)}",
                    vertex=v_index,
                    value=_shown(pos),
                )
            )
            return None
        lon, lat = float(pos[0]), float(pos[1])
        if not (math.isfinite(lon) and math.isfinite(lat)):
            problems.append(
                where.problem(
                    "vertex_not_finite",
                    f"vertex {v_index} is not finite: {pos!r}",
                    vertex=v_index,
                    value=_shown(pos),
                )
            )
            return None
        hint = _range_problem(lon, lat)
        if hint:
            code, text, params = hint
            problems.append(
                where.problem(
                    code,
                    f"vertex {v_index} [{lon}, {lat}] {text}",
                    vertex=v_index,
                    position=f"[{lon}, {lat}]",
                    **params,
                )
            )
            return None
        points.append((lon, lat))
    return points


def _range_problem(lon: float, lat: float) -> _Why | None:
    in_range = -180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0
    swapped_ok = -180.0 <= lat <= 180.0 and -90.0 <= lon <= 90.0
    swapped_vn = (
        _VIETNAM_LON[0] <= lat <= _VIETNAM_LON[1] and _VIETNAM_LAT[0] <= lon <= _VIETNAM_LAT[1]
    )
    if in_range and not swapped_vn:
        return None
    if swapped_vn:
        return (
            "vertex_swapped",
            (
                "looks like [lat, lon] (Vietnam, swapped); GeoJSON positions are [lon, lat], "
                f"e.g. [{lat}, {lon}]"
            ),
            {"fixed": f"[{lat}, {lon}]"},
        )
    if swapped_ok:
        return (
            "vertex_maybe_swapped",
            "is outside WGS84 ranges; are lat and lon swapped? GeoJSON is [lon, lat]",
            {},
        )
    return ("vertex_out_of_range", "is outside WGS84 ranges (lon -180..180, lat -90..90)", {})


def polygonal(geometry: Any) -> Polygon | MultiPolygon | None:
    """Only the polygon parts of a geometry (drops lines and points where shapes just touch).

    None when nothing polygonal is left.
    """
    if geometry is None or geometry.is_empty:
        return None
    if geometry.geom_type in ("Polygon", "MultiPolygon"):
        return geometry
    parts = [
        g
        for g in shapely.get_parts(geometry)
        if g.geom_type in ("Polygon", "MultiPolygon") and not g.is_empty
    ]
    if not parts:
        return None
    merged = shapely.union_all(parts)
    return merged if merged.geom_type in ("Polygon", "MultiPolygon") else None


def parse_feature(
    index: int, feature: Any, *, repair: bool = False
) -> tuple[Field | None, list[FieldProblem], list[str]]:
    """One feature validated on its own, exactly as ``parse_fields`` validates each of a
    document's: (the field or None, its problems, its repairs), labelled "feature <index>".
    For importers that stream a document too large to hold whole; the per-document limits
    and duplicate ids are theirs to apply."""
    problems: list[FieldProblem] = []
    repairs: list[str] = []
    parsed = _parse_feature(index, feature, repair, problems, repairs)
    return parsed, problems, repairs
