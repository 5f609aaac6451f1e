"""The README's signed-curl example, run through bash against a real ``wavehook serve``."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import SECRET
from tests.integration.receiver_client import query, serve
from tests.support import ROOT

pytestmark = pytest.mark.integration


def readme_example() -> str:
    """The shell block of "Receiving webhooks" that signs with openssl and posts with curl."""
    section = (ROOT / "README.md").read_text().split("## Receiving webhooks", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    (example,) = [block for block in blocks if "openssl dgst" in block and "curl" in block]
    return example


@pytest.mark.skipif(not (shutil.which("openssl") and shutil.which("curl")), reason="needs openssl and curl")
def test_readme_signed_curl_is_accepted_then_a_duplicate(tmp_path: Path) -> None:
    """The example, pointed at a real server, prints the accepted answer; its curl line again prints a duplicate."""
    example = readme_example()
    curl = example[example.index("curl ") :]
    with serve(tmp_path) as server:
        script = (example + "\necho\n" + curl + "\necho\n").replace("http://127.0.0.1:8000", server.url)
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            env={"PATH": "/usr/bin:/bin", "WAVESPEED_WEBHOOK_SECRET": SECRET},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == ['{"received":true,"duplicate":false}', '{"received":true,"duplicate":true}']
        assert query(server.db, "SELECT status FROM predictions WHERE id = 'demo-task-1'") == [("completed",)]
