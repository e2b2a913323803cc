"""The app's own stylesheet is well formed (a merge once left a rule open, and every rule
after it silently stopped applying)."""

from __future__ import annotations

import re
from pathlib import Path

APP_CSS = Path(__file__).parents[2] / "web" / "static" / "app.css"


def test_every_rule_of_app_css_is_closed_before_the_next_opens() -> None:
    css = re.sub(r"/\*.*?\*/", "", APP_CSS.read_text(encoding="utf-8"), flags=re.DOTALL)
    open_blocks: list[str] = []  # the preludes of the blocks not yet closed
    prelude = ""
    for number, line in enumerate(css.splitlines(), start=1):
        for ch in line:
            if ch == "{":
                # Rules nest only inside at-rules (@media, @supports).
                assert all(p.startswith("@") for p in open_blocks), (
                    f"app.css line {number}: {prelude.strip()!r} opens inside the open rule "
                    f"{open_blocks[-1]!r}"
                )
                open_blocks.append(prelude.strip())
                prelude = ""
            elif ch == "}":
                assert open_blocks, f"app.css line {number}: a brace closes nothing"
                open_blocks.pop()
                prelude = ""
            elif ch == ";":
                prelude = ""
            else:
                prelude += ch
        prelude += " "
    assert not open_blocks, f"app.css ends with {open_blocks[-1]!r} still open"
