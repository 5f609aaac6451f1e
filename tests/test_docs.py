"""The docs are tested: every setting is in the README, every command has help."""

from __future__ import annotations

import re

import click
import pytest
from click.testing import CliRunner

from tests.support import ROOT
from wavehook.cli import COMMANDS, main

README = (ROOT / "README.md").read_text()
SETTINGS_SOURCE = (ROOT / "receiver" / "settings.py").read_text()
ENV_NAMES = sorted(set(re.findall(r'"((?:WAVESPEED|WAVEHOOK|PROMETHEUS)_[A-Z0-9_]+)"', SETTINGS_SOURCE)))


def subcommand(group: click.Group, name: str) -> click.Command:
    command = group.get_command(click.Context(group), name)
    assert command is not None, name
    return command


def commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name in group.list_commands(click.Context(group)):
        found.append((*prefix, name))
        command = subcommand(group, name)
        if isinstance(command, click.Group):
            found.extend(commands(command, (*prefix, name)))
    return found


def test_settings_are_found() -> None:
    """The scan of receiver/settings.py finds the variables the contract names (so the next test means something)."""
    assert {"WAVESPEED_WEBHOOK_SECRET", "WAVEHOOK_DB", "WAVEHOOK_TOLERANCE_SECONDS"} <= set(ENV_NAMES)


@pytest.mark.parametrize("name", ENV_NAMES)
def test_every_setting_is_in_the_readme(name: str) -> None:
    """Each environment variable Settings reads is documented in the README."""
    assert name in README


@pytest.mark.parametrize("path", commands(main), ids=" ".join)
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    """``wavehook <command> --help`` works and describes the command in a sentence."""
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    command: click.Command = main
    for name in path:
        assert isinstance(command, click.Group)
        command = subcommand(command, name)
    assert (command.help or "").strip(), f"wavehook {' '.join(path)} has no help text"


def test_top_level_help_lists_every_command() -> None:
    """``wavehook --help`` lists each command."""
    output = CliRunner().invoke(main, ["--help"]).output
    for name in COMMANDS:
        assert f"\n  {name} " in output


@pytest.mark.parametrize("name", COMMANDS)
def test_the_listed_help_is_the_commands_own(name: str) -> None:
    """The line ``wavehook --help`` shows for a command (without importing it) is the start of its own help."""
    listed = COMMANDS[name][1].removesuffix("…").strip()
    own = " ".join((subcommand(main, name).help or "").split())
    assert own.startswith(listed)


def _architecture_entry(package: str) -> str:
    """The text of one package's entry in the README's Architecture map (up to the next entry at its depth)."""
    block = README.split("## Architecture", 1)[1].split("```", 2)[1]
    lines = block.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(f"{package}/"))

    def depth(line: str) -> int:
        return len(line) - len(line.lstrip())

    after = range(start + 1, len(lines))
    end = next((i for i in after if lines[i].strip() and depth(lines[i]) <= depth(lines[start])), len(lines))
    return "\n".join(lines[start:end])


@pytest.mark.parametrize("package", ["receiver/store", "receiver/store/postgres"])
def test_the_architecture_names_every_store_module(package: str) -> None:
    """Every module of the store and of its PostgreSQL backend is named in its entry of the README's Architecture
    map, so the map moves with the tree."""
    entry = _architecture_entry(package.rsplit("/", 1)[1])
    if package == "receiver/store":  # the postgres/ entry is its own
        entry = entry.split("postgres/", 1)[0]
    modules = {path.stem for path in (ROOT / package).glob("*.py") if path.stem != "__init__"}
    named = set(re.findall(r"\b([a-z_]+)\b", entry))
    assert modules - named == set()
