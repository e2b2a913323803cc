"""VietQR: the NAPAS payload a Vietnamese banking app scans to pay a bank account.

The payload is EMVCo merchant-presented QR (MPM) text: fields ``ID LEN VALUE`` with a
two-digit id and a two-digit length. NAPAS's VietQR profile for a transfer to an account:

====  =================================================================================
00    payload format indicator ``01``
01    point of initiation ``12`` (dynamic: the amount is fixed)
38    merchant account: ``00`` NAPAS's GUID ``A000000727``, ``01`` the beneficiary
      (``00`` the bank's 6-digit BIN, ``01`` the account number), ``02`` the service
      ``QRIBFTTA`` (inter-bank fast transfer to an account)
53    currency ``704`` (VND, ISO 4217)
54    amount: whole đồng
58    country ``VN``
62    additional data: ``08`` purpose (the transfer's content, here the invoice reference)
63    CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) of everything before it, ``6304`` included,
      as 4 upper-case hex digits
====  =================================================================================

``payload`` builds one, ``decode`` reads one back (checking the CRC); both refuse what a
bank would not take, with a message naming the fix. docs/reports.md, "Invoices".
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Final

NAPAS_GUID: Final = "A000000727"
SERVICE_TO_ACCOUNT: Final = "QRIBFTTA"
CURRENCY_VND: Final = "704"
COUNTRY_VN: Final = "VN"
#: The longest transfer content (purpose, 62-08) this module writes.
MAX_REFERENCE: Final = 25
#: NAPAS account numbers: 1 to 19 letters or digits.
MAX_ACCOUNT: Final = 19
#: An amount is at most 13 digits (EMVCo field 54).
MAX_AMOUNT_DIGITS: Final = 13
#: Bank account names as banks print them: upper-case ASCII, no diacritics.
MAX_ACCOUNT_NAME: Final = 70

_BIN_RE: Final = re.compile(r"[0-9]{6}")
_ACCOUNT_RE: Final = re.compile(rf"[A-Za-z0-9]{{1,{MAX_ACCOUNT}}}")
_REFERENCE_RE: Final = re.compile(rf"[A-Za-z0-9 .\-]{{1,{MAX_REFERENCE}}}")
_NAME_RE: Final = re.compile(rf"[A-Z0-9 .,&()/\-]{{1,{MAX_ACCOUNT_NAME}}}")


class VietQRError(ValueError):
    """A VietQR payload cannot be made or read; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class VietQR:
    """What a VietQR transfer payload says."""

    bank_bin: str
    account: str
    amount_vnd: int
    reference: str


def crc16_ccitt_false(data: bytes) -> int:
    """CRC-16/CCITT-FALSE: polynomial 0x1021, initial value 0xFFFF, no reflection, no xor-out
    (the check value of ``b"123456789"`` is 0x29B1)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
        crc &= 0xFFFF
    return crc


def _tlv(tag: str, value: str) -> str:
    if len(value) > 99:
        raise VietQRError(f"EMVCo field {tag} holds {len(value)} characters, at most 99")
    return f"{tag}{len(value):02d}{value}"


def check_bank(bank_bin: str, account: str) -> None:
    """Refuse a BIN that is not 6 digits or an account that is not 1-19 letters or digits."""
    if _BIN_RE.fullmatch(bank_bin) is None:
        raise VietQRError(
            f"bank BIN {bank_bin!r} must be the bank's 6-digit NAPAS code (e.g. 970405 for"
            " Agribank), as listed by NAPAS"
        )
    if _ACCOUNT_RE.fullmatch(account) is None:
        raise VietQRError(
            f"bank account {account!r} must be 1 to {MAX_ACCOUNT} letters or digits, without"
            " spaces or dashes"
        )


def _check_amount(amount_vnd: int) -> None:
    if isinstance(amount_vnd, bool) or not isinstance(amount_vnd, int):
        raise VietQRError(f"amount {amount_vnd!r} must be a whole number of đồng (int)")
    if amount_vnd <= 0 or len(str(amount_vnd)) > MAX_AMOUNT_DIGITS:
        raise VietQRError(
            f"amount {amount_vnd} VND must be above 0 and at most {MAX_AMOUNT_DIGITS} digits"
        )


def _check_reference(reference: str) -> None:
    if _REFERENCE_RE.fullmatch(reference) is None:
        raise VietQRError(
            f"reference {reference!r} must be 1 to {MAX_REFERENCE} ASCII letters, digits,"
            " spaces, '.' or '-' (no diacritics: banking apps drop or garble them)"
        )


def payload(bank_bin: str, account: str, amount_vnd: int, reference: str) -> str:
    """The VietQR text for a transfer of ``amount_vnd`` đồng to ``account`` at the bank
    ``bank_bin``, with ``reference`` as the transfer's content."""
    check_bank(bank_bin, account)
    _check_amount(amount_vnd)
    _check_reference(reference)
    beneficiary = _tlv("00", bank_bin) + _tlv("01", account)
    merchant = _tlv("00", NAPAS_GUID) + _tlv("01", beneficiary) + _tlv("02", SERVICE_TO_ACCOUNT)
    body = (
        _tlv("00", "01")
        + _tlv("01", "12")
        + _tlv("38", merchant)
        + _tlv("53", CURRENCY_VND)
        + _tlv("54", str(amount_vnd))
        + _tlv("58", COUNTRY_VN)
        + _tlv("62", _tlv("08", reference))
        + "6304"
    )
    return f"{body}{crc16_ccitt_false(body.encode('ascii')):04X}"


