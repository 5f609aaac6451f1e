"""The ledger a command uses is never a surprise: its absolute location is logged, and a command about to make
a new one where an existing one is expected says so (real ``wavehook`` processes, run from another directory)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from receiver.store.location import describe, is_new
from tests.conftest import SECRET
from tests.support import WAVEHOOK


def wavehook(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {"WAVESPEED_WEBHOOK_SECRET": SECRET, "WAVEHOOK_LOG_FORMAT": "json", "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [WAVEHOOK, *args], env={**base, **(env or {})}, cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_describe_gives_an_absolute_path_and_masks_a_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative file becomes absolute; a PostgreSQL URL keeps everything but its password."""
    monkeypatch.chdir(tmp_path)
    assert describe("wavehook.db") == str(tmp_path / "wavehook.db")
    assert describe("postgresql://app:s3cret@db.internal:5432/hooks") == "postgresql://app:***@db.internal:5432/hooks"
    assert describe("postgresql://db.internal/hooks") == "postgresql://db.internal/hooks"
    assert is_new("wavehook.db")
    assert not is_new("postgresql://db.internal/hooks")


@pytest.mark.parametrize(
    "args", [["list"], ["runs"], ["status", "pred-1"], ["replay", "--dead"]], ids=["list", "runs", "status", "replay"]
)
def test_reading_commands_refuse_to_create_a_ledger(tmp_path: Path, args: list[str]) -> None:
    """From a directory without the ledger, they exit 2, name the absolute path and how to point at the right
    one, and leave no new file behind."""
    done = wavehook(*args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert f"no ledger at {tmp_path / 'wavehook.db'}" in done.stderr
    assert "WAVEHOOK_DB" in done.stderr
    assert f"wavehook {args[0]}" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_submit_warns_before_making_a_second_ledger(tmp_path: Path) -> None:
    """submit may create the ledger, but says so plainly, with what goes wrong if the receiver uses another."""
    done = wavehook("submit", "bytedance/seedance-v1-lite-t2v-480p", "-p", "prompt=a fox", cwd=tmp_path)
    assert "warning: no ledger at" in done.stderr
    assert "token_mismatch" in done.stderr


def test_every_opening_logs_the_absolute_location(tmp_path: Path) -> None:
    """A command over an existing ledger logs ledger_opened with its absolute path, found through a relative one."""
    ledger_dir = tmp_path / "app"
    ledger_dir.mkdir()
    assert wavehook("worker", "--burst", cwd=ledger_dir).returncode == 0  # creates ledger_dir/wavehook.db
    done = wavehook("list", "--json", cwd=tmp_path, env={"WAVEHOOK_DB": "app/wavehook.db"})
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""  # no prediction yet, and no log line in the listing
    opened = [json.loads(line) for line in done.stderr.splitlines() if '"ledger_opened"' in line]
    assert [(line["ledger"], line["created"]) for line in opened] == [(str(ledger_dir / "wavehook.db"), False)]
