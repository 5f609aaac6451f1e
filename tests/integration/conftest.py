"""Fixtures of the integration tests (real processes on loopback): pytest hands them to every test here, so no
test module imports one. The helpers they build on live beside them (``submitter_support``, ...)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from receiver.settings import Settings
from tests.integration.submitter_support import Loop, make_loop
from tests.support import Process


@pytest.fixture
def loop(
    sandbox_factory: Callable[..., Process],
    serve_factory: Callable[..., Process],
    settings_factory: Callable[..., Settings],
) -> Loop:
    """A sandbox on its millisecond clock and a receiver on the same ledger the submitter writes to."""
    return make_loop(sandbox_factory(), serve_factory(env={"WAVEHOOK_DOWNLOAD": "false"}), settings_factory)
