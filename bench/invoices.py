"""A season's diaries and a month's invoices of a 200-member cooperative, as PDF (issue 13,
part 7; goal: both in <= 10 s).

Set-up (not timed): ``--members`` members with one field each; every field's diary holds
``--jobs`` entries of one season (bodies as the summarizer writes them, a flag with a
GeoJSON place each; bench/diary.py), written through ``sync_diary`` into a SQLite metadata
database; ``--flights`` flights per member in March 2026, priced at 160,000 VND/ha, and the
cooperative's bank account.

Timed, baseline and ours interleaved over ``--rounds`` rounds, medians:

- diaries: every field's entries read as the API reads them (``diary_entries``), then one
  PDF per field. Baseline: the diary renderer before this work (bench/baseline_diary_pdf.py,
  every wrapped cell a ReportLab paragraph); ours: ``reports.diary_render``.
- invoices: the usage report by member, its priced pieces, the invoice book, then the PDF
  with one VietQR code per member. Baseline: one PDF per member (the naive loop); ours: one
  PDF holding every invoice and the summary.

After the timing (not timed), every invoice's QR code is scanned back out of our PDF with
zxing-cpp (when installed) and decoded: the amount must equal the invoice's total, the CRC
must hold.

    .venv/bin/python -m bench.invoices [--rounds 3] [--members 200] [--jobs 6] [--flights 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

from bench.baseline_diary_pdf import to_pdf as baseline_diary_pdf
from bench.diary import _body
from reports import diary_render, invoice_pdf
from reports.invoices import InvoiceBook, Payee, invoice_book
from reports.usage import FieldUsage, FlightUsage, Tariff, billed_pieces, usage_report
from reports.vietqr import decode
from storage.metadata import MetadataDB, WantedEntry

HCM: Final = ZoneInfo("Asia/Ho_Chi_Minh")
COOP: Final = "htx-hong-phong"
PAYEE: Final = Payee("970405", "1500201234567", "HTX HONG PHONG")
TARIFFS: Final = (Tariff(Decimal(160_000)),)
MARCH: Final = (
    int(datetime(2026, 3, 1, tzinfo=HCM).timestamp() * 1000),
    int(datetime(2026, 4, 1, tzinfo=HCM).timestamp() * 1000),
)
GOAL_S: Final = 10.0


def member(i: int) -> str:
    return f"nd-hp-{i:03d}"


def write_diaries(db: MetadataDB, members: int, jobs: int) -> list[str]:
    """Every member's field with a season of entries; the field ids."""
    fields = [f"dt-hp-{i:03d}" for i in range(members)]
    for f in fields:
        wanted = [WantedEntry(f"k{j}", COOP, "d", j, j + 1, _body(f, j)) for j in range(jobs)]
        db.sync_diary(f, wanted, {w.entry_key for w in wanted})
    return fields


def month_flights(members: int, per_member: int) -> list[FlightUsage]:
    """``per_member`` flights over each member's field in March 2026 (0.15-0.17 ha each)."""
    out = []
    for i in range(members):
        for k in range(per_member):
            start = MARCH[0] + ((1 + k * 9 + i % 8) * 24 + 7) * 3_600_000 + i * 60_000
            covered = 0.15 + 0.0001 * ((i * 7 + k * 13) % 200)
            field = FieldUsage(
                f"dt-hp-{i:03d}", f"Ruộng ông Hưng {i}", member(i), 0.17, covered, 2.6, 95.0
            )
            flight = FlightUsage(
                f"{COOP}.d-hp-a.{start}", COOP, "d-hp-a", start, start + 900_000, 900.0, 2.7
            )
            out.append(dataclasses.replace(flight, fields=(field,)))
    return out


def diaries(db: MetadataDB, fields: list[str], render: Callable[..., bytes]) -> tuple[float, int]:
    """Read every field's entries and render its PDF; (seconds, bytes written)."""
    from api.routes.diary import diary_entries

    t = time.perf_counter()
    size = 0
    for f in fields:
        entries = diary_entries(db.diary_rows(f), history=False)
        header = {"id": f, "name": f"Ruộng {f}", "owner_name": "Nguyễn Văn Hưng", "area_ha": 0.17}
        size += len(render(entries, header, "vi", period="Vụ Xuân 2026", head_hash="ab" * 32))
    return time.perf_counter() - t, size


def book(flights: list[FlightUsage], names: dict[str, str]) -> InvoiceBook:
    report = usage_report(
        flights,
        group_by="member",
        tariffs=TARIFFS,
        member_names=names,
        coop=COOP,
        from_ms=MARCH[0],
        to_ms=MARCH[1],
    )
    pieces = billed_pieces(flights, TARIFFS)
    return invoice_book(report, pieces, coop_name="HTX Hồng Phong", payee=PAYEE)


