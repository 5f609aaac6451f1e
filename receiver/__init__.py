"""wavehook's receiver: verified, durable, exactly-once ingestion of WaveSpeedAI webhooks."""

from __future__ import annotations

from receiver.errors import WavehookError
from receiver.http.app import create_app
from receiver.settings import Settings
from receiver.signature import Verifier

__all__ = ["Settings", "Verifier", "WavehookError", "create_app"]
