"""Clock skew at the edges of the timestamp tolerance, against a real ``wavehook serve``.

The offsets stay 5 s inside or outside the tolerance: the clock moves on while a request travels, and a
whole-second timestamp is up to 1 s older than the moment it was taken, so exact edges belong to the unit
tests of the verifier (tests/receiver/test_signature.py), which inject the clock.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.integration.receiver_client import Delivery, post, query, serve
from tests.support import prediction_body

pytestmark = pytest.mark.fault

MARGIN = 5


@pytest.mark.parametrize("tolerance", [None, 30], ids=["default-300s", "set-30s"])
def test_timestamps_inside_the_tolerance_are_taken_and_outside_refused_into_quarantine(
    tmp_path: Path, tolerance: int | None
) -> None:
    """With the default (300 s) or a set WAVEHOOK_TOLERANCE_SECONDS, deliveries MARGIN seconds inside it,
    past or future, answer 200 and are stored; MARGIN seconds outside, 401 stale or future, kept only in
    quarantine."""
    env = {"WAVEHOOK_TOLERANCE_SECONDS": str(tolerance)} if tolerance else {}
    edge = tolerance or 300
    cases = [
        (-(edge - MARGIN), 200, None),
        (-(edge + MARGIN), 401, "stale_timestamp"),
        (edge - MARGIN, 200, None),
        (edge + MARGIN, 401, "future_timestamp"),
    ]
    with serve(tmp_path, env=env) as server, httpx.Client(timeout=10) as client:
        answers = []
        for offset, _status, _reason in cases:
            delivery = Delivery(f"skew{offset:+d}", prediction_body(f"p-skew{offset:+d}"))
            response = post(client, server.url, delivery, timestamp=int(time.time()) + offset)
            answers.append((offset, response.status_code, response.json().get("reason")))
    assert answers == cases

    stored = query(server.db, "SELECT webhook_id FROM events ORDER BY webhook_id")
    assert stored == sorted((f"skew{offset:+d}",) for offset, status, _ in cases if status == 200)
    quarantined = query(server.db, "SELECT webhook_id, reason, prediction_id FROM quarantine ORDER BY webhook_id")
    assert quarantined == sorted(
        (f"skew{offset:+d}", reason, f"p-skew{offset:+d}") for offset, status, reason in cases if status == 401
    )
