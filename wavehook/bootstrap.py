"""What every command starts from, made once per process: the settings, read from the environment, and
logging, configured from them. Commands ask for them only when they need them, so ``--help``, ``verify``
and ``models`` work whatever the environment holds."""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping
from typing import TextIO, cast

import click

from receiver.errors import ConfigError
from receiver.settings import Settings
from wavehook.terminal import HoldableStream


@dataclasses.dataclass
class Bootstrap:
    environ: Mapping[str, str] = dataclasses.field(default_factory=lambda: os.environ)
    level: str | None = None  # --quiet (warning) or --verbose (debug) over WAVEHOOK_LOG_LEVEL
    # Where log lines go: stderr, held back while a progress bar is drawn on it.
    log_stream: HoldableStream = dataclasses.field(default_factory=lambda: HoldableStream(sys.stderr))
    _settings: Settings | None = None
    _logging: bool = False

    def settings(self) -> Settings:
        """The settings; a malformed variable is a usage error that names it."""
        if self._settings is None:
            try:
                self._settings = Settings.from_env(self.environ)
            except ConfigError as exc:
                raise click.UsageError(str(exc)) from None
        return self._settings

    def logging(self) -> Settings:
        """The settings, with structlog configured from them (once)."""
        settings = self.settings()
        if not self._logging:
            from receiver import logs

            level = self.level or settings.log_level
            logs.configure(log_format=settings.log_format, level=level, stream=cast(TextIO, self.log_stream))
            self._logging = True
        return settings


# Commands take the group's Bootstrap; one run on its own (as in a test) gets a fresh one.
pass_bootstrap = click.make_pass_decorator(Bootstrap, ensure=True)
