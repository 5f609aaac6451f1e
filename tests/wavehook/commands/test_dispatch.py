"""The dispatcher's commands: ``wavehook runs``, ``wavehook replay`` and ``wavehook worker --burst``, on every
ledger backend (the tests that take ``env``)."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from structlog.testing import capture_logs

from receiver import logs
from receiver.delivery import parse
from receiver.handlers.registry import default_registry
from receiver.settings import Settings
from receiver.store.ledger import open_ledger
from tests.conftest import SECRET
from tests.support import prediction_body
from wavehook.cli import main
from wavehook.durations import parse_since

MODULE = "wavehook_test_command_handlers"
NOW = 1_800_000_000.0


@pytest.fixture
def env(
    backend: str, settings_factory: Callable[..., Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """A ledger of each backend in turn with three runs of a handler module that fails unless a file exists."""
    configured: list[dict[str, str]] = []
    (tmp_path / f"{MODULE}.py").write_text(
        "import pathlib\n"
        "from receiver.handlers import on\n"
        f"FLAG = pathlib.Path({str(tmp_path)!r}) / 'fixed'\n"
        "@on('*', name='cmd_handler', max_attempts=1)\n"
        "def handle(prediction, ctx):\n"
        "    if not FLAG.exists():\n"
        "        raise RuntimeError('not fixed')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    # The commands configure structlog for the process (caching loggers); keep that out of the other tests.
    monkeypatch.setattr(logs, "configure", lambda **options: configured.append(options))
    settings = settings_factory()

    async def enqueue() -> None:
        async with await open_ledger(settings) as ledger:
            for pid in ("p1", "p2", "p3"):
                delivery = parse(prediction_body(pid), webhook_id=f"{pid}-completed")
                await ledger.ingest(delivery, now=time.time() - 60, handlers=("cmd_handler",))

    asyncio.run(enqueue())
    # Log lines would go to stdout under structlog's defaults (configure is patched out): keep them out of listings.
    capturing = capture_logs()
    capturing.__enter__()
    yield {
        "WAVEHOOK_DB": settings.db,
        "WAVESPEED_WEBHOOK_SECRET": SECRET,
        "WAVEHOOK_HANDLERS": MODULE,
        "WAVEHOOK_DOWNLOAD": "false",
        "WAVEHOOK_LOG_OUTCOMES": "false",
        "WAVEHOOK_LOG_FORMAT": "json",
    }
    capturing.__exit__(None, None, None)
    sys.modules.pop(MODULE, None)
    default_registry._handlers.pop("cmd_handler", None)
    assert all(options["log_format"] == "json" for options in configured)


def _invoke(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_burst_worker_runs_due_runs_then_replay_revives_the_dead(env: dict[str, str], tmp_path: Path) -> None:
    """worker --burst runs what is due and exits; runs --state dead lists the failures; replay --dead fixes them."""
    first = _invoke(env, "worker", "--burst")
    assert first.exit_code == 0, first.output
    assert "claimed 3: 0 succeeded, 0 to retry, 3 dead" in first.output
    listed = _invoke(env, "runs", "--state", "dead")
    assert listed.exit_code == 0
    lines = listed.output.splitlines()
    assert lines[0].split()[:3] == ["ID", "STATE", "HANDLER"]
    assert len(lines) == 4
    assert all("dead" in line and "RuntimeError: not fixed" in line for line in lines[1:])

    dry = _invoke(env, "replay", "--dead", "--handler", "cmd_handler", "--dry-run")
    assert dry.output.startswith("would replay 3 run(s): 3, 2, 1")
    (tmp_path / "fixed").touch()
    assert _invoke(env, "replay", "--dead", "--since", "1d").output.startswith("replayed 3 run(s)")
    assert "claimed 3: 3 succeeded" in _invoke(env, "worker", "--burst").output
    rows = [json.loads(line) for line in _invoke(env, "runs", "--json").output.splitlines()]
    assert {(row["state"], row["replays"]) for row in rows} == {("succeeded", 1)}


def test_replay_of_one_run_and_of_a_prediction(env: dict[str, str]) -> None:
    """replay RUN_ID refuses a run that has not ended; --prediction replays that prediction's finished runs."""
    refused = _invoke(env, "replay", "1")
    assert refused.exit_code == 1
    assert "run 1 is pending: only a dead or succeeded run replays" in refused.output
    assert "left alone: run 1 (cmd_handler) is pending" in refused.output
    assert _invoke(env, "worker", "--burst").exit_code == 0
    assert _invoke(env, "replay", "--prediction", "p2").output.startswith("replayed 1 run(s): 2")
    assert _invoke(env, "replay", "2").exit_code == 1  # pending again now
    missing = _invoke(env, "replay", "99")
    assert missing.exit_code == 1
    assert "no handler run matches" in missing.output


@pytest.mark.parametrize(
    "args", [[], ["1", "--dead"], ["--prediction", "p1", "--dead"], ["--dead", "--since", "yesterday"]]
)
def test_replay_needs_exactly_one_selector(env: dict[str, str], args: list[str]) -> None:
    """Without exactly one of RUN_ID, --prediction and --dead, or with a bad --since, replay is a usage error."""
    result = CliRunner().invoke(main, ["replay", *args], env=env)
    assert result.exit_code == 2
    assert "exactly one of RUN_ID" in result.output or "is not a duration" in result.output


def test_since_accepts_durations_times_and_unix_seconds() -> None:
    """--since takes 30m/2h/7d, an ISO 8601 time (UTC by default) or Unix seconds."""
    assert parse_since("90s", NOW) == NOW - 90
    assert parse_since("2h", NOW) == NOW - 7200
    assert parse_since("7d", NOW) == NOW - 7 * 86400
    assert parse_since("1700000000", NOW) == 1_700_000_000
    assert parse_since("2023-11-14T22:13:20Z", NOW) == 1_700_000_000
    assert parse_since("2023-11-14T22:13:20", NOW) == 1_700_000_000
    with pytest.raises(click.BadParameter):
        parse_since("soon", NOW)


def test_every_dispatch_command_has_help() -> None:
    """worker, replay and runs each explain themselves."""
    for command in ("worker", "replay", "runs"):
        result = CliRunner().invoke(main, [command, "--help"])
        assert result.exit_code == 0
        assert len(result.output.splitlines()) > 3


def test_serve_refuses_to_start_with_a_duplicate_handler_name(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two handler modules registering one name stop `wavehook serve` before it listens, naming the name."""
    (tmp_path / "wavehook_test_dup_a.py").write_text(
        "from receiver.handlers import on\n@on('*', name='dup_handler')\ndef a(prediction, ctx): ...\n"
    )
    (tmp_path / "wavehook_test_dup_b.py").write_text(
        "from receiver.handlers import on\n@on('*', name='dup_handler')\ndef b(prediction, ctx): ...\n"
    )
    try:
        result = CliRunner().invoke(
            main, ["serve"], env={**env, "WAVEHOOK_HANDLERS": "wavehook_test_dup_a,wavehook_test_dup_b"}
        )
    finally:
        for name in ("wavehook_test_dup_a", "wavehook_test_dup_b"):
            sys.modules.pop(name, None)
        default_registry._handlers.pop("dup_handler", None)
    assert result.exit_code == 2
    assert "handler name 'dup_handler' is registered twice" in result.output
