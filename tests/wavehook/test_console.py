"""The console script pauses the garbage collector while the command line starts, never while a command runs."""

from __future__ import annotations

import gc
import json
import subprocess
import sys

from click.testing import CliRunner

from tests.support import ROOT
from wavehook.cli import main

# The console script's own start, observed from inside the command it ends up running.
PROBE = """
import gc, json, sys
import wavehook.commands.submitter as commands

seen = {}
original = commands.models.callback

def models(*args, **kwargs):
    seen["collecting"] = gc.isenabled()
    return original(*args, **kwargs)

commands.models.callback = models
import wavehook.console
sys.argv = ["wavehook", "models"]
try:
    wavehook.console.main()
except SystemExit:
    pass
print(json.dumps(seen), file=sys.stderr)
"""


def test_a_command_runs_with_the_collector_on() -> None:
    """Whoever paused the collector before the command line (the console script), the command runs with it on."""
    gc.disable()
    try:
        result = CliRunner().invoke(main, ["models"])
        collecting = gc.isenabled()
    finally:
        gc.enable()
    assert result.exit_code == 0, result.output
    assert collecting


def test_the_console_script_runs_its_command_with_the_collector_on() -> None:
    """``wavehook.console.main`` (the ``wavehook`` script, ``python -m wavehook``) turns the collector back on
    before the command runs."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(done.stderr.strip().splitlines()[-1]) == {"collecting": True}
