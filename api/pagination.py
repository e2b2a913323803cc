"""Cursor pagination shared by every list route.

A cursor is opaque to clients: base64url (no padding) of a JSON array whose first item names
the list it belongs to and whose other items are the *sort key of the last item returned*
(keyset pagination). The next page starts strictly after that key in the list's total order
(every order ends with a unique id), so items added or removed between requests neither
repeat nor hide the items that remain: an item added after the cursor shows on a later page,
one added before it does not (start again to see it).

A cursor is validated, not trusted: anything that does not decode to this list's key shape
is a 422 naming ``cursor``, never a 500 (integers too large for the stores included). It is
not secret and need not be: the role filter runs on every page, so a forged cursor only
moves the start of a list the caller may read anyway. Routes whose list is a bare JSON array
send the next cursor in the ``X-Next-Cursor`` header and a ``Link: <…>; rel="next"`` header
(both absent on the last page); routes answering an object carry ``next_cursor`` (``null``
on the last page).
"""

from __future__ import annotations

import base64
import binascii
import bisect
import itertools
from collections.abc import Callable, Sequence
from typing import Annotated, Final, TypeVar

import orjson
from fastapi import HTTPException, Query, Request, Response

#: A sort key: strings and integers only (ids, epoch ms, counts).
Key = tuple[str | int, ...]
T = TypeVar("T")

#: The longest cursor accepted (a key of a few ids and times is far shorter).
MAX_CURSOR_LENGTH: Final = 1024

#: The largest magnitude of a cursor's integer (JSON allows up to 2^64-1, the stores' 64-bit
#: integers do not; epoch ms and counts stay far below): outside it the cursor is a 422.
MAX_CURSOR_INT: Final = 2**62

CursorQuery = Annotated[
    str | None,
    Query(
        max_length=MAX_CURSOR_LENGTH,
        description="where to continue: the next_cursor (or X-Next-Cursor) of the page before",
    ),
]


class CursorError(HTTPException):
    """A cursor that is not one this list handed out: 422 saying so."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            422,
            detail=f"cursor: {reason}; use the next_cursor of the page before, or none to"
            " start from the beginning",
        )


def encode_cursor(kind: str, key: Key) -> str:
    """The cursor continuing list ``kind`` after the item whose sort key is ``key``."""
    raw = orjson.dumps([kind, *key])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(kind: str, cursor: str | None, shape: Sequence[type]) -> Key | None:
    """The sort key a cursor of list ``kind`` carries (``None`` without a cursor).

    ``shape`` gives the type of each key item (``str`` or ``int``, the latter within
    ±``MAX_CURSOR_INT``); anything else, a cursor of another list included, raises
    ``CursorError`` (422).
    """
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        items = orjson.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise CursorError("not a cursor (it must be passed back exactly as received)") from exc
    if not isinstance(items, list) or not items or items[0] != kind:
        raise CursorError(f"not a cursor of this list ({kind})")
    key = items[1:]
    if len(key) != len(shape) or not all(
        type(value) is want and _in_range(value) for value, want in zip(key, shape, strict=True)
    ):
        raise CursorError(f"not a cursor of this list ({kind}): malformed key")
    return tuple(key)


def _in_range(value: object) -> bool:
    """Whether a key item is a string or an integer the stores can hold (±MAX_CURSOR_INT)."""
    return not isinstance(value, int) or -MAX_CURSOR_INT <= value <= MAX_CURSOR_INT


def page_of(
    kind: str,
    items: Sequence[T],
    key: Callable[[T], Key],
    *,
    after: Key | None,
    limit: int,
    visible: Callable[[T], bool] = lambda _: True,
) -> tuple[list[T], str | None]:
    """One page of ``items`` (sorted by ``key``, keys unique): the first ``limit`` visible
    items after ``after``, and the cursor of the next page (``None`` when none is left).

    Binary search finds the start, so a page costs ``log n`` plus the items it scans.
    """
    start = 0 if after is None else bisect.bisect_right(items, after, key=key)
    shown: list[T] = []
    for item in itertools.islice(items, start, None):
        if not visible(item):
            continue
        if len(shown) == limit:
            return shown, encode_cursor(kind, key(shown[-1]))
        shown.append(item)
    return shown, None


def set_next(request: Request, response: Response, next_cursor: str | None) -> None:
    """Headers of a bare-list page: ``X-Next-Cursor`` and ``Link`` rel=next, if more."""
    if next_cursor is None:
        return
    response.headers["X-Next-Cursor"] = next_cursor
    url = request.url.include_query_params(cursor=next_cursor)
    response.headers["Link"] = f'<{url}>; rel="next"'
