"""A job_start's product and dose at ingest (ingest.jobcheck): an unregistered product or an
implausible dose is dropped with a reason naming what to fix; the event is kept."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from ingest.inbox import Received
from ingest.jobcheck import RegisteredProducts, check_job_start
from ingest.worker import decode_batch
from storage.contract import StoreUnavailableError
from storage.records import Event

REGISTERED = {("htx-yen-tho", "anvil")}


def known(coop: str, product_id: str) -> bool:
    return (coop, product_id) in REGISTERED


def start(**attrs: Any) -> Event:
    return Event(
        "htx-yen-tho", "d-yt-a", 1_000, "job_start", {"job": "j-7", "field": "f1", **attrs}
    )


def test_an_unregistered_product_is_dropped_naming_the_product_the_coop_and_the_fix() -> None:
    kept, [dropped] = check_job_start(start(product="validan", dose_l_per_ha=18), known)
    assert kept.attrs == {"job": "j-7", "field": "f1", "dose_l_per_ha": 18}
    assert dropped.reason == "unknown_product"
    assert dropped.detail == (
        "job_start of job j-7: product 'validan' is not registered by cooperative htx-yen-tho;"
        " register it (agridrone products add / POST /api/v1/products) or correct the job"
        " (PUT /api/v1/jobs/htx-yen-tho.d-yt-a.j-7)"
    )


def test_a_registered_product_and_a_plausible_dose_pass_untouched() -> None:
    event = start(product="anvil", dose_l_per_ha=500)
    assert check_job_start(event, known) == (event, [])


@pytest.mark.parametrize("dose", [600, 0, -1, "18", True])
def test_a_dose_outside_0_to_500_is_dropped(dose: Any) -> None:
    kept, [dropped] = check_job_start(start(product="anvil", dose_l_per_ha=dose), known)
    assert kept.attrs == {"job": "j-7", "field": "f1", "product": "anvil"}
    assert dropped.reason == "bad_dose_l_per_ha"
    assert dropped.detail.startswith("job_start of job j-7: dose_l_per_ha ")
    assert "PUT /api/v1/jobs/htx-yen-tho.d-yt-a.j-7" in dropped.detail


def test_a_product_that_is_not_text_is_unknown() -> None:
    kept, [dropped] = check_job_start(start(product=12), known)
    assert "product" not in kept.attrs
    assert "product 12 is not registered" in dropped.detail


def test_without_a_lookup_the_product_is_not_checked_but_the_dose_is() -> None:
    kept, [dropped] = check_job_start(start(product="anything", dose_l_per_ha=900), None)
    assert kept.attrs["product"] == "anything"
    assert dropped.reason == "bad_dose_l_per_ha"


def test_other_events_are_never_checked() -> None:
    event = Event("htx-yen-tho", "d-yt-a", 1, "job_end", {"product": "x", "dose_l_per_ha": 900})
    assert check_job_start(event, known) == (event, [])


def test_a_message_with_both_problems_is_one_row_and_its_event_is_kept() -> None:
    payload = orjson.dumps(
        {
            "v": 1,
            "ts": 1_764_300_000_000,
            "type": "job_start",
            "job": "j-7",
            "product": "x",
            "dose_l_per_ha": 600,
        }
    )
    message = Received(0, 1, 1, "agri/v1/htx-yen-tho/d-yt-a/event", payload, 1_764_300_000_500)
    out = decode_batch([message], known_product=known)
    [event] = out.events
    assert event.attrs == {"job": "j-7"}
    [row] = out.rejected
    assert (row.reason, row.count) == ("unknown_product", 2)
    assert row.reasons == {"unknown_product": 1, "bad_dose_l_per_ha": 1}


def test_products_are_cached_and_an_unknown_one_is_asked_again_after_a_while() -> None:
    asked: list[tuple[str, str]] = []
    registry: set[tuple[str, str]] = set()

    def lookup(coop: str, product_id: str) -> object | None:
        asked.append((coop, product_id))
        return object() if (coop, product_id) in registry else None

    check = RegisteredProducts(lookup, refresh_s=3600, miss_refresh_s=3600)
    assert not check("c", "p")
    registry.add(("c", "p"))
    assert not check("c", "p")  # the miss is cached
    assert len(asked) == 1
    check.miss_refresh_s = 0.0
    assert check("c", "p")
    assert check("c", "p")  # the hit is cached
    assert len(asked) == 2


def test_a_metadata_outage_admits_the_product() -> None:
    def down(coop: str, product_id: str) -> object | None:
        raise StoreUnavailableError("metadata down")

    assert RegisteredProducts(down)("c", "p")
