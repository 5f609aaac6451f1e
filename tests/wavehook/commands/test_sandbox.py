"""``wavehook sandbox``: its help, and options it refuses before starting anything."""

from __future__ import annotations

from click.testing import CliRunner

from wavehook.cli import main


def test_help_lists_the_options() -> None:
    """wavehook sandbox --help documents the clock, retry and fault options."""
    result = CliRunner().invoke(main, ["sandbox", "--help"])
    assert result.exit_code == 0
    for option in (
        "--queue-time",
        "--run-time",
        "--webhook-id",
        "--retry-window",
        "--faults",
        "--delivery-log",
        "--answer-delay",
    ):
        assert option in result.output


def test_bad_fault_rates_are_a_usage_error() -> None:
    """An unknown fault or a rate outside 0..1 stops the command with exit 2, naming it."""
    runner = CliRunner()
    unknown = runner.invoke(main, ["sandbox", "--faults", "explode=0.5"])
    assert (unknown.exit_code, "unknown fault 'explode'" in unknown.output) == (2, True)
    too_likely = runner.invoke(main, ["sandbox", "--faults", "drop=3"])
    assert (too_likely.exit_code, "probability" in too_likely.output) == (2, True)
