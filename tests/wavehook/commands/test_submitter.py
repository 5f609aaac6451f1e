"""The submitter's commands in process: catalog tables, argument parsing, and refusals before any network call."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from receiver.errors import ConfigError
from receiver.settings import Settings
from submitter.errors import AmbiguousSubmit, BatchError, ProviderError, ValidationError, WaitTimeout
from wavehook.cli import main
from wavehook.commands.submitter import _run, parse_params
from wavehook.durations import parse_duration

T2V = "bytedance/seedance-v1-lite-t2v-480p"


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    return CliRunner(
        env={
            "WAVEHOOK_DB": str(tmp_path / "w.db"),
            "WAVESPEED_API_KEY": "k",
            "WAVEHOOK_PUBLIC_URL": "http://127.0.0.1:9",
            "WAVESPEED_BASE_URL": "http://127.0.0.1:9",
        }
    )


def test_models_table_and_one_model(runner: CliRunner) -> None:
    """The table lists each catalogued model; one model shows each input's range and default."""
    listing = runner.invoke(main, ["models"])
    assert listing.exit_code == 0
    assert (
        "bytedance/seedance-v1-lite/reference-to-video  reference-to-video  prompt, reference_images" in listing.output
    )
    one = runner.invoke(main, ["models", T2V])
    assert one.exit_code == 0
    assert "duration      integer  yes       5        5…10" in one.output
    assert "aspect_ratio  string   no        16:9     21:9, 16:9, 4:3, 1:1, 3:4, 9:16, 9:21" in one.output
    as_json = json.loads(runner.invoke(main, ["models", T2V, "--json"]).output)
    assert as_json["inputs"][2]["maximum"] == 10
    unknown = runner.invoke(main, ["models", "vendor/other"])
    assert unknown.exit_code == 1
    assert "can still be submitted, without local validation" in unknown.output


def test_submit_refuses_invalid_inputs_before_anything(runner: CliRunner, tmp_path: Path) -> None:
    """Every problem is printed, the exit code is 2, and not even the ledger file is created."""
    result = runner.invoke(main, ["submit", T2V, "-p", "duration=14", "-p", "seed=x"])
    assert result.exit_code == 2
    assert f"duration=14 is outside 5…10 for {T2V}" in result.output
    assert f'seed="x" is not a whole number for {T2V}' in result.output
    assert f"prompt is required for {T2V}" in result.output
    assert not (tmp_path / "w.db").exists()


def test_submit_refuses_a_bad_image_file_before_anything(runner: CliRunner, tmp_path: Path) -> None:
    """A local image that is not there is named with its field, the exit code is 2, and no ledger is created."""
    missing = tmp_path / "missing.png"
    result = runner.invoke(main, ["submit", "bytedance/waver-1.0", "-p", "prompt=a", "-p", f"image={missing}"])
    assert result.exit_code == 2
    assert f"error: image={missing}: no such file" in result.output
    assert not (tmp_path / "w.db").exists()


def test_batch_refuses_a_bad_file_before_sending(runner: CliRunner, tmp_path: Path) -> None:
    """Malformed lines and invalid jobs are all listed by line number, and nothing is sent (no provider here)."""
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(json.dumps({"model": T2V, "input": {"prompt": "a", "duration": 99}}) + "\n{oops\n")
    result = runner.invoke(main, ["batch", str(jobs)])
    assert result.exit_code == 2
    assert "line 2: not valid JSON" in result.output
    jobs.write_text(json.dumps({"model": T2V, "input": {"prompt": "a", "duration": 99}}) + "\n")
    result = runner.invoke(main, ["batch", str(jobs), "--no-progress"])
    assert result.exit_code == 2
    assert f"line 1: duration=99 is outside 5…10 for {T2V}" in result.output
    assert "nothing was sent" in result.output


def test_params_repeat_into_lists_and_uncatalogued_values_read_as_json() -> None:
    """A repeated key is a list; values for uncatalogued models are JSON when they parse, else text."""
    ref = "bytedance/seedance-v1-lite/reference-to-video"
    assert parse_params(ref, ("reference_images=https://a", "reference_images=https://b", "prompt=x=y")) == {
        "reference_images": ["https://a", "https://b"],
        "prompt": "x=y",
    }
    assert parse_params(T2V, ("duration=5",)) == {"duration": "5"}
    assert parse_params("vendor/m", ("n=5", "flag=true", 'xs=["a"]', "text=hello")) == {
        "n": 5,
        "flag": True,
        "xs": ["a"],
        "text": "hello",
    }
    with pytest.raises(click.BadParameter):
        parse_params(T2V, ("novalue",))


def test_durations() -> None:
    """Durations read as seconds, with s/m/h/d units; anything else is refused."""
    assert [parse_duration(d) for d in ("90", "30s", "10m", "2h", "1d", "0.5m")] == [90, 30, 600, 7200, 86400, 30]
    with pytest.raises(click.BadParameter, match="not a duration"):
        parse_duration("ten minutes")


def test_every_command_has_help(runner: CliRunner) -> None:
    """Each submitter command explains itself."""
    for command in ("models", "submit", "batch", "status", "list", "secret", "reconcile"):
        result = runner.invoke(main, [command, "--help"])
        assert result.exit_code == 0, command
        assert len(result.output.splitlines()) > 3


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ValidationError("m", ["x=1 is bad for m"]), 2),
        (BatchError(["line 1: bad"]), 2),
        (ProviderError("refused"), 1),
        (AmbiguousSubmit("lost", reference="wh_1"), 3),
        (WaitTimeout("not final"), 4),
        (ConfigError("WAVEHOOK_HANDLERS: module x cannot be imported"), 2),
    ],
)
def test_errors_become_exit_codes(
    error: Exception, code: int, submit_settings: Callable[..., Settings], capsys: pytest.CaptureFixture[str]
) -> None:
    """Each kind of failure ends a command with its documented exit code and its message on stderr."""

    async def work(_sub: object) -> None:
        raise error

    with pytest.raises(SystemExit) as info:
        _run(submit_settings(), work)
    assert info.value.code == code
    assert str(error).splitlines()[0] in capsys.readouterr().err
