"""The VietQR payload (reports/vietqr.py): EMVCo fields as NAPAS lays them out, a CRC checked
against an independent implementation, round trips, and every refusal."""

from __future__ import annotations

import binascii

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reports.vietqr import (
    VietQR,
    VietQRError,
    account_name,
    crc16_ccitt_false,
    decode,
    parse_tlv,
    payload,
)


def test_the_crc_is_ccitt_false_by_its_check_value() -> None:
    assert crc16_ccitt_false(b"123456789") == 0x29B1


@given(st.binary(max_size=300))
def test_the_crc_agrees_with_binascii_crc_hqx(data: bytes) -> None:
    assert crc16_ccitt_false(data) == binascii.crc_hqx(data, 0xFFFF)


def test_a_payload_is_napas_fields_in_order_with_a_crc_over_all_before_it() -> None:
    text = payload("970405", "1234567890123", 50_123, "HD2511 NDHP00 ABCD")
    body = (
        "000201"
        "010212"
        "3857"  # 00 GUID (4 + 10) + 01 beneficiary (4 + 27) + 02 service (4 + 8)
        "0010A000000727"
        "01270006970405011312345678901230208QRIBFTTA"
        "5303704"
        "540550123"
        "5802VN"
        "62220818HD2511 NDHP00 ABCD"
        "6304"
    )
    assert text[:-4] == body
    assert text[-4:] == f"{binascii.crc_hqx(body.encode(), 0xFFFF):04X}"


def test_decoding_reads_the_amount_account_and_reference() -> None:
    text = payload("970436", "0071000123456", 1_234_567, "HD2611 AN 7Q")
    assert decode(text) == VietQR("970436", "0071000123456", 1_234_567, "HD2611 AN 7Q")


@given(
    bank=st.from_regex(r"[0-9]{6}", fullmatch=True),
    account=st.from_regex(r"[A-Za-z0-9]{1,19}", fullmatch=True),
    amount=st.integers(1, 10**13 - 1),
    reference=st.from_regex(r"[A-Za-z0-9 .\-]{1,25}", fullmatch=True),
)
def test_every_valid_payload_round_trips(
    bank: str, account: str, amount: int, reference: str
) -> None:
    text = payload(bank, account, amount, reference)
    assert decode(text) == VietQR(bank, account, amount, reference)
    assert text[-4:] == f"{binascii.crc_hqx(text[:-4].encode(), 0xFFFF):04X}"


def test_a_changed_digit_breaks_the_crc() -> None:
    text = payload("970405", "1234567890", 50_000, "HD")
    forged = text.replace("540550000", "540590000")
    with pytest.raises(VietQRError, match="CRC"):
        decode(forged)


def test_a_payload_without_its_crc_field_is_refused() -> None:
    with pytest.raises(VietQRError, match="6304"):
        decode("000201010212")


@pytest.mark.parametrize(
    ("bank", "account", "amount", "reference", "message"),
    [
        ("97040", "1234", 1, "HD", "6-digit"),
        ("97040A", "1234", 1, "HD", "6-digit"),
        ("970405", "", 1, "HD", "1 to 19"),
        ("970405", "12345678901234567890", 1, "HD", "1 to 19"),
        ("970405", "1234-5678", 1, "HD", "1 to 19"),
        ("970405", "1234", 0, "HD", "above 0"),
        ("970405", "1234", -5, "HD", "above 0"),
        ("970405", "1234", 10**13, "HD", "13 digits"),
        ("970405", "1234", 1.0, "HD", "whole number"),
        ("970405", "1234", True, "HD", "whole number"),
        ("970405", "1234", 1, "Hóa đơn", "diacritics"),
        ("970405", "1234", 1, "X" * 26, "1 to 25"),
        ("970405", "1234", 1, "", "1 to 25"),
    ],
)
def test_bad_input_is_refused_naming_the_fix(
    bank: str, account: str, amount: int, reference: str, message: str
) -> None:
    with pytest.raises(VietQRError, match=message):
        payload(bank, account, amount, reference)


def test_tlv_parsing_refuses_a_cut_field() -> None:
    with pytest.raises(VietQRError, match="cut short"):
        parse_tlv("000201" + "5410123")


def test_account_names_lose_diacritics_and_go_upper_case() -> None:
    assert account_name("HTX  Hồng Phong ") == "HTX HONG PHONG"
    assert account_name("Hợp tác xã Đông Triều") == "HOP TAC XA DONG TRIEU"


@pytest.mark.parametrize("name", ["", "   ", "HTX <Hồng>", "X" * 71, "合作社"])
def test_an_account_name_a_bank_would_not_show_is_refused(name: str) -> None:
    with pytest.raises(VietQRError, match="account name"):
        account_name(name)
