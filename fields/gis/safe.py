"""Reading untrusted XML and zip archives within limits: no DTDs or entities, no network, no
archive that unpacks past a size budget (zip bombs), every failure a ``GisFormatError``
naming what is wrong."""

from __future__ import annotations

import io
import zipfile
import zlib
from dataclasses import dataclass
from typing import Any, Final

from lxml import etree

#: Members a zip may hold (a Shapefile is 3 to 8 files; a TaskData a few dozen).
MAX_ZIP_MEMBERS: Final = 256
#: Bytes read at a time while unpacking a member.
_CHUNK: Final = 1 << 16


class GisFormatError(ValueError):
    """A file that cannot be read as the format it claims; the message says what to fix."""


class GisTooLargeError(GisFormatError):
    """A file (or what it unpacks to) over the size limit."""


@dataclass(frozen=True, slots=True)
class Limits:
    """How much a file may unpack to and hold: the API's are per request, the command line's
    are for a whole town's plot register. ``max_features`` None: no limit here (the
    registry's own limits apply to an API document)."""

    max_bytes: int
    max_features: int | None


def parse_xml(data: bytes, what: str) -> Any:
    """The root element of an XML document; a DOCTYPE (the door to entity expansion and
    external entities) is refused, the network is never used and libxml2's size limits
    stay on."""
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    try:
        root = etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise GisFormatError(f"{what} is not well-formed XML: {_short(str(exc))}") from exc
    if root.getroottree().docinfo.doctype:
        raise GisFormatError(
            f"{what} declares a DOCTYPE; remove it (DTDs and entities are refused)"
        )
    return root


def local_name(element: Any) -> str:
    """An element's tag without its namespace ("" for comments and the like)."""
    tag = element.tag
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def is_zip(data: bytes) -> bool:
    """Whether the bytes start like a zip archive."""
    return data[:4] == b"PK\x03\x04"


def unzip(data: bytes, what: str, limits: Limits) -> dict[str, bytes]:
    """Every file of a zip archive by its path inside it (folders and macOS resource forks
    left out), unpacked within ``limits.max_bytes`` in all, whatever its headers claim."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError) as exc:
        raise GisFormatError(f"{what} is not a readable zip archive ({exc})") from exc
    members = [
        i
        for i in archive.infolist()
        if not i.is_dir()
        and not i.filename.startswith("__MACOSX/")
        and not i.filename.rsplit("/", 1)[-1].startswith("._")
    ]
    if len(members) > MAX_ZIP_MEMBERS:
        raise GisFormatError(
            f"{what} holds {len(members)} files; at most {MAX_ZIP_MEMBERS}: zip only the layer"
        )
    files: dict[str, bytes] = {}
    used = 0
    for info in members:
        if info.flag_bits & 0x1:
            raise GisFormatError(f"{what}: {info.filename} is encrypted; zip it without a password")
        content = _member(archive, info, limits.max_bytes - used, what)
        if content is None:
            raise GisTooLargeError(
                f"{what} unpacks to more than {_mib(limits.max_bytes)} MiB, the limit: "
                "send fewer fields per file"
            )
        used += len(content)
        files[info.filename] = content
    return files


def _member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int, what: str
) -> bytes | None:
    """One member's bytes, or None when it holds more than ``budget`` (reading at most
    ``budget`` + 1 of them, whatever its header claims)."""
    chunks: list[bytes] = []
    size = 0
    try:
        with archive.open(info) as member:
            while chunk := member.read(min(_CHUNK, budget - size + 1)):
                size += len(chunk)
                if size > budget:
                    return None
                chunks.append(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, OSError) as exc:
        raise GisFormatError(f"{what}: {info.filename} cannot be unpacked ({exc})") from exc
    return b"".join(chunks)


def _mib(size: int) -> str:
    return f"{size / (1 << 20):g}"


def _short(text: str, most: int = 200) -> str:
    return text if len(text) <= most else text[: most - 3] + "..."


def zip_entry(name: str) -> zipfile.ZipInfo:
    """A deflated zip member dated 1980-01-01 (zip's epoch): the same features give the
    same file, byte for byte, whenever they are exported."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    return info
