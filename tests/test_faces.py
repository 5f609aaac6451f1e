"""Package faces are lazy: importing a light part of wavehook never imports the web stack, and every name a
package exports still resolves on first use."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

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


@pytest.mark.parametrize("package", ["receiver", "receiver.dispatch", "receiver.handlers", "submitter", "sandbox"])
def test_every_exported_name_resolves(package: str) -> None:
    """Each name in ``__all__`` loads on first use, and ``dir()`` lists it."""
    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None
        assert name in dir(module)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = module.nope


# A receiver built as `wavehook serve` builds it (handlers, dispatcher in the web process), started through the
# ASGI lifespan and sent one signed delivery: which of the deferred libraries it has loaded by then.
FIRST_DELIVERY = """
import asyncio, hashlib, hmac, json, sys, time
from receiver.handlers.registry import load_handlers
from receiver.http.app import create_app
from receiver.settings import Settings
from wavehook.checks import catalogued_models

DEFERRED = ("httpx", "prometheus_client", "jinja2", "cryptography", "difflib", "submitter.catalog",
            "receiver.handlers.context", "receiver.handlers.prediction", "receiver.dispatch.execute")
secret, db = sys.argv[1], sys.argv[2]
settings = Settings.from_env({"WAVESPEED_WEBHOOK_SECRET": secret, "WAVEHOOK_DB": db})
app = create_app(settings, handlers=load_handlers(settings, known_models=catalogued_models))

def deferred():
    return sorted(name for name in DEFERRED if name in sys.modules)

async def main():
    events = asyncio.Queue()
    await events.put({"type": "lifespan.startup"})
    answers = asyncio.Queue()
    lifespan = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}}, events.get, answers.put))
    assert (await answers.get())["type"] == "lifespan.startup.complete"
    started = deferred()
    body = json.dumps({"id": "p1", "model": "m", "status": "completed", "outputs": []}).encode()
    stamp = str(int(time.time()))
    digest = hmac.new(secret.encode(), b"w1." + stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    headers = [(b"webhook-id", b"w1"), (b"webhook-timestamp", stamp.encode()),
               (b"webhook-signature", b"v3," + digest.encode()), (b"content-type", b"application/json")]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/webhooks/wavespeed", "raw_path": b"/webhooks/wavespeed", "root_path": "", "query_string": b"",
             "headers": headers, "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000)}
    requests = iter([{"type": "http.request", "body": body, "more_body": False}])
    sent = []
    async def receive():
        return next(requests)
    async def send(message):
        sent.append(message)
    await app(scope, receive, send)
    answered = deferred()
    await events.put({"type": "lifespan.shutdown"})
    await lifespan
    print(json.dumps({"status": sent[0]["status"], "started": started, "answered": answered}))

asyncio.run(main())
"""


def test_a_receiver_answers_its_first_delivery_before_loading_what_can_wait(tmp_path: Path) -> None:
    """Starting and answering a first delivery loads neither httpx (made when a handler run first needs it),
    prometheus-client (at the first scrape, or after some hundred deliveries) nor Jinja (the first page); nor,
    ever, cryptography (the signature is the standard library's HMAC), difflib (the hints of a mistake's
    message) or the submitter's catalog (read only to check a handler glob narrower than ``*``). What calls a
    handler (its Context and Prediction) loads with the first run, not at start."""
    done = subprocess.run(
        [sys.executable, "-c", FIRST_DELIVERY, "a-cold-start-secret", str(tmp_path / "w.db")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["status"] == 200
    assert found["started"] == []
    assert set(found["answered"]).isdisjoint(
        {"prometheus_client", "jinja2", "cryptography", "difflib", "submitter.catalog"}
    )
