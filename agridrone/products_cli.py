"""``agridrone products add|list``: a cooperative's plant-protection products, as
``POST /api/v1/products`` registers them (same rules; bad input exits 2)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from pydantic import ValidationError

from agridrone.settings import add_settings_arguments, settings_from_args
from agridrone.stores import open_metadata
from api.routes.products import NewProduct
from storage.metadata import MetadataConflictError, ProductRecord

EXIT_BAD_INPUT = 2


def register(subparsers: Any) -> None:
    """Add the ``products`` sub-command."""
    products: argparse.ArgumentParser = subparsers.add_parser(
        "products", help="a cooperative's plant-protection products for the spray diary"
    )
    actions = products.add_subparsers(dest="products_command", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="register a product for a cooperative")
    add.add_argument("--coop", required=True, help="cooperative id")
    add.add_argument("--id", required=True, dest="product_id", help="product id (in job_start)")
    add.add_argument("--trade-name", required=True, help="tên thương mại, e.g. 'Validan 5SL'")
    add.add_argument("--active-ingredient", required=True, help="hoạt chất")
    add.add_argument("--concentration", required=True, help="e.g. '5% SL'")
    add.add_argument("--registration-no", required=True, help="Vietnamese registration number")
    add.add_argument("--target", required=True, help="target pest or disease")
    add.add_argument(
        "--dose-l-per-ha", required=True, type=float, help="recommended spray volume, L/ha"
    )
    add.add_argument("--phi-days", required=True, type=int, help="pre-harvest interval (days)")
    listing = actions.add_parser("list", help="registered products")
    listing.add_argument("--coop", help="only this cooperative's")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    for p in (add, listing):
        add_settings_arguments(p, "metadata_path")
        p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run one ``products`` action: 0 on success, 2 on bad input."""
    if args.products_command == "add":
        try:
            body = NewProduct(
                id=args.product_id,
                coop=args.coop,
                trade_name=args.trade_name,
                active_ingredient=args.active_ingredient,
                concentration=args.concentration,
                registration_no=args.registration_no,
                target=args.target,
                dose_l_per_ha=args.dose_l_per_ha,
                phi_days=args.phi_days,
            )
        except ValidationError as exc:
            problems = "; ".join(
                f"--{'-'.join(str(p) for p in e['loc']).replace('_', '-')}: {e['msg']}"
                for e in exc.errors()
            )
            sys.stderr.write(f"agridrone products add: {problems}\n")
            return EXIT_BAD_INPUT
    metadata = open_metadata(settings_from_args(args))
    try:
        if args.products_command == "list":
            for p in metadata.products(args.coop):
                sys.stdout.write(_json(p) if args.json else _text(p))
            return 0
        record = ProductRecord(
            coop=args.coop,
            id=body.id,
            trade_name=body.trade_name.strip(),
            active_ingredient=body.active_ingredient.strip(),
            concentration=body.concentration.strip(),
            registration_no=body.registration_no.strip(),
            target=body.target.strip(),
            dose_l_per_ha=body.dose_l_per_ha,
            phi_days=body.phi_days,
        )
        try:
            metadata.add_product(record)
        except MetadataConflictError as exc:
            sys.stderr.write(f"agridrone products add: {exc}\n")
            return EXIT_BAD_INPUT
        sys.stderr.write(f"cooperative {record.coop}: product {record.id} registered\n")
        return 0
    finally:
        metadata.close()


def _json(p: ProductRecord) -> str:
    return json.dumps(p.to_dict(), ensure_ascii=False) + "\n"


def _text(p: ProductRecord) -> str:
    return (
        f"{p.coop}  {p.id}  {p.trade_name} ({p.active_ingredient} {p.concentration}),"
        f" reg. {p.registration_no}, for {p.target}: {p.dose_l_per_ha:g} L/ha,"
        f" PHI {p.phi_days} days\n"
    )