def parse_tlv(text: str) -> dict[str, str]:
    """The fields of an EMVCo TLV string by id; ``VietQRError`` if it does not parse."""
    out: dict[str, str] = {}
    i = 0
    while i < len(text):
        head = text[i : i + 4]
        if len(head) < 4 or not head.isdigit():
            raise VietQRError(f"EMVCo field at offset {i}: {head!r} is not an id and a length")
        tag, size = head[:2], int(head[2:])
        value = text[i + 4 : i + 4 + size]
        if len(value) != size:
            raise VietQRError(f"EMVCo field {tag} at offset {i} is cut short")
        if tag in out:
            raise VietQRError(f"EMVCo field {tag} appears twice")
        out[tag] = value
        i += 4 + size
    return out


def decode(text: str) -> VietQR:
    """Read a VietQR transfer payload back, checking its CRC and every field ``payload``
    writes; ``VietQRError`` naming the first problem."""
    if not text.isascii() or len(text) < 8 or text[-8:-4] != "6304":
        raise VietQRError("a VietQR payload ends with its CRC field 63 (6304 and 4 hex digits)")
    expected = f"{crc16_ccitt_false(text[:-4].encode('ascii')):04X}"
    if text[-4:].upper() != expected:
        raise VietQRError(f"CRC {text[-4:]!r} does not match the payload (expected {expected})")
    fields = parse_tlv(text)
    fixed = {"00": "01", "53": CURRENCY_VND, "58": COUNTRY_VN}
    for tag, value in fixed.items():
        if fields.get(tag) != value:
            raise VietQRError(f"field {tag} is {fields.get(tag)!r}, expected {value!r}")
    if fields.get("01") not in ("11", "12"):
        raise VietQRError(f"field 01 (point of initiation) is {fields.get('01')!r}")
    merchant = parse_tlv(fields.get("38", ""))
    if merchant.get("00") != NAPAS_GUID or merchant.get("02") != SERVICE_TO_ACCOUNT:
        raise VietQRError("field 38 is not a NAPAS transfer to an account")
    beneficiary = parse_tlv(merchant.get("01", ""))
    bank_bin, account = beneficiary.get("00", ""), beneficiary.get("01", "")
    check_bank(bank_bin, account)
    amount = fields.get("54", "")
    if not amount.isdigit():
        raise VietQRError(f"field 54 (amount) is {amount!r}, not whole đồng")
    reference = parse_tlv(fields.get("62", "")).get("08", "")
    return VietQR(bank_bin, account, int(amount), reference)


def account_name(text: str) -> str:
    """An account holder's name as Vietnamese banks show it: diacritics removed (đ → D),
    upper case, single spaces (``"HTX Hồng Phong"`` → ``"HTX HONG PHONG"``); ``VietQRError``
    when anything else than letters, digits, spaces and ``. , & ( ) / -`` is left."""
    plain = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    plain = "".join(ch for ch in plain if unicodedata.category(ch) != "Mn")
    name = " ".join(plain.upper().split())
    if _NAME_RE.fullmatch(name) is None:
        raise VietQRError(
            f"account name {text!r} must be 1 to {MAX_ACCOUNT_NAME} letters, digits, spaces"
            " or . , & ( ) / - (as the bank shows the account holder)"
        )
    return name
