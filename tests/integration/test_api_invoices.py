"""Invoices over real HTTP (``GET /api/v1/reports/usage?format=pdf``), from flights summarized
out of both real stores: one per member billing exactly the member's row of the JSON report,
with a VietQR code that an independent decoder reads back to that amount (CRC checked)."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import httpx
import pypdf
import pytest
import zxingcpp

from reports.vietqr import decode
from storage.metadata import BankAccount
from tests.integration.api_world import HP, THE_DAY, YT, World

pytestmark = pytest.mark.integration

BANK = BankAccount("970405", "1500201234567", "HTX HONG PHONG")


@pytest.fixture(scope="module", autouse=True)
def hong_phong_has_a_bank_account(world: World) -> Iterator[None]:
    """Hồng Phong has set its account; Yên Thọ has not."""
    world.metadata.set_bank(HP, BANK)
    return iter([None])


def get(world: World, who: str, **params: str) -> httpx.Response:
    return httpx.get(
        f"{world.url}/api/v1/reports/usage",
        params={**THE_DAY, **params},
        headers=world.headers[who],
        timeout=60,
    )


def pages(response: httpx.Response) -> list[pypdf.PageObject]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    return list(pypdf.PdfReader(io.BytesIO(response.content)).pages)


def scanned(page: pypdf.PageObject) -> list[str]:
    return [code.text for image in page.images for code in zxingcpp.read_barcodes(image.image)]


def vnd(amount: int) -> str:
    return f"{amount:,}".replace(",", ".")


def test_a_coop_gets_one_invoice_per_member_with_the_reports_amounts(world: World) -> None:
    report = get(world, "coop_hp").json()
    response = get(world, "coop_hp", format="pdf")
    [invoice, summary] = [p.extract_text() for p in pages(response)]
    [row] = report["rows"]
    assert "PHIẾU THANH TOÁN DỊCH VỤ PHUN THUỐC BẰNG MÁY BAY" in invoice
    assert "Thành viên: Nguyễn Văn Hưng (nd-hp-00)" in invoice
    assert "Hợp tác xã: HTX Hồng Phong (htx-hong-phong)" in invoice
    assert "Số tài khoản: 1500201234567" in invoice
    assert "Số phiếu: htx-hong-phong/20251128/nd-hp-00" in invoice
    assert "28/11/2025" in invoice
    assert "(dt-hp-004)" in invoice  # the one field its job named
    assert f"Số tiền: {vnd(row['amount_vnd'])} VND" in invoice
    assert "300.000 VND/ha" in invoice
    total = vnd(report["totals"]["amount_vnd"])
    assert f"Tổng cộng theo báo cáo sử dụng\n{total}" in summary
    assert (
        'filename="agridrone-invoices-htx-hong-phong-20251128-20251128.pdf"'
        in (response.headers["content-disposition"])
    )


def test_the_vietqr_code_pays_the_invoice_total_into_the_coops_account(world: World) -> None:
    [row] = get(world, "coop_hp").json()["rows"]
    first = pages(get(world, "coop_hp", format="pdf"))[0]
    [text] = scanned(first)
    paid = decode(text)  # raises unless the CRC and every field are right
    assert (paid.bank_bin, paid.account) == (BANK.bank_bin, BANK.account)
    assert paid.amount_vnd == row["amount_vnd"] > 0
    match = re.search(r"Nội dung chuyển khoản: (HD2511 NDHP00 [A-Z2-7]{8})", first.extract_text())
    assert match is not None
    assert paid.reference == match.group(1)


def test_without_a_bank_account_the_invoices_say_so_and_have_no_code(world: World) -> None:
    report = get(world, "operator", coop=YT).json()
    found = pages(get(world, "operator", coop=YT, format="pdf"))
    assert len(found) == len(report["rows"]) + 1  # the summary
    for page, row in zip(found, report["rows"], strict=False):
        text = page.extract_text()
        assert "chưa đăng ký tài khoản ngân hàng" in text
        assert f"Số tiền: {vnd(row['amount_vnd'])} VND" in text
        assert len(page.images) == 0


def test_invoices_in_english(world: World) -> None:
    text = pages(get(world, "coop_hp", format="pdf", lang="en"))[0].extract_text()
    assert "INVOICE: DRONE SPRAYING SERVICE" in text
    assert "Nguyễn Văn Hưng" in text
    assert "2025-11-28" in text


def test_invoices_are_per_member_only(world: World) -> None:
    response = get(world, "coop_hp", format="pdf", group_by="field")
    assert response.status_code == 422
    assert "one invoice per member" in response.json()["detail"]


def test_invoices_follow_the_reports_rules(world: World) -> None:
    assert get(world, "farmer_hp00", format="pdf").status_code == 403
    assert get(world, "coop_hp", coop=YT, format="pdf").status_code == 404
    world.metadata.set_coop("htx-no-price", name="HTX chưa có giá")
    refused = get(world, "operator", coop="htx-no-price", format="pdf")
    assert refused.status_code == 409
    assert "--tariff-vnd-per-ha" in refused.json()["detail"]