def invoices_one_pdf(flights: list[FlightUsage], names: dict[str, str]) -> tuple[float, bytes]:
    t = time.perf_counter()
    pdf = invoice_pdf.to_pdf(book(flights, names), "vi")
    return time.perf_counter() - t, pdf


def invoices_per_member(flights: list[FlightUsage], names: dict[str, str]) -> float:
    t = time.perf_counter()
    whole = book(flights, names)
    for invoice in whole.invoices:
        invoice_pdf.to_pdf(dataclasses.replace(whole, invoices=(invoice,)), "vi")
    return time.perf_counter() - t


def scan_all(pdf: bytes, expected: InvoiceBook) -> str:
    """Scan every QR code out of the PDF and check it pays its invoice."""
    try:
        import pypdf
        import zxingcpp
    except ImportError:
        return "not scanned (pypdf and zxing-cpp are dev dependencies)"
    pages = pypdf.PdfReader(io.BytesIO(pdf)).pages
    paid = [
        decode(code.text)
        for page in pages
        for image in page.images
        for code in zxingcpp.read_barcodes(image.image)
    ]
    wanted = [(i.amount_vnd, i.reference) for i in expected.invoices]
    got = [(p.amount_vnd, p.reference) for p in paid]
    verdict = "all match" if got == wanted else "MISMATCH"
    return f"{len(paid)} codes scanned and decoded (CRC valid), amounts and references: {verdict}"


def qr_cost(sample: InvoiceBook) -> float:
    """Seconds to encode every invoice's QR image (segno, mask chosen by penalty)."""
    t = time.perf_counter()
    for invoice in sample.invoices:
        payload = invoice.qr_payload(sample.payee)
        if payload is not None:
            invoice_pdf.qr_image(payload)
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=6)
    parser.add_argument("--flights", type=int, default=3)
    args = parser.parse_args()
    print(
        f"# Python {platform.python_version()}, {os.cpu_count()} cores,"
        f" load {os.getloadavg()[0]:.1f} at start"
    )
    names = {member(i): f"Nguyễn Văn Hưng {i}" for i in range(args.members)}
    flights = month_flights(args.members, args.flights)
    diary_render.register_font()
    times: dict[str, list[float]] = {k: [] for k in ("bd", "bi", "od", "oi")}
    with tempfile.TemporaryDirectory() as tmp:
        db = MetadataDB(Path(tmp) / "m.db")
        fields = write_diaries(db, args.members, args.jobs)
        print(
            f"# {args.members} members: {args.members} diaries x {args.jobs} entries;"
            f" {len(flights)} flights in March 2026 to invoice"
        )
        pdf = b""
        for r in range(args.rounds):
            order: list[str] = ["baseline", "ours"] if r % 2 == 0 else ["ours", "baseline"]
            for which in order:
                if which == "baseline":
                    times["bd"].append(diaries(db, fields, baseline_diary_pdf)[0])
                    times["bi"].append(invoices_per_member(flights, names))
                else:
                    times["od"].append(diaries(db, fields, diary_render.to_pdf)[0])
                    seconds, pdf = invoices_one_pdf(flights, names)
                    times["oi"].append(seconds)
            print(
                f"round {r + 1}: baseline diaries {times['bd'][-1]:.2f} s + invoices"
                f" {times['bi'][-1]:.2f} s | ours diaries {times['od'][-1]:.2f} s + invoices"
                f" {times['oi'][-1]:.2f} s   (load {os.getloadavg()[0]:.1f})"
            )
        db.close()
    med = {k: statistics.median(v) for k, v in times.items()}
    base, ours = med["bd"] + med["bi"], med["od"] + med["oi"]
    print(f"median baseline: diaries {med['bd']:.2f} s + invoices {med['bi']:.2f} s = {base:.2f} s")
    print(f"median ours:     diaries {med['od']:.2f} s + invoices {med['oi']:.2f} s = {ours:.2f} s")
    verdict = "met" if ours <= GOAL_S else "NOT met"
    print(f"goal <= {GOAL_S:.0f} s: {verdict} ({ours:.2f} s; baseline/ours {base / ours:.2f}x)")
    sample = book(flights, names)
    print(f"QR encoding alone (segno): {qr_cost(sample):.2f} s for {len(sample.invoices)} codes")
    print(f"invoices PDF: {len(pdf) / 1e6:.1f} MB; {scan_all(pdf, sample)}")


if __name__ == "__main__":
    main()
