"""The web app's message catalogues: the same keys in every language, none empty, and every
key the pages and their script use is in them (no text outside the catalogues)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from web.i18n import LANGS, catalogue

WEB = Path(__file__).resolve().parents[2] / "web"


def _used_keys() -> set[str]:
    script = (WEB / "static" / "app.js").read_text(encoding="utf-8")
    pages = (WEB / "pages.py").read_text(encoding="utf-8")
    pages += (WEB / "firstview.py").read_text(encoding="utf-8")
    used = set(re.findall(r'\bt\("([a-z_]*[a-z])"', script))
    used |= set(re.findall(r"m\[[\"']([a-z_]+)[\"']\]", pages))
    used |= set(re.findall(r'_t\(m, "([a-z_]+)"', pages))
    used |= {
        f"layer_{k}" for k in ("field", "covered", "missed", "overlap", "off_target", "no_spray")
    }
    used |= {f"status_{k}" for k in ("online", "offline", "unknown")}
    return used


def test_every_language_has_the_same_keys() -> None:
    keys = [set(catalogue(lang)) for lang in LANGS]
    assert all(k == keys[0] for k in keys)


@pytest.mark.parametrize("lang", LANGS)
def test_every_used_key_has_a_text(lang: str) -> None:
    messages = catalogue(lang)
    used = _used_keys()
    assert len(used) > 40
    assert used - set(messages) == set()
    assert [k for k, v in messages.items() if not v.strip()] == []


def test_vietnamese_is_written_with_its_diacritics() -> None:
    vi = catalogue("vi")
    assert vi["my_fields"] == "Ruộng của tôi"
    assert vi["sao"] == "sào"
    # Placeholders are the same in both languages.
    en = catalogue("en")
    for key, text in vi.items():
        assert set(re.findall(r"\{\w+\}", text)) == set(re.findall(r"\{\w+\}", en[key])), key
