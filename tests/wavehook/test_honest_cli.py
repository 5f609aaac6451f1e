"""A quiet, honest command line (real ``wavehook`` processes): help that lists the environment and is never cut,
exit codes as the README says, did-you-mean for model ids, shortened ids accepted, the secret's origin named."""

from __future__ import annotations

import asyncio
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from receiver.delivery import parse
from receiver.settings import Settings
from receiver.store.ledger import open_ledger
from tests.conftest import SECRET
from tests.support import ROOT, WAVEHOOK, prediction_body
from wavehook.cli import COMMANDS
from wavehook.environment import READS

README = (ROOT / "README.md").read_text(encoding="utf-8")
SETTINGS_SOURCE = (ROOT / "receiver" / "settings.py").read_text(encoding="utf-8")


def wavehook(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [WAVEHOOK, *args],
        env={"PATH": "/usr/bin:/bin", "WAVEHOOK_LOG_FORMAT": "json", **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_help_lists_the_environment_it_reads(name: str, tmp_path: Path) -> None:
    """`wavehook NAME --help` ends with the variables the command reads, each documented in the README."""
    done = wavehook(name, "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    flat = " ".join(done.stdout.split())
    assert "Environment: " in flat
    for variable in READS[name]:
        assert variable in flat
        assert f"`{variable}`" in README, f"{variable} is not documented in the README"


def test_every_setting_is_read_by_some_command() -> None:
    """No variable the settings read is missing from every command's help."""
    read = set(re.findall(r'"((?:WAVEHOOK|WAVESPEED)_[A-Z_]+)"', SETTINGS_SOURCE))
    listed = {variable for names in READS.values() for variable in names}
    assert read - listed == set()


def test_top_level_help_lines_are_whole_sentences(tmp_path: Path) -> None:
    """Each command's line in `wavehook --help` is a whole sentence: never cut with an ellipsis."""
    for _where, short in COMMANDS.values():
        assert not short.endswith("…")
        assert short.endswith("."), short
    assert "…" not in wavehook("--help", cwd=tmp_path).stdout


def test_missing_secret_names_wavehook_secret(tmp_path: Path) -> None:
    """serve without a secret exits 2 and says how to get one: `wavehook secret`."""
    done = wavehook("serve", cwd=tmp_path)
    assert done.returncode == 2
    assert "`wavehook secret`" in done.stderr


def test_a_model_typo_gets_a_did_you_mean(tmp_path: Path) -> None:
    """A model id one character away from a catalogued one is named, with the likely one."""
    done = wavehook("models", "bytedance/seedance-v1-lite-t2v-480", cwd=tmp_path)
    assert done.returncode == 1
    assert "did you mean bytedance/seedance-v1-lite-t2v-480p?" in done.stderr


def test_a_missing_local_image_is_invalid_input(tmp_path: Path) -> None:
    """A local image path that does not exist is invalid input: exit 2, nothing sent (no provider listens)."""
    done = wavehook(
        "submit",
        "bytedance/waver-1.0",
        "-p",
        "prompt=a fox",
        "-p",
        "image=./no-such-photo.png",
        cwd=tmp_path,
        WAVESPEED_API_KEY="any",
        WAVESPEED_BASE_URL="http://127.0.0.1:9",
        WAVEHOOK_PUBLIC_URL="http://127.0.0.1:9",
    )
    assert done.returncode == 2, done.stderr
    assert "image=./no-such-photo.png" in done.stderr


def _ledger_with(settings: Settings, *ids: str) -> str:
    """A ledger (of the backend under test) holding failed predictions of these ids; its WAVEHOOK_DB."""

    async def fill() -> None:
        async with await open_ledger(settings) as ledger:
            for prediction_id in ids:
                delivery = parse(prediction_body(prediction_id, "failed"), webhook_id=f"w-{prediction_id}")
                await ledger.ingest(delivery, now=1.0)

    asyncio.run(fill())
    return settings.db


@pytest.mark.usefixtures("backend")  # each ledger backend in turn (a prefix is a range on each one's collation)
def test_status_accepts_the_shortened_ids_listings_show(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """`status` takes an id as `runs` (its start) or the dashboard (its start and …) shows it; several matches are
    a usage error naming them."""
    db = _ledger_with(settings_factory(), "5f1c2a9be07d4c11a2f0c3d4", "5f1c2a9be07d4c11ffff0000", "77aa00")
    shown = wavehook("status", "77aa", cwd=tmp_path, WAVEHOOK_DB=db, WAVESPEED_WEBHOOK_SECRET=SECRET)
    assert shown.returncode == 0, shown.stderr
    assert "77aa00" in shown.stdout
    dashboard = wavehook("status", "5f1c2a9be07d4c11a2…", cwd=tmp_path, WAVEHOOK_DB=db)
    assert dashboard.returncode == 0, dashboard.stderr
    assert "5f1c2a9be07d4c11a2f0c3d4" in dashboard.stdout
    ambiguous = wavehook("status", "5f1c2a9be07d4c11", cwd=tmp_path, WAVEHOOK_DB=db)
    assert ambiguous.returncode == 2
    assert "5f1c2a9be07d4c11a2f0c3d4, 5f1c2a9be07d4c11ffff0000" in ambiguous.stderr


@pytest.mark.usefixtures("backend")  # each ledger backend in turn
def test_replay_dead_with_nothing_dead_is_not_an_error(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """`replay --dead` over a ledger with no dead run says so and exits 0."""
    db = _ledger_with(settings_factory(), "p1")
    done = wavehook("replay", "--dead", cwd=tmp_path, WAVEHOOK_DB=db)
    assert (done.returncode, done.stdout.strip()) == (0, "nothing to replay: no dead run")
