"""Spray diary benchmark (issue 13).

1. Summarizer cost of the diary: the API world's three announced jobs (one with refills,
   one hired, 8 touched fields) rebuilt from a SQLite store, interleaved rounds with the
   diary written (as shipped) and without (``sync_after_summary`` replaced by a no-op),
   medians and their ratio.
2. A season's diaries of a 200-member cooperative: 200 fields x ``--jobs`` entries each
   (realistic entry bodies, flags with GeoJSON places), appended through ``sync_diary``;
   then every field's PDF (one page per season), every field's CSV, and ``diary verify``
   over every chain, timed (goal: the PDFs in <= 10 s).

    .venv/bin/python -m bench.diary [--rounds 5] [--members 200] [--jobs 6]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import flights.service
from fields.registry import load_fields
from fields.stored import to_stored
from fields.synthetic import T0_MS
from reports.diary_render import to_csv, to_pdf
from simulators.geo import DEFAULT_FIELDS_PATH
from storage.diary_chain import verify_chain
from storage.metadata import MetadataDB, ProductRecord, WantedEntry
from storage.sqlite import SqliteStore

DAY_MS = 86_400_000


def _world_store(folder: Path) -> SqliteStore:
    from tests.integration.api_world import jobs

    store = SqliteStore(folder / "telemetry.db")
    for i, job in enumerate(jobs()):
        store.write_samples(job.samples)
        events = [
            dataclasses.replace(
                e,
                ts_ms=e.ts_ms + 1,
                attrs={**e.attrs, "job": f"j-{i}", "product": "validan", "dose_l_per_ha": 40},
            )
            for e in job.events
            if e.type == "job_start"
        ]
        store.write_events([*job.events, *events])
    return store


def _no_diary(*_args: object, **_kwargs: object) -> int:
    return 0


def summarizer(rounds: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"with diary": [], "without diary": []}
    real = getattr(flights.service, "sync_after_summary")  # noqa: B009 -- patched below
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        store = _world_store(folder)
        registry = load_fields(DEFAULT_FIELDS_PATH)
        for r in range(rounds):
            for name in sorted(times, reverse=r % 2 == 1):
                db = MetadataDB(folder / f"m-{r}-{len(name)}.db")
                db.save_fields(to_stored([*registry.fields, *registry.no_spray]))
                db.add_product(
                    ProductRecord("htx-hong-phong", "validan", "V", "v", "5%", "r", "t", 16, 7)
                )
                if name == "without diary":
                    setattr(flights.service, "sync_after_summary", _no_diary)  # noqa: B010
                t = time.perf_counter()
                flights.service.rebuild(
                    store, db, T0_MS - DAY_MS, T0_MS + DAY_MS, now_ms=T0_MS + 3 * DAY_MS
                )
                times[name].append(time.perf_counter() - t)
                setattr(flights.service, "sync_after_summary", real)  # noqa: B010
                db.close()
        store.close()
    return times


def _body(field: str, job: int) -> dict[str, Any]:
    lon, lat = 106.52 + 0.001 * (hash(field) % 100), 21.08
    square = [[lon, lat], [lon + 0.0004, lat], [lon + 0.0004, lat + 0.0004], [lon, lat]]
    where = {"type": "Polygon", "coordinates": [square]}
    return {
        "field_id": field,
        "field_name": f"Ruộng ông Hùng {field}",
        "field_coop": "htx-hong-phong",
        "field_owner": f"nd-{field}",
        "job": f"htx-hong-phong.d-{job % 4}.j-{field}-{job}",
        "job_closed": True,
        "date": f"2026-0{2 + job // 2}-{10 + job:02d}",
        "start": f"2026-0{2 + job // 2}-{10 + job:02d}T07:1{job}:00+07:00",
        "end": f"2026-0{2 + job // 2}-{10 + job:02d}T07:4{job}:00+07:00",
        "coop_name": "HTX Hồng Phong",
        "drone_registration": "VN-UAV-HP01",
        "pilot_name": "Nguyễn Văn Hưng",
        "pilot_licence": "UAV-HP-07",
        "product": {
            "id": "validan",
            "trade_name": "Validan 5SL",
            "active_ingredient": "Validamycin",
            "concentration": "5% SL",
            "registration_no": "VN-1234/BVTV",
            "target": "Bệnh khô vằn",
            "recommended_dose_l_per_ha": 16.0,
            "phi_days": 7,
        },
        "product_id": "validan",
        "planned_dose_l_per_ha": 16.0,
        "applied_l": 2.7,
        "applied_l_per_ha": 16.4,
        "rate_cv_pct": 12.0,
        "field_ha": 0.17,
        "sprayed_ha": 0.165,
        "sprayed_sao": 4.58,
        "coverage_pct": 97.1,
        "coverage_exact": True,
        "wind_mps": 2.0,
        "phi_days": 7,
        "last_spray": "2026-02-10T07:40:00+07:00",
        "safe_harvest_date": "2026-02-17",
        "flights": [f"htx-hong-phong.d-1.{job}"],
        "last_flight": f"htx-hong-phong.d-1.{job}",
        "flags": [
            {
                "code": "no_spray_buffer",
                "message_vi": "Phun trong vùng đệm 15 m quanh vùng cấm phun (40 m²)",
                "message_en": "Sprayed within the 15 m buffer of a no-spray zone (40 m²)",
                "where": where,
                "area_m2": 40.0,
            }
        ],
    }


def season(members: int, jobs: int) -> dict[str, float]:
    from api.routes.diary import diary_entries

    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        db = MetadataDB(Path(tmp) / "m.db")
        fields = [f"f{i:03d}" for i in range(members)]
        t = time.perf_counter()
        for f in fields:
            for j in range(jobs):
                key = f"k{j}"
                db.sync_diary(f, [WantedEntry(key, "htx", "d", j, j + 1, _body(f, j))], {key})
        out["write (sync_diary)"] = time.perf_counter() - t
        t = time.perf_counter()
        entries = {f: diary_entries(db.diary_rows(f), history=False) for f in fields}
        out["read entries"] = time.perf_counter() - t
        header = {"id": "f", "name": "Ruộng", "area_ha": 0.17, "area_sao": 4.72}
        t = time.perf_counter()
        pages = 0
        for f in fields:
            pdf = to_pdf(entries[f], {**header, "id": f}, "vi", period="Vụ Xuân", head_hash="x")
            pages += pdf.count(b"/Type /Page\n") + pdf.count(b"/Type /Page ")
        out[f"{members} PDFs"] = time.perf_counter() - t
        t = time.perf_counter()
        for f in fields:
            to_csv(entries[f], "vi")
        out[f"{members} CSVs"] = time.perf_counter() - t
        t = time.perf_counter()
        report = verify_chain(db.diary_chain())
        assert report.ok
        out[f"verify {sum(report.entries.values())} entries"] = time.perf_counter() - t
        db.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=6)
    args = parser.parse_args()
    print(f"# {platform.python_version()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    times = summarizer(args.rounds)
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, v in times.items():
        print(f"rebuild {k:14s} median {med[k]:.3f} s  ({' / '.join(f'{x:.3f}' for x in v)})")
    print(f"ratio with/without diary: {med['with diary'] / med['without diary']:.2f}x")
    for label, seconds in season(args.members, args.jobs).items():
        print(f"season: {label:28s} {seconds:.2f} s")


if __name__ == "__main__":
    main()
