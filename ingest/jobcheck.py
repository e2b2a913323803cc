"""A drone's ``job_start`` at ingest: a product its cooperative has not registered, or a dose
no sprayer applies, is refused with a rejected-log reason and not stored; the event itself
(its job, fields and other details: what billing needs) is stored without that key.

The summarizer still checks every detail (flights/jobs.py, docs/diary.md): it is the second
line of defence for events stored before this check and for corrections.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Final

from flights.jobs import check_detail
from storage.contract import StoreUnavailableError
from storage.records import Event

log = logging.getLogger(__name__)

#: Rejected-log reason of a ``job_start`` naming a product its cooperative has not registered.
UNKNOWN_PRODUCT: Final = "unknown_product"
#: Rejected-log reason of a ``job_start`` whose dose is not in (0, 500] L/ha.
BAD_DOSE: Final = "bad_dose_l_per_ha"

#: Whether cooperative ``coop`` has registered product ``product_id``.
KnownProduct = Callable[[str, str], bool]


@dataclass(frozen=True, slots=True)
class DroppedDetail:
    """One detail of a ``job_start`` not stored: the reason and what to fix."""

    reason: str
    detail: str


def check_job_start(
    event: Event, known_product: KnownProduct | None
) -> tuple[Event, list[DroppedDetail]]:
    """The event to store (without the product or dose it may not keep) and why each was
    dropped; any other event, or a ``job_start`` with nothing wrong, comes back as it is."""
    if event.type != "job_start":
        return event, []
    attrs = event.attrs
    dropped: list[DroppedDetail] = []
    where = _job(event)
    product = attrs.get("product")
    if (
        known_product is not None
        and product is not None
        and (not isinstance(product, str) or not known_product(event.coop, product))
    ):
        dropped.append(
            DroppedDetail(
                UNKNOWN_PRODUCT,
                f"{where}: product {_shown(product)} is not registered by cooperative"
                f" {event.coop}; register it (agridrone products add / POST"
                f" /api/v1/products) or correct the job ({_fix(event)})",
            )
        )
    if "dose_l_per_ha" in attrs:
        _, problem = check_detail("dose_l_per_ha", attrs["dose_l_per_ha"])
        if problem is not None:
            dropped.append(
                DroppedDetail(BAD_DOSE, f"{where}: {problem.message}; correct it ({_fix(event)})")
            )
    if not dropped:
        return event, []
    gone = {"product" if d.reason == UNKNOWN_PRODUCT else "dose_l_per_ha" for d in dropped}
    kept = {k: v for k, v in attrs.items() if k not in gone}
    return replace(event, attrs=kept), dropped


def _job(event: Event) -> str:
    job = event.attrs.get("job")
    if isinstance(job, str) and job:
        return f"job_start of job {job}"
    return f"job_start at ts {event.ts_ms}"


def _fix(event: Event) -> str:
    """How the cooperative corrects the job (by its API id when the event names one)."""
    job = event.attrs.get("job")
    if isinstance(job, str) and job:
        return f"PUT /api/v1/jobs/{event.coop}.{event.drone}.{job}"
    return "send the job_start again with a job id and a valid value"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class RegisteredProducts:
    """Whether a cooperative registered a product, cached for the ingest path.

    A known product is trusted for ``refresh_s``; an unknown one is asked again after
    ``miss_refresh_s``, so a product registered a moment ago is let in without a restart.
    A lookup the metadata store cannot answer admits the product (the summarizer flags it
    later): this check must never stop ingest.
    """

    def __init__(
        self,
        lookup: Callable[[str, str], object | None],
        refresh_s: float = 60.0,
        miss_refresh_s: float = 1.0,
        max_entries: int = 10_000,
    ) -> None:
        self._lookup = lookup
        self.refresh_s = refresh_s
        self.miss_refresh_s = miss_refresh_s
        self.max_entries = max_entries
        self._seen: dict[tuple[str, str], tuple[bool, float]] = {}
        self._lock = threading.Lock()

    def __call__(self, coop: str, product_id: str) -> bool:
        key = (coop, product_id)
        now = time.monotonic()
        with self._lock:
            cached = self._seen.get(key)
            if cached is not None:
                known, at = cached
                if now - at < (self.refresh_s if known else self.miss_refresh_s):
                    return known
            try:
                known = self._lookup(coop, product_id) is not None
            except StoreUnavailableError as exc:
                log.warning("product_check_skipped coop=%s error=%r", coop, str(exc))
                return True
            if len(self._seen) >= self.max_entries:
                self._seen.clear()
            self._seen[key] = (known, now)
            return known
