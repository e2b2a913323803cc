"""The rejected-message log, for operators: what the ingest refused, when and why.

One entry per MQTT message, with how many samples (or events) it lost and the counts by
reason: a batch of 500 bad samples is one entry counting 500. Payload excerpts are raw
bytes (they may be broken JSON, cut UTF-8 or binary), so each is shown twice: as text
(UTF-8, undecodable bytes replaced by U+FFFD) to read, and as base64 to recover the exact
bytes.
"""

from __future__ import annotations

import base64
from collections import Counter
from typing import Annotated, Final

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.auth import OperatorDep
from api.deps import MetadataDep
from api.pagination import CursorError, CursorQuery, decode_cursor, encode_cursor
from api.times import WindowDep, rfc3339
from storage.metadata import RejectedMessage

router = APIRouter(tags=["rejected"])

MAX_LIMIT: Final = 1000

#: The most messages of one millisecond a cursor may say were shown already (its ``skip``:
#: the next page reads ``skip + limit + 1`` rows). Far above what one millisecond logs; a
#: cursor outside 0..MAX_SKIP is not one this list handed out (422).
MAX_SKIP: Final = 10_000


class Rejection(BaseModel):
    """One rejected message: its first reason and detail, and what it lost."""

    received: str
    topic: str
    reason: str
    detail: str
    count: int
    by_reason: dict[str, int]
    payload_text: str
    payload_base64: str
    payload_bytes: int


class RejectedLog(BaseModel):
    """The rejections received in a window, oldest first, with counts by reason."""

    from_: str = Field(serialization_alias="from")
    to: str
    limit: int
    returned: int
    more: bool
    next_cursor: str | None
    returned_by_reason: dict[str, int]
    all_time_by_reason: dict[str, int]
    messages: list[Rejection]


def rejection(r: RejectedMessage) -> Rejection:
    """The API form of one logged rejection."""
    return Rejection(
        received=rfc3339(r.received_ms),
        topic=r.topic,
        reason=r.reason,
        detail=r.detail,
        count=r.count,
        by_reason=r.reasons,
        payload_text=r.payload_excerpt.decode("utf-8", errors="replace"),
        payload_base64=base64.b64encode(r.payload_excerpt).decode("ascii"),
        payload_bytes=len(r.payload_excerpt),
    )


@router.get("/rejected")
def rejected(
    _operator: OperatorDep,
    metadata: MetadataDep,
    window: WindowDep,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="most messages per page (oldest first)")
    ] = 100,
    cursor: CursorQuery = None,
) -> RejectedLog:
    """Rejected messages received in [from, to), oldest first (operators only; others 403).

    ``more`` is true when the window holds more than ``limit``: pass ``next_cursor`` back
    as ``cursor`` for the next page. ``returned_by_reason`` counts the samples (or events;
    1 per message refused whole) the messages on this page lost, by reason;
    ``all_time_by_reason`` the same over the whole log, as far as its retention keeps it.
    """
    # The log is read by (received, id); the cursor holds the last received time shown and
    # how many of that millisecond were shown (the id is not read out of the store).
    after = decode_cursor("rejected", cursor, (int, int))
    start_ms, skip = window.start_ms, 0
    if after is not None:
        after_ms, after_seen = int(after[0]), int(after[1])
        if not 0 <= after_seen <= MAX_SKIP:
            raise CursorError("not a cursor of this list (rejected): malformed key")
        if after_ms >= window.start_ms:
            start_ms, skip = after_ms, after_seen
    rows = metadata.rejected_messages(start_ms, window.end_ms, skip + limit + 1)[skip:]
    shown = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last_ms = shown[-1].received_ms
        same = sum(1 for r in shown if r.received_ms == last_ms)
        seen = same + (skip if last_ms == start_ms and after is not None else 0)
        next_cursor = encode_cursor("rejected", (last_ms, seen))
    returned: Counter[str] = Counter()
    for r in shown:
        returned.update(r.reasons)
    return RejectedLog(
        from_=window.start,
        to=window.end,
        limit=limit,
        returned=len(shown),
        more=next_cursor is not None,
        next_cursor=next_cursor,
        returned_by_reason=dict(sorted(returned.items())),
        all_time_by_reason=metadata.rejected_counts(),
        messages=[rejection(r) for r in shown],
    )
