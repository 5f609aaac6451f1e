"""The sandbox's settings: one frozen dataclass, built by ``wavehook sandbox`` from its options."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from receiver.settings import Secret

WEBHOOK_ID_MODES = ("task", "event")


@dataclasses.dataclass(frozen=True)
class SandboxConfig:
    """How the imitation provider behaves. Times are in seconds; fractions of a millisecond are fine."""

    secret: Secret
    # None: any non-empty bearer token is accepted, as a stand-in for a real key.
    api_key: Secret | None = None
    # created -> processing after queue_seconds, processing -> completed|failed after run_seconds; each
    # stretched by a random factor in [1 - jitter, 1 + jitter] so that tasks do not finish in lockstep.
    queue_seconds: float = 1.0
    run_seconds: float = 3.0
    jitter: float = 0.3
    # "task": webhook-id is the task id, as in the provider's documented example (two different events of
    # one task then share an id); "event": one id per event. Retries and duplicates always repeat the id.
    webhook_id_mode: str = "task"
    retry_initial: float = 1.0
    retry_max: float = 60.0
    retry_window: float = 3600.0
    delivery_timeout: float = 10.0
    fault_rates: dict[str, float] = dataclasses.field(default_factory=dict)
    delay_seconds: float = 5.0
    seed: int | None = None
    delivery_log: Path | None = None
    # The provider allows 100 MB for a video; the same cap applies to tickets and to multipart uploads.
    max_upload_bytes: int = 100 * 1024 * 1024
    validate_inputs: bool = True
    # False: inputs a model's page does not list are accepted (and logged with a did-you-mean), as the
    # provider accepts the extra fields real clients send; True: they are refused with a 400.
    strict_inputs: bool = False
    # Every API call waits this long before it is handled, as a provider across the internet would answer.
    answer_delay: float = 0.0
    # enable_sync_mode answers once the task ends, or after this long with the provider's sync-timeout answer.
    sync_timeout: float = 60.0
    # Faults on the API side (sandbox.apifaults): rates per API request, the Retry-After of a 429, and how long
    # a held answer waits (past any sensible client timeout, unless the client hangs up first).
    api_fault_rates: dict[str, float] = dataclasses.field(default_factory=dict)
    retry_after: float = 1.0
    answer_hold: float = 120.0
    request_log: Path | None = None
    # Fractional-second digits of created_at: the provider's documented example has milliseconds.
    created_at_digits: int = 3
    balance: float = 100.0

    def __post_init__(self) -> None:
        if self.webhook_id_mode not in WEBHOOK_ID_MODES:
            raise ValueError(f"webhook_id_mode={self.webhook_id_mode!r} is not one of {', '.join(WEBHOOK_ID_MODES)}")
        if not 0 <= self.created_at_digits <= 9:
            raise ValueError(f"created_at_digits={self.created_at_digits} must be from 0 to 9")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"jitter={self.jitter} must be at least 0 and below 1")

    def replace(self, **changes: object) -> SandboxConfig:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
