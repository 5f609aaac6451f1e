"""The submitter's commands run against the submitter tests' fake provider and settings aimed at it."""

from __future__ import annotations

from tests.submitter.conftest import provider, submit_settings

__all__ = ["provider", "submit_settings"]
