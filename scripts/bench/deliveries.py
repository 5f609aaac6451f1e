"""Pre-signed deliveries as ready-to-send HTTP/1.1 request bytes: fresh ids, real bodies of 500–800 bytes.

Signing and serialising cost a few microseconds per delivery; doing it ahead of each round keeps that work
out of the measured load generator, which then only writes bytes and parses status lines.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import os
import time

PATH = "/webhooks/wavespeed"
MODEL = "bytedance/seedance-v1-lite-t2v-480p"
SLOW_MODEL = "bench/slow"  # the bench handlers sleep on deliveries of this model
_PROMPTS = [
    "a red fox running through fresh snow at dawn, soft light, shallow depth of field",
    "a lighthouse on a cliff during a storm, waves crashing, cinematic wide shot, slow push-in",
    "close-up of coffee being poured into a glass cup, steam rising, warm morning kitchen light",
    "a paper boat drifting down a rain-filled street gutter, reflections of neon signs, night, "
    "handheld camera following the boat as it spins past puddles and fallen leaves",
    "time-lapse of clouds rolling over a mountain ridge, golden hour, long shadows moving across the valley "
    "floor, birds crossing the frame, a hiker silhouetted on the ridge line, gentle lens flare",
]


def body(prediction_id: str, variant: int, model: str = MODEL) -> bytes:
    """A completed prediction as the provider posts it (no envelope); its size depends on ``variant``."""
    prompt = _PROMPTS[variant % len(_PROMPTS)]
    data = {
        "id": prediction_id,
        "model": model,
        "input": {"prompt": prompt, "duration": 5, "aspect_ratio": "16:9", "seed": 1000 + variant},
        "outputs": [f"https://cdn.example.com/outputs/{prediction_id}/video.mp4"],
        "urls": {"get": f"https://api.wavespeed.ai/api/v3/predictions/{prediction_id}/result"},
        "has_nsfw_contents": [False],
        "status": "completed",
        "created_at": "2026-11-21T10:00:00.000Z",
        "error": "",
        "timings": {"inference": 41234 + variant},
    }
    return json.dumps(data).encode()


class Signer:
    """Makes request bytes for deliveries whose ids never repeat within one process."""

    def __init__(self, secret: str) -> None:
        self._key = secret.removeprefix("whsec_").encode()
        # Every target listens on loopback and ignores Host: one header block serves them all.
        self._head = f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n".encode()
        self._run = os.urandom(4).hex()
        self._counter = itertools.count()

    def request(self, timestamp: int | None = None, model: str = MODEL) -> tuple[str, bytes]:
        """One delivery: its prediction id and the whole request (headers and body)."""
        n = next(self._counter)
        prediction_id = f"bench-{self._run}-{n:08d}"
        payload = body(prediction_id, n, model)
        ts = str(int(time.time()) if timestamp is None else timestamp).encode()
        webhook_id = f"evt-{self._run}-{n:08d}".encode()
        digest = hmac.new(self._key, b"%s.%s.%s" % (webhook_id, ts, payload), hashlib.sha256).hexdigest()
        head = (
            b"%swebhook-id: %s\r\nwebhook-timestamp: %s\r\nwebhook-signature: v3,%s\r\nContent-Length: %d\r\n\r\n"
            % (
                self._head,
                webhook_id,
                ts,
                digest.encode(),
                len(payload),
            )
        )
        return prediction_id, head + payload

    def pool(self, count: int, model: str = MODEL) -> list[bytes]:
        """``count`` fresh requests, all signed now (the receiver allows 300 s of clock skew)."""
        return [request for _id, request in self.pool_with_ids(count, model)]

    def pool_with_ids(self, count: int, model: str = MODEL) -> list[tuple[str, bytes]]:
        now = int(time.time())
        return [self.request(now, model) for _ in range(count)]
