"""The message catalogues: one JSON file per language in ``web/messages`` (Vietnamese first).

The server's pages and the page scripts read the same catalogue (it is embedded in each
page), so every text the user sees is in exactly one place per language.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Final, Literal, cast

Lang = Literal["vi", "en"]
LANGS: Final[tuple[Lang, ...]] = ("vi", "en")
DEFAULT_LANG: Final[Lang] = "vi"
LANG_COOKIE: Final = "agd_lang"
_FOLDER: Final = Path(__file__).parent / "messages"


@functools.cache
def catalogue(lang: Lang) -> dict[str, str]:
    """Every message of ``lang`` by key."""
    data = json.loads((_FOLDER / f"{lang}.json").read_text(encoding="utf-8"))
    return cast(dict[str, str], data)


def pick_lang(value: str | None) -> Lang:
    """The language a cookie or parameter names, Vietnamese when it names none we have."""
    for lang in LANGS:
        if value == lang:
            return lang
    return DEFAULT_LANG
