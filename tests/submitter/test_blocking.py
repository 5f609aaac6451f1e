"""The blocking Submitter: the async one run on a private loop, usable where a loop is already running."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest

import submitter
from receiver.settings import Settings
from submitter import Submitter
from tests.submitter.conftest import HANDLERS
from tests.submitter.fake_provider import FakeProvider

T2V = "bytedance/seedance-v1-lite-t2v-480p"


def test_package_exports() -> None:
    """The package's public names are exactly the library API."""
    assert set(submitter.__all__) == {
        "MODELS",
        "AsyncSubmitter",
        "BatchSummary",
        "ModelSpec",
        "ReconcileCounts",
        "Submission",
        "Submitter",
        "SubmitterError",
        "ValidationError",
        "get_model",
        "reconcile_once",
        "validate",
    }


def test_submit_batch_reconcile_status(submit_settings: Callable[..., Settings], provider: FakeProvider) -> None:
    """Every operation works without async code, with the same results as the async API."""
    with Submitter(submit_settings(), transport=provider.transport(), route=lambda _m, _s: HANDLERS) as sub:
        one = sub.submit(T2V, {"prompt": "a fox"})
        summary = sub.batch([json.dumps({"model": T2V, "input": {"prompt": "b"}})])
        provider.finish("task0001")
        counts = sub.reconcile(older_than=0)
        row = sub.status("task0001")
        assert sub.wait("task0001", deadline=5)["status"] == "completed"
        assert sub.submission(one.reference)["state"] == "submitted"  # type: ignore[index]
    assert (one.outcome, summary.submitted, counts.missed) == ("submitted", 1, 1)
    assert row is not None
    assert row["status"] == "completed"


@pytest.mark.anyio
async def test_usable_inside_a_running_loop(submit_settings: Callable[..., Settings], provider: FakeProvider) -> None:
    """Called from code that runs in an event loop, the blocking API still works (its loop is its own)."""
    with Submitter(submit_settings(), transport=provider.transport(), route=lambda _m, _s: ()) as sub:
        assert sub.submit(T2V, {"prompt": "a fox"}).prediction_id == "task0001"
    await asyncio.sleep(0)
