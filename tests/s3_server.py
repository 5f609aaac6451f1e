"""A real S3-compatible server on loopback (moto's server mode, as a process) and an independent reader of it.

wavehook writes through its own client (obstore); the tests read the bucket back with plain HTTP requests
and parse the XML themselves, so one bug cannot hide on both sides.
"""

from __future__ import annotations

import importlib.util
import secrets
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import Process, free_port, running, server_unavailable

_NS = {"s3": "http://s3.amazonaws.com/doc/2006-03-01/"}
# moto accepts any credentials; these only have to be present, as real ones would be.
ACCESS_KEY = "AKIAWAVEHOOKTEST0001"
SECRET_KEY = "wavehook-test-secret-access-key-not-real"


class S3Server:
    def __init__(self, url: str) -> None:
        self.url = url

    def create_bucket(self, prefix: str = "outputs") -> Bucket:
        name = f"wavehook-{secrets.token_hex(4)}"
        response = httpx.put(f"{self.url}/{name}", timeout=10)
        assert response.status_code == 200, response.text
        return Bucket(self, name, prefix)


class Bucket:
    def __init__(self, server: S3Server, name: str, prefix: str) -> None:
        self.server = server
        self.name = name
        self.prefix = prefix

    @property
    def media_url(self) -> str:
        return f"s3://{self.name}/{self.prefix}"

    def env(self) -> dict[str, str]:
        """The settings a user gives: WAVEHOOK_MEDIA_URL and the standard AWS variables."""
        return {
            "WAVEHOOK_MEDIA_URL": self.media_url,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": self.server.url,
        }

    def objects(self) -> dict[str, dict[str, str]]:
        """Every object in the bucket: key -> its size and ETag (``"…-N"`` when sent as N parts)."""
        response = httpx.get(f"{self.server.url}/{self.name}", params={"list-type": "2"}, timeout=10)
        assert response.status_code == 200, response.text
        found = {}
        root = ET.fromstring(response.content)  # noqa: S314 (our own test server)
        for item in root.findall("s3:Contents", _NS):
            key = item.findtext("s3:Key", "", _NS)
            found[key] = {"size": item.findtext("s3:Size", "", _NS), "etag": item.findtext("s3:ETag", "", _NS)}
        return found

    def read(self, key: str) -> httpx.Response:
        return httpx.get(f"{self.server.url}/{self.name}/{key}", timeout=30)

    def pending_uploads(self) -> list[str]:
        """Multipart uploads begun and neither completed nor aborted (hidden parts a user would pay for)."""
        response = httpx.get(f"{self.server.url}/{self.name}", params={"uploads": ""}, timeout=10)
        assert response.status_code == 200, response.text
        root = ET.fromstring(response.content)  # noqa: S314 (our own test server)
        return [item.findtext("s3:Key", "", _NS) for item in root.findall("s3:Upload", _NS)]


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto's S3 server as a real process on a free loopback port, for the whole session."""
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
        server_unavailable("moto[server] is not installed (pip install -e '.[test]')")
    port = free_port()
    log: Path = tmp_path_factory.mktemp("s3") / "moto.log"
    process = Process(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env={"MOTO_ALLOW_NONEXISTENT_REGION": "true"},
        log_path=log,
    )
    with running(process, f"http://127.0.0.1:{port}/moto-api/"):
        yield S3Server(f"http://127.0.0.1:{port}")


@pytest.fixture
def bucket(s3_server: S3Server) -> Bucket:
    """A fresh, empty bucket on the test S3 server."""
    return s3_server.create_bucket()
