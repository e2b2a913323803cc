"""The shipped deployment files as tests read them: deploy/mosquitto.conf, docker-compose.yml."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import yaml

from tests.servers import REPO

SHIPPED_CONF: Final = REPO / "deploy" / "mosquitto.conf"
COMPOSE_FILE: Final = REPO / "docker-compose.yml"


def directives(text: str) -> list[tuple[str, str]]:
    """(name, value) of each Mosquitto configuration line, comments and blank lines left out."""
    pairs = []
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.strip().partition(" ")
            pairs.append((name, value.strip()))
    return pairs


def compose_service(name: str) -> dict[str, Any]:
    """One service of ``docker-compose.yml`` as parsed YAML."""
    doc = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    service: dict[str, Any] = doc["services"][name]
    return service


def unescape_compose(words: Sequence[str]) -> list[str]:
    """What docker compose runs for a list-form command: ``$$`` stands for ``$``."""
    return [w.replace("$$", "$") for w in words]
