"""ISO 11783-10 TaskData (ISOXML) for farm-management software and terminals, with the
``isoxml`` package: fields to partfields and back (docs/gis.md, "ISOXML").

Written (version 4.3, ``TASKDATA/TASKDATA.XML`` in a zip): a field is a partfield ``PFD``
(``B`` code = its id, ``C`` designator = its name, ``D`` area in m², customer ``CTR`` = its
owner, farm ``FRM`` = its cooperative, crop type ``CTP`` = its crop) whose boundary is one
``PLN`` of type 1 per polygon, each an exterior ``LSG`` (type 1) and interior ones (type 2)
of ``PNT`` points (``C`` north = latitude, ``D`` east = longitude, WGS84). A no-spray zone is
a partfield whose polygons are type 11 (buffer zone). Any other feature (a coverage layer, a
re-fly area) is a polygon of the partfield of its ``field_id``: missed areas type 2
(treatment zone: left to spray), the rest type 8 (other), named by ``kind``.

Read (versions 3 and 4, external ``XFR`` files merged): every partfield with boundary
polygons is a field, one with buffer zones only a no-spray zone; ``B`` (else ``A``) is its
id. ISOXML coordinates are WGS84 by definition.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping
from enum import Enum
from pathlib import PurePosixPath
from typing import Any, Final

import isoxml.models.base.v3 as iso3
import isoxml.models.base.v4 as iso4
import shapely
from isoxml.converter.shapely_geom import ShapelyConverterV4
from isoxml.util.isoxml_io import isoxml_to_text
from lxml import etree
from pyproj import Geod
from xsdata.exceptions import ParserError
from xsdata.formats.dataclass.context import XmlContext
from xsdata.formats.dataclass.parsers import XmlParser
from xsdata.formats.dataclass.parsers.config import ParserConfig

from fields.gis.features import check_count, collection, feature, number, polygons
from fields.gis.safe import GisFormatError, Limits, local_name, parse_xml, zip_entry

ROOT: Final = "ISO11783_TaskData"
#: ISO 11783-10 strings (designators, names) hold at most 32 characters.
MAX_DESIGNATOR: Final = 32
_BOUNDARY: Final = iso4.PolygonType.PartfieldBoundary
_ZONE: Final = iso4.PolygonType.BufferZone
_GEOD: Final = Geod(ellps="WGS84")
_CONVERT: Final = ShapelyConverterV4()
_PARSER_CONFIG: Final = ParserConfig(
    fail_on_unknown_properties=False, fail_on_unknown_attributes=False
)
#: xsdata's model metadata, built once and shared (a parser per call, for threads).
_CONTEXT: Final = XmlContext()


def to_taskdata_zip(fc: Mapping[str, Any], *, name: str) -> bytes:
    """A zip holding ``TASKDATA/TASKDATA.XML`` of a FeatureCollection's polygons."""
    book = _Book(name)
    for f in fc["features"]:
        props = f.get("properties") or {}
        kind = props.get("kind")
        if kind in (None, "field", "no_spray") and props.get("id"):
            pfd = book.partfield(str(props["id"]))
            book.describe(pfd, props)
            pln_type, designator = (_ZONE if kind == "no_spray" else _BOUNDARY), None
        else:
            pfd = book.partfield(str(props.get("field_id") or name))
            pln_type = (
                iso4.PolygonType.TreatmentZone if kind == "missed" else iso4.PolygonType.Other
            )
            designator = _cut(str(kind or "other"))
        for rings in polygons(f["geometry"]):
            polygon = shapely.Polygon(rings[0], rings[1:])
            pln = _CONVERT.to_iso_polygon(polygon, pln_type, designator=designator)
            pln.area = round(_area_m2(polygon))
            pfd.polygons.append(pln)
            if pln_type in (_BOUNDARY, _ZONE):
                pfd.area += pln.area
    task = iso4.Iso11783TaskData(
        management_software_manufacturer="agridrone",
        management_software_version="1",
        data_transfer_origin=iso4.Iso11783TaskDataDataTransferOrigin.FMIS,
        customers=list(book.customers.values()),
        farms=list(book.farms.values()),
        crop_types=list(book.crops.values()),
        partfields=list(book.partfields.values()),
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zip_entry("TASKDATA/TASKDATA.XML"), isoxml_to_text(task).encode("utf-8"))
    return out.getvalue()


class _Book:
    """The partfields, customers, farms and crop types of one TaskData, each made once."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.partfields: dict[str, Any] = {}
        self.customers: dict[str, Any] = {}
        self.farms: dict[str, Any] = {}
        self.crops: dict[str, Any] = {}

    def partfield(self, code: str) -> Any:
        if code not in self.partfields:
            self.partfields[code] = iso4.Partfield(
                id=f"PFD{len(self.partfields) + 1}", code=code, designator=_cut(code), area=0
            )
        return self.partfields[code]

    def describe(self, pfd: Any, props: Mapping[str, Any]) -> None:
        """Name the partfield and point it at its owner, cooperative and crop."""
        pfd.designator = _cut(str(props.get("name") or pfd.code))
        if owner := props.get("owner"):
            pfd.customer_id_ref = self._ref(self.customers, "CTR", str(owner))
        if coop := props.get("coop"):
            pfd.farm_id_ref = self._ref(self.farms, "FRM", str(coop))
        if crop := props.get("crop"):
            pfd.crop_type_id_ref = self._ref(self.crops, "CTP", str(crop))

    @staticmethod
    def _ref(table: dict[str, Any], prefix: str, value: str) -> str:
        if value not in table:
            ref = f"{prefix}{len(table) + 1}"
            if prefix == "CTR":
                table[value] = iso4.Customer(id=ref, last_name=value)
            elif prefix == "FRM":
                table[value] = iso4.Farm(id=ref, designator=value)
            else:
                table[value] = iso4.CropType(id=ref, designator=_cut(value))
        return str(table[value].id)


def _cut(text: str) -> str:
    return text[:MAX_DESIGNATOR]


def _area_m2(polygon: Any) -> float:
    """A WGS84 polygon's area on the ellipsoid, in m²."""
    return abs(float(_GEOD.geometry_area_perimeter(polygon)[0]))


