"""download_outputs against real processes: a real file server on loopback, a real receiver keeping its outputs."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.integration.dispatch_support import dispatch_env, query
from tests.support import Process, prediction_body, serving, signed_headers, wait_for

CLIP = b"\x00\x00\x00\x20ftypisom" + bytes(range(256)) * 200


class _Files(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path != "/clips/out%20put.mp4":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("content-type", "video/mp4")
        self.send_header("content-length", str(len(CLIP)))
        self.end_headers()
        self.wfile.write(CLIP)

    def log_message(self, *_args: object) -> None:
        pass


def file_server() -> contextlib.AbstractContextManager[str]:
    return serving(http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files))


@pytest.mark.integration
def test_outputs_are_streamed_to_the_media_directory(
    tmp_path: Path, serve_factory: Callable[..., Process], secret: str
) -> None:
    """With loopback allowed (as in the sandbox demo), a completed prediction's output is kept on disk with
    its sha256 in the ledger; with loopback refused, the run fails with the reason and nothing is written."""
    env = dispatch_env(tmp_path, WAVEHOOK_DOWNLOAD="true", WAVEHOOK_MAX_ATTEMPTS="1")
    with file_server() as base:
        web = serve_factory(env={**env, "WAVEHOOK_DOWNLOAD_ALLOW_LOOPBACK": "true"})
        db: Path = web.db  # type: ignore[attr-defined]
        with httpx.Client(base_url=web.url, timeout=10) as client:  # type: ignore[attr-defined]
            body = prediction_body("clip-1", model="test/video", outputs=[f"{base}/clips/out%20put.mp4"])
            response = client.post(
                "/webhooks/wavespeed", content=body, headers=signed_headers(secret, body, webhook_id="c1")
            )
            assert response.status_code == 200
            wait_for(lambda: query(db, "SELECT * FROM downloads"), timeout=20, what="the download to be recorded")
        web.stop()
        (row,) = query(db, "SELECT * FROM downloads")
        path = Path(row["path"])
        assert path == tmp_path / "media" / "test" / "video" / "clip-1" / "out_put.mp4"
        assert path.read_bytes() == CLIP
        assert row["sha256"] == hashlib.sha256(CLIP).hexdigest()
        assert row["size"] == len(CLIP)
        assert [p.name for p in path.parent.iterdir()] == ["out_put.mp4"]  # no temporary file left

        refusing = serve_factory(env=env, port=int(web.url.rsplit(":", 1)[1]))  # type: ignore[attr-defined]
        with httpx.Client(base_url=refusing.url, timeout=10) as client:  # type: ignore[attr-defined]
            body = prediction_body("clip-2", model="test/video", outputs=[f"{base}/clips/out%20put.mp4"])
            client.post("/webhooks/wavespeed", content=body, headers=signed_headers(secret, body, webhook_id="c2"))

        def dead() -> list[dict[str, object]]:
            return query(db, "SELECT * FROM handler_runs WHERE prediction_id = 'clip-2' AND state = 'dead'")

        (run,) = wait_for(dead, timeout=20, what="the refused download to be dead")
    assert "a loopback address (set WAVEHOOK_DOWNLOAD_ALLOW_LOOPBACK)" in str(run["last_error"])
    assert not (tmp_path / "media" / "test" / "video" / "clip-2").exists()
