"""Plant-protection products of a cooperative, for the spray diary.

A product's id is unique within its cooperative, so its path carries both:
``/products/{coop}/{product}``. A cooperative registers, reads and changes its own; an
operator any cooperative's. A product of another cooperative answers exactly like one
that does not exist (404). Farmers read the products used on their fields in their
field's diary (every product column is in each entry), not here: the list is empty for
them and one product is 404.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, HTTPException, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field

from api.auth import CoopOrOperatorDep, Principal, PrincipalDep, can_see_drone
from api.deps import MetadataDep
from fields.registry import ID_PATTERN
from flights.jobs import MAX_DOSE_L_PER_HA
from storage.metadata import MetadataConflictError, ProductRecord

router = APIRouter(tags=["products"])

_ID: Final = f"^{ID_PATTERN}$"
#: Longest pre-harvest interval accepted (a year; real ones are days to weeks).
MAX_PHI_DAYS: Final = 365
CoopId = Annotated[str, Path(pattern=_ID, description="cooperative id")]
ProductId = Annotated[str, Path(pattern=_ID, description="product id")]


class ProductFields(BaseModel):
    """What a product's label and registration say."""

    model_config = ConfigDict(extra="forbid")

    trade_name: str = Field(min_length=1, max_length=200, description="tên thương mại")
    active_ingredient: str = Field(min_length=1, max_length=200, description="hoạt chất")
    concentration: str = Field(min_length=1, max_length=100, description="e.g. 5% SL, 50 g/L")
    registration_no: str = Field(
        min_length=1, max_length=64, description="Vietnamese registration number (số đăng ký)"
    )
    target: str = Field(min_length=1, max_length=200, description="target pest or disease")
    dose_l_per_ha: float = Field(
        gt=0, le=MAX_DOSE_L_PER_HA, description="recommended spray volume, litres per hectare"
    )
    phi_days: int = Field(
        ge=0, le=MAX_PHI_DAYS, description="pre-harvest interval (thời gian cách ly), days"
    )


class NewProduct(ProductFields):
    """A product to register; ``coop`` defaults to the cooperative of the key (an
    operator must give it)."""

    id: str = Field(pattern=_ID, description="product id, unique within the cooperative")
    coop: str | None = Field(default=None, pattern=_ID)


def _no_product(coop: str, product_id: str) -> HTTPException:
    return HTTPException(
        404,
        detail=f"no product {product_id!r} of cooperative {coop!r} that your key may see;"
        " GET /api/v1/products lists yours",
    )


def _record(coop: str, product_id: str, body: ProductFields) -> ProductRecord:
    return ProductRecord(
        coop=coop,
        id=product_id,
        trade_name=body.trade_name.strip(),
        active_ingredient=body.active_ingredient.strip(),
        concentration=body.concentration.strip(),
        registration_no=body.registration_no.strip(),
        target=body.target.strip(),
        dose_l_per_ha=body.dose_l_per_ha,
        phi_days=body.phi_days,
    )


def _owner(principal: Principal, coop: str | None) -> str:
    if principal.role == "coop":
        if coop is not None and coop != principal.subject:
            raise HTTPException(
                404,
                detail=f"no cooperative {coop!r} that your key may register products for;"
                " leave coop out to register for your own",
            )
        return principal.subject
    if coop is None:
        raise HTTPException(422, detail="request body at 'coop' is required with an operator key")
    return coop


@router.post("/products", status_code=status.HTTP_201_CREATED)
def add_product(
    body: NewProduct, principal: CoopOrOperatorDep, metadata: MetadataDep
) -> dict[str, Any]:
    """Register a product for a cooperative (409 when it already has that id)."""
    coop = _owner(principal, body.coop)
    try:
        return metadata.add_product(_record(coop, body.id, body)).to_dict()
    except MetadataConflictError as exc:
        raise HTTPException(409, detail=str(exc)) from exc


@router.get("/products")
def list_products(
    principal: PrincipalDep,
    metadata: MetadataDep,
    coop: Annotated[str | None, Query(pattern=_ID, description="only this cooperative's")] = None,
) -> list[dict[str, Any]]:
    """The products the caller may see, by cooperative then id: a cooperative its own, an
    operator every one (or one cooperative's); farmers see products in their diary."""
    if principal.role == "farmer":
        return []
    if principal.role == "coop":
        if coop is not None and coop != principal.subject:
            return []
        coop = principal.subject
    return [p.to_dict() for p in metadata.products(coop)]


@router.get("/products/{coop}/{product_id}")
def get_product(
    coop: CoopId, product_id: ProductId, principal: PrincipalDep, metadata: MetadataDep
) -> dict[str, Any]:
    """One product of a cooperative."""
    record = metadata.product(coop, product_id) if can_see_drone(principal, coop) else None
    if record is None:
        raise _no_product(coop, product_id)
    return record.to_dict()


@router.put("/products/{coop}/{product_id}")
def put_product(
    coop: CoopId,
    product_id: ProductId,
    body: ProductFields,
    principal: CoopOrOperatorDep,
    metadata: MetadataDep,
) -> dict[str, Any]:
    """Change a product. Diary entries already written keep the product as it was when
    they were written; an entry written later (a job corrected, late data) takes it as
    it is then."""
    if not can_see_drone(principal, coop) or metadata.product(coop, product_id) is None:
        raise _no_product(coop, product_id)
    try:
        return metadata.update_product(_record(coop, product_id, body)).to_dict()
    except MetadataConflictError as exc:
        raise _no_product(coop, product_id) from exc
