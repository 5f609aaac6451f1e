"""Package faces are lazy: importing a light part of wavehook never imports the web stack, and every name a
package exports still resolves on first use."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

from tests.support import ROOT

WEB_STACK = ("starlette.applications", "jinja2", "prometheus_client", "uvicorn")
PROBE = """
import json, runpy, sys
sys.argv = sys.argv[1:]
target = sys.argv[0]
if target.startswith("-m"):
    try:
        runpy.run_module(target[2:], run_name="__main__")
    except SystemExit:
        pass
else:
    __import__(target)
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def loaded_by(*argv: str) -> set[str]:
    """The modules a fresh interpreter holds after importing (or running, ``-mNAME args``) the target."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "target",
    ["receiver", "receiver.errors", "receiver.settings", "receiver.signature", "receiver.store", "submitter"],
)
def test_importing_a_light_part_leaves_the_web_stack_alone(target: str) -> None:
    """The core, the store and the submitter import neither Starlette's app, Jinja, prometheus-client nor uvicorn."""
    assert loaded_by(target).isdisjoint(WEB_STACK)


@pytest.mark.parametrize("argv", [("-mwavehook", "--help"), ("-mwavehook", "models")], ids=" ".join)
def test_help_and_models_start_without_the_web_stack(argv: tuple[str, ...]) -> None:
    """``wavehook --help`` and ``wavehook models`` run without importing the web stack."""
    assert loaded_by(*argv).isdisjoint(WEB_STACK)


@pytest.mark.parametrize("package", ["receiver", "receiver.dispatch", "submitter", "sandbox"])
def test_every_exported_name_resolves(package: str) -> None:
    """Each name in ``__all__`` loads on first use, and ``dir()`` lists it."""
    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None
        assert name in dir(module)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = module.nope
