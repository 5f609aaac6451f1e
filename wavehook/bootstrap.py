"""What every command starts from, made once per process: the settings, read from the environment, and
logging, configured from them. Commands ask for them only when they need them, so ``--help``, ``verify``
and ``models`` work whatever the environment holds."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

import click

from receiver.errors import ConfigError
from receiver.settings import Settings


@dataclasses.dataclass
class Bootstrap:
    environ: Mapping[str, str] = dataclasses.field(default_factory=lambda: os.environ)
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

            logs.configure(log_format=settings.log_format, level=settings.log_level)
            self._logging = True
        return settings


# Commands take the group's Bootstrap; one run on its own (as in a test) gets a fresh one.
pass_bootstrap = click.make_pass_decorator(Bootstrap, ensure=True)