def read_taskdata(files: Mapping[str, bytes], limits: Limits, what: str) -> dict[str, Any]:
    """The partfields of the ``TASKDATA.XML`` among ``files`` (paths inside a zip) as a
    FeatureCollection of fields and no-spray zones."""
    found = [p for p in files if PurePosixPath(p).name.upper() == "TASKDATA.XML"]
    if len(found) != 1:
        raise GisFormatError(f"{what} holds {len(found)} TASKDATA.XML files; send exactly one")
    root = parse_xml(files[found[0]], what)
    _merge_external(root, files, PurePosixPath(found[0]).parent, what)
    return read_root(root, limits, what)


def read_root(root: Any, limits: Limits, what: str) -> dict[str, Any]:
    """The partfields of a parsed ``ISO11783_TaskData`` element (external files merged)."""
    if local_name(root) != ROOT:
        raise GisFormatError(f"{what}'s top element is <{local_name(root)}>, not <{ROOT}>")
    version = root.get("VersionMajor")
    if version not in ("3", "4"):
        raise GisFormatError(
            f"{what}: VersionMajor is {version!r}; ISOXML versions 3 and 4 are read"
        )
    if any(local_name(e) == "XFR" for e in root):
        raise GisFormatError(f"{what} refers to external files (XFR): send the whole zip")
    model = iso4 if version == "4" else iso3
    try:
        parser = XmlParser(config=_PARSER_CONFIG, context=_CONTEXT)
        task = parser.from_bytes(etree.tostring(root), model.Iso11783TaskData)
    # xsdata warns of a value it cannot convert (and keeps the text): an error where warnings
    # are errors (the tests); elsewhere ``_typed`` finds the text it kept.
    except (ParserError, ValueError, TypeError, Warning) as exc:
        raise GisFormatError(f"{what} is not valid ISOXML: {' '.join(str(exc).split())}") from exc
    # A version 3 customer has a designator, a version 4 one a last name.
    owners = {c.id: getattr(c, "last_name", None) or c.designator for c in task.customers}
    coops = {f.id: f.designator for f in task.farms}
    crops = {c.id: c.designator for c in task.crop_types}
    features = []
    for index, pfd in enumerate(task.partfields):
        check_count(index + 1, limits, what)
        boundary = _polygons(pfd, "1", what)
        zones = _polygons(pfd, "11", what)
        props: dict[str, Any] = {
            "id": pfd.code or pfd.id,
            "name": pfd.designator,
            "owner": owners.get(pfd.customer_id_ref),
            "coop": coops.get(pfd.farm_id_ref),
            "crop": crops.get(pfd.crop_type_id_ref),
        }
        if zones and not boundary:
            props["kind"] = "no_spray"
        features.append(feature(props, _geometry(boundary or zones)))
    if not features:
        raise GisFormatError(f"{what} holds no partfield (PFD)")
    return collection(features)


def _merge_external(
    root: Any, files: Mapping[str, bytes], folder: PurePosixPath, what: str
) -> None:
    """Move the elements of the external files (``XFR``, version 4) into the root."""
    by_name = {p.upper(): p for p in files}
    for xfr in [e for e in root if local_name(e) == "XFR"]:
        wanted = str(folder / f"{xfr.get('A', '')}.XML").removeprefix("./").upper()
        if wanted not in by_name:
            raise GisFormatError(f"{what} has no {xfr.get('A')}.XML that TASKDATA.XML refers to")
        external = parse_xml(files[by_name[wanted]], what)
        root.remove(xfr)
        root.extend(list(external))


def _polygons(pfd: Any, pln_type: str, what: str) -> list[list[list[list[float | str]]]]:
    """The polygons of one type of a partfield, each its rings of [east, north] positions;
    an interior ring belongs to the exterior before it."""
    out: list[list[list[list[float | str]]]] = []
    for pln in pfd.polygons:
        if _typed(pln.type, f"partfield {pfd.id}: polygon type", what) != pln_type:
            continue
        for lsg in pln.line_strings:
            ring = [[number(str(p.east)), number(str(p.north))] for p in lsg.points]
            if ring and ring[0] != ring[-1]:
                ring.append(ring[0])  # ISOXML rings are implicitly closed
            if _typed(lsg.type, f"partfield {pfd.id}: line string type", what) == "2" and out:
                out[-1].append(ring)
            else:
                out.append([ring])
    return out


def _typed(value: Any, where: str, what: str) -> str:
    """An enumerated attribute's code; one xsdata could not convert (kept as text) refused."""
    if not isinstance(value, Enum):
        raise GisFormatError(f"{what} is not valid ISOXML: {where} {str(value)[:20]!r} is unknown")
    return str(value.value)


def _geometry(parts: list[list[list[list[float | str]]]]) -> dict[str, Any] | None:
    if not parts:
        return None
    if len(parts) == 1:
        return {"type": "Polygon", "coordinates": parts[0]}
    return {"type": "MultiPolygon", "coordinates": parts}
