"""Between the field registry and the metadata database: validated fields as rows and back."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import orjson

from fields.registry import Field, FieldRegistry, parse_fields
from storage.metadata import StoredField


def to_stored(fields: Iterable[Field]) -> list[StoredField]:
    """Validated fields as the metadata database keeps them (GeoJSON Feature text)."""
    return [
        StoredField(f.id, f.kind, f.coop, f.owner, orjson.dumps(f.to_feature()).decode())
        for f in fields
    ]


def stored_registry(rows: Sequence[StoredField]) -> FieldRegistry:
    """The registry rebuilt from stored features (they were valid when stored)."""
    doc = {"type": "FeatureCollection", "features": [orjson.loads(r.feature) for r in rows]}
    return parse_fields(doc, source="metadata database")
