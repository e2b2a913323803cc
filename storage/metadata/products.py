"""Plant-protection products a cooperative registers for its spray diary (nhật ký phun).

A product's id is unique within its cooperative (like a drone's): the drone's ``job_start``
names ``"product": "<id>"`` and it is looked up among the products of the drone's
cooperative. Every field is what the label and the Vietnamese registration say.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar

from storage.metadata._db import ConstraintError, Database, MetadataConflictError, Step

_COLUMNS = (
    "coop, id, trade_name, active_ingredient, concentration, registration_no, target,"
    " dose_l_per_ha, phi_days, created_ms, updated_ms"
)


@dataclass(frozen=True, slots=True)
class ProductRecord:
    """One registered product. ``dose_l_per_ha`` is the recommended spray volume (litres of
    mixed liquid per hectare); ``phi_days`` the pre-harvest interval (thời gian cách ly)."""

    coop: str
    id: str
    trade_name: str
    active_ingredient: str
    concentration: str
    registration_no: str
    target: str
    dose_l_per_ha: float
    phi_days: int
    created_ms: int = 0
    updated_ms: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (times as epoch ms)."""
        return {
            "coop": self.coop,
            "id": self.id,
            "trade_name": self.trade_name,
            "active_ingredient": self.active_ingredient,
            "concentration": self.concentration,
            "registration_no": self.registration_no,
            "target": self.target,
            "dose_l_per_ha": self.dose_l_per_ha,
            "phi_days": self.phi_days,
            "created_ms": self.created_ms,
            "updated_ms": self.updated_ms,
        }


class ProductTable(Database):
    """Products, keyed by (cooperative, product id)."""

    migrations: ClassVar[tuple[Step, ...]] = (
        Step(
            1,
            "products",
            """
CREATE TABLE IF NOT EXISTS products (
    coop              TEXT    NOT NULL,
    id                TEXT    NOT NULL,
    trade_name        TEXT    NOT NULL,
    active_ingredient TEXT    NOT NULL,
    concentration     TEXT    NOT NULL,
    registration_no   TEXT    NOT NULL,
    target            TEXT    NOT NULL,
    dose_l_per_ha     REAL    NOT NULL CHECK (dose_l_per_ha > 0),
    phi_days          INTEGER NOT NULL CHECK (phi_days >= 0),
    created_ms        INTEGER NOT NULL,
    updated_ms        INTEGER NOT NULL,
    PRIMARY KEY (coop, id)
)
""",
        ),
    )

    def add_product(self, p: ProductRecord) -> ProductRecord:
        """Register a product; ``MetadataConflictError`` when the cooperative has that id."""
        now = int(time.time() * 1000)
        try:
            with self._write() as tx:
                tx.execute(
                    f"INSERT INTO products ({_COLUMNS})"  # noqa: S608
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (*_values(p), now, now),
                )
        except ConstraintError as exc:
            raise MetadataConflictError(
                f"cooperative {p.coop} already has a product {p.id!r}; change it with PUT"
                f" /api/v1/products/{p.coop}/{p.id}"
            ) from exc
        return self._product_written(p.coop, p.id)

    def update_product(self, p: ProductRecord) -> ProductRecord:
        """Replace a product's fields; ``MetadataConflictError`` when it does not exist."""
        now = int(time.time() * 1000)
        with self._write() as tx:
            changed = tx.execute(
                "UPDATE products SET trade_name = ?, active_ingredient = ?, concentration = ?,"
                " registration_no = ?, target = ?, dose_l_per_ha = ?, phi_days = ?,"
                " updated_ms = ? WHERE coop = ? AND id = ?",
                (*_values(p)[2:], now, p.coop, p.id),
            ).rowcount
        if changed == 0:
            raise MetadataConflictError(f"cooperative {p.coop} has no product {p.id!r}")
        return self._product_written(p.coop, p.id)

    def _product_written(self, coop: str, product_id: str) -> ProductRecord:
        record = self.product(coop, product_id)
        if record is None:  # only if rows are deleted behind our back
            raise MetadataConflictError(f"product {coop}/{product_id} vanished")
        return record

    def product(self, coop: str, product_id: str) -> ProductRecord | None:
        """One product of a cooperative, or ``None``."""
        rows = self._read(
            f"SELECT {_COLUMNS} FROM products WHERE coop = ? AND id = ?",  # noqa: S608
            (coop, product_id),
        )
        return _record(rows[0]) if rows else None

    def products(self, coop: str | None = None) -> list[ProductRecord]:
        """Every product (of one cooperative, or all), by cooperative then id."""
        if coop is None:
            rows = self._read(f"SELECT {_COLUMNS} FROM products ORDER BY coop, id", ())  # noqa: S608
        else:
            rows = self._read(
                f"SELECT {_COLUMNS} FROM products WHERE coop = ? ORDER BY id",  # noqa: S608
                (coop,),
            )
        return [_record(r) for r in rows]


def _values(p: ProductRecord) -> tuple[Any, ...]:
    return (
        p.coop,
        p.id,
        p.trade_name,
        p.active_ingredient,
        p.concentration,
        p.registration_no,
        p.target,
        p.dose_l_per_ha,
        p.phi_days,
    )


def _record(r: tuple[Any, ...]) -> ProductRecord:
    return ProductRecord(
        coop=r[0],
        id=r[1],
        trade_name=r[2],
        active_ingredient=r[3],
        concentration=r[4],
        registration_no=r[5],
        target=r[6],
        dose_l_per_ha=float(r[7]),
        phi_days=int(r[8]),
        created_ms=int(r[9]),
        updated_ms=int(r[10]),
    )
