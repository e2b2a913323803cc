"""The copyable examples in docs/telemetry.md are valid wire format v1."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.wire import decode_message

DOC = Path(__file__).resolve().parents[2] / "docs" / "telemetry.md"
RECEIVED_MS = 1_795_869_060_000


def examples() -> list[str]:
    """Bodies of the guide's fenced blocks tagged ``json`` or untagged (payload text)."""
    blocks: list[str] = []
    lang: str | None = None
    body: list[str] = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if not line.startswith("```"):
            body.append(line)
        elif lang is None:
            lang, body = line[3:].strip(), []
        else:
            if lang in ("json", ""):
                blocks.append("\n".join(body).strip())
            lang = None
    return blocks


@pytest.mark.parametrize("example", examples())
def test_every_payload_example_in_the_integrator_guide_decodes(example: str) -> None:
    kind = "status" if "state" in example or example in ("online", "offline") else "telemetry"
    kind = "event" if '"type"' in example else kind
    decoded = decode_message(f"agri/v1/htx-dongtrieu/d-07/{kind}", example.encode(), RECEIVED_MS)
    assert decoded.rejections == []
    assert decoded.samples or decoded.events


def test_the_guide_has_an_example_of_each_payload_shape() -> None:
    found = examples()
    assert any('"samples"' in e for e in found)
    assert any('"type"' in e for e in found)
    assert any('"state"' in e for e in found)
    assert "online" in found
    assert len(found) >= 5
