"""The ``agridrone`` command: every command listed, only the chosen one imported."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import shapely

from agridrone import cli
from fields.synthetic import collection, feature

#: What a coverage run must not pay for: the API, the MQTT client, the settings machinery.
SERVER_MODULES = ("fastapi", "uvicorn", "paho", "pydantic_settings", "pydantic", "httpx")


def registered(module: str) -> dict[str, str | None]:
    """Command name -> help line of what ``module.register`` adds."""
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    importlib.import_module(module).register(sub)
    return {action.dest: action.help for action in sub._choices_actions}


def test_the_command_table_matches_what_each_module_registers() -> None:
    actual = {
        name: (module, help_line)
        for module in cli.COMMAND_MODULES
        for name, help_line in registered(module).items()
    }
    assert actual == cli.COMMANDS


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for name, (_, help_line) in cli.COMMANDS.items():
        assert name in out
        assert help_line.split()[0] in out


def test_a_misspelt_command_is_refused_naming_the_commands(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["coverag"])
    assert exit_.value.code == 2
    assert "invalid choice: 'coverag'" in capsys.readouterr().err


def test_a_command_still_gets_its_own_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["coverage", "--help"])
    assert "--track" in capsys.readouterr().out


def test_a_coverage_run_imports_neither_the_api_nor_mqtt_nor_settings(tmp_path: Path) -> None:
    fields = tmp_path / "fields.geojson"
    fields.write_text(json.dumps(collection(feature("f", shapely.box(0, 0, 50, 50)))))
    track = tmp_path / "t.csv"
    track.write_text(
        "ts,lat,lon,spraying,swath_m\n0,21.0801,106.52,1,6\n100,21.0801,106.5201,1,6\n"
    )
    script = (
        "import sys, json\n"
        "from agridrone.cli import main\n"
        f"code = main(['coverage', '--field', {str(fields)!r}, '--track', {str(track)!r}])\n"
        "print(json.dumps([code, sorted(sys.modules)]))\n"
    )
    # No AGRIDRONE_* settings in the environment: a plain offline run, as a farmer makes it.
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("AGRIDRONE_")}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env
    )
    code, modules = json.loads(done.stdout.splitlines()[-1])
    assert code == 0
    assert "fields.coverage" in modules
    loaded = {m.split(".")[0] for m in modules}
    assert not loaded & set(SERVER_MODULES)
