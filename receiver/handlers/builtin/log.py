"""Built-in ``log``: one structured line per prediction outcome (on unless WAVEHOOK_LOG_OUTCOMES=false)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from receiver.handlers.registry import on

if TYPE_CHECKING:
    from receiver.handlers.context import Context
    from receiver.handlers.prediction import Prediction


@on("*", name="log", enabled=lambda settings: settings.dispatch.log_outcomes)
async def log_outcome(prediction: Prediction, ctx: Context) -> None:
    ctx.logger.info(
        "prediction_outcome",
        status=prediction.status,
        outputs=len(prediction.outputs),
        error=prediction.error,
        nsfw=any(prediction.has_nsfw_contents),
        inference_ms=prediction.timings.get("inference"),
        reference=prediction.reference,
    )
