"""A user handler for the browser tests: it fails while a marker file exists, and succeeds once it is gone.

Loaded by ``wavehook serve`` through WAVEHOOK_HANDLERS; the marker's path comes from FLAKY_MARKER.
"""

from __future__ import annotations

import os
from pathlib import Path

from receiver.handlers import Context, Prediction, on

MODEL_GLOB = "test/flaky-*"


@on(MODEL_GLOB, status="completed", name="flaky_publish")
def flaky_publish(prediction: Prediction, _ctx: Context) -> None:
    """Publish the prediction somewhere that is down while the marker file exists."""
    if Path(os.environ["FLAKY_MARKER"]).exists():
        raise RuntimeError(f"publishing {prediction.id} failed: the downstream service is unavailable")
