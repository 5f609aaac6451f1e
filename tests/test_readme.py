"""The README's recipes run as written: every shell block a new user would run is run here, by bash, in a fresh
directory (with ``.venv`` the project's own), against real processes on loopback; the fixed ports of the README
are replaced by free ones. A block this module does not know fails ``test_every_shell_block_is_accounted_for``,
so none can be added without being run (or skipped for a stated reason) here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.server
import json
import os
import re
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import ROOT, free_port, serving, wait_for

README = ROOT / "README.md"
VENV = ROOT / ".venv"


@dataclasses.dataclass(frozen=True)
class Block:
    line: int
    language: str
    text: str


def blocks(language: str) -> list[Block]:
    found = []
    for match in re.finditer(r"^```(\w+)\n(.*?)^```", README.read_text(encoding="utf-8"), flags=re.M | re.S):
        if match.group(1) == language:
            line = README.read_text(encoding="utf-8")[: match.start()].count("\n") + 1
            found.append(Block(line, language, match.group(2)))
    return found


def block(marker: str, language: str = "sh") -> str:
    """The one block of ``language`` that holds ``marker``."""
    (found,) = [b.text for b in blocks(language) if marker in b.text]
    return found


# Each shell block, by a line it holds: run by the named test here, or skipped with the reason.
RUN = {
    ".venv/bin/wavehook demo": "test_quick_start_demo",
    "export WAVESPEED_WEBHOOK_SECRET=whsec_your": "test_receiving_webhooks_session",
    "openssl dgst -sha256 -hmac": "test_receiving_webhooks_session",
    "printf '%s' \"$body\" > body.json": "test_receiving_webhooks_session",
    "export WAVEHOOK_ADMIN_TOKEN=$(openssl rand -hex 24)": "test_admin_api_recipe",
    "export TEAMCHAT_URL=": "test_worked_example_save_then_notify",
    "# The sandbox serves its outputs on loopback": "test_sandbox_recipe_downloads_outputs",
}
SKIP = {
    "bash scripts/test.sh": "the whole suite: this test is part of it",
    "wavehook secret                         # the account's": (
        "needs a real API key (and files and URLs of your own); each command is tested in tests/wavehook/"
    ),
    "scripts/bench_ingest.py --quick": "benchmarks of minutes; smoke-tested by tests/scripts/",
    "scripts/bench_submit.py --quick": "benchmarks of minutes; smoke-tested by tests/scripts/",
    "scripts/bench_ingest.py    # about 8 minutes": "benchmarks of minutes; smoke-tested by tests/scripts/",
    ".venv/bin/pytest -m fault": "the fault suite: part of the suite this test is in",
    "scripts/bench_coldstart.py --runs 9": "medians of repeated process starts; smoke-tested by tests/scripts/",
    "docker build -t wavehook .": (
        "no container engine on these machines: tests/test_dockerfile.py runs the Dockerfile's install step, its "
        "command and its HEALTHCHECK in a fresh virtualenv instead"
    ),
    "pip install 'wavehook[postgres]'": (
        "needs a PostgreSQL server of your own; the same steps on a throwaway one: tests/fault/test_scale_out.py"
    ),
    "wavehook ledger copy wavehook.db": (
        "needs a PostgreSQL server of your own; the command on a throwaway one: tests/wavehook/commands/test_ledger.py"
    ),
}


def test_every_shell_block_is_accounted_for() -> None:
    """Each ```sh block of the README is run by one test of this module, or skipped for a reason named here."""
    unaccounted = []
    for found in blocks("sh"):
        matches = [marker for marker in (*RUN, *SKIP) if marker in found.text]
        if len(matches) != 1:
            unaccounted.append(f"README.md line {found.line}: {found.text.splitlines()[0]!r} ({len(matches)} matches)")
    assert unaccounted == [], "run these blocks in tests/test_readme.py (or name why not):\n" + "\n".join(unaccounted)
    assert set(RUN.values()) <= {name for name in globals() if name.startswith("test_")}


# -- running blocks --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Session:
    """A fresh directory with ``.venv`` (the project's), free ports for the README's, and a clean environment."""

    directory: Path
    ports: dict[str, str]

    def env(self, **extra: str) -> dict[str, str]:
        keep = {name: value for name, value in os.environ.items() if not name.startswith(("WAVEHOOK_", "WAVESPEED_"))}
        # `wavehook` without .venv/bin in front works as in an activated virtualenv.
        return {**keep, "PATH": f"{self.directory / '.venv' / 'bin'}:/usr/bin:/bin", **extra}

    def localize(self, script: str) -> str:
        for port, free in self.ports.items():
            script = re.sub(rf"\b{port}\b", free, script)
        return script

    def url(self, port: str) -> str:
        return f"http://127.0.0.1:{self.ports[port]}"

    def run(self, script: str, *, timeout: float = 100) -> subprocess.CompletedProcess[str]:
        """Run ``script`` in bash (-e: a failing line fails it); every process it started (servers it put in
        the background) is stopped once bash itself has exited. Output goes through files: a background server
        keeps a pipe open for as long as it runs."""
        out_path, err_path = self.directory / "block.out", self.directory / "block.err"
        with out_path.open("wb") as out, err_path.open("wb") as err:
            proc = subprocess.Popen(
                ["bash", "-e", "-c", self.localize(script)],
                cwd=self.directory,
                env=self.env(),
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
            try:
                proc.wait(timeout)
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(15)
        stdout, stderr = out_path.read_text(errors="replace"), err_path.read_text(errors="replace")
        return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)

    @contextlib.contextmanager
    def background(self, script: str) -> Iterator[None]:
        """Start ``script`` (servers); stop its whole process group when the block is done."""
        log = open(self.directory / "background.log", "ab")  # noqa: SIM115 (closed below)
        proc = subprocess.Popen(
            ["bash", "-e", "-c", self.localize(script)],
            cwd=self.directory,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(15)
            log.close()


@pytest.fixture
def session(tmp_path: Path) -> Session:
    (tmp_path / ".venv").symlink_to(VENV)
    return Session(tmp_path, {port: str(free_port()) for port in ("8000", "8100", "9000")})


def ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def rows(db: Path, sql: str) -> list[dict[str, Any]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in conn.execute(sql)]
    finally:
        conn.close()


# -- the recipes -----------------------------------------------------------------------------------------------


@pytest.mark.integration
def test_quick_start_demo(session: Session) -> None:
    """The first command: the install is what made the environment this test runs in; the demo runs as written."""
    command = block(".venv/bin/wavehook demo").strip()
    install, _, demo = command.rpartition(" && ")
    assert install == "python3 -m venv .venv && .venv/bin/pip install -q -e ."
    done = session.run(demo)
    assert done.returncode == 0, done.stdout + done.stderr


def curl_again(example: str) -> str:
    """The example's curl command on its own: the same delivery sent again."""
    return example[example.index("curl ") :]


@pytest.mark.integration
def test_receiving_webhooks_session(session: Session) -> None:
    """serve, the signed curl (accepted, then a duplicate), verify on the body it sent, and the admin API."""
    serve = block("export WAVESPEED_WEBHOOK_SECRET=whsec_your")
    secret_line, serve_line = serve.strip().splitlines()
    with session.background(serve):
        wait_for(lambda: ready(session.url("8000") + "/readyz"), timeout=30, what="the README's serve")
        script = "\n".join(
            [
                secret_line,
                block("openssl dgst -sha256 -hmac"),
                "echo",
                curl_again(block("openssl dgst -sha256 -hmac")),
                "echo",
                block("printf '%s' \"$body\" > body.json"),
                block("export WAVEHOOK_ADMIN_TOKEN=$(openssl rand -hex 24)"),
            ]
        )
        done = session.run(script)
    assert serve_line.startswith(".venv/bin/wavehook serve --port 8000")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:2] == ['{"received":true,"duplicate":false}', '{"received":true,"duplicate":true}']
    assert lines[2] == "valid: the signature matches the body under the given secret"


def json_values(text: str) -> list[Any]:
    """The JSON documents printed one after another (curl prints no newline after a body)."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while at < len(text.rstrip()):
        value, at = decoder.raw_decode(text, at)
        found.append(value)
    return found


@pytest.mark.integration
def test_admin_api_recipe(session: Session) -> None:
    """The bearer-token recipe: serve started with the token, the listing and replay-dead answered to it."""
    secret_line = block("export WAVESPEED_WEBHOOK_SECRET=whsec_your").splitlines()[0]  # the user's, from above
    done = session.run(secret_line + "\n" + block("export WAVEHOOK_ADMIN_TOKEN=$(openssl rand -hex 24)"))
    assert done.returncode == 0, done.stderr
    listing, replayed = json_values(done.stdout)
    assert listing == {"predictions": [], "next_cursor": None}  # nothing failed yet
    assert replayed["replayed"] == []


@pytest.mark.integration
def test_sandbox_recipe_downloads_outputs(session: Session) -> None:
    """The sandbox recipe, then a job submitted to it: its output is downloaded (the recipe allows loopback)."""
    recipe = block("# The sandbox serves its outputs on loopback")
    with session.background(recipe):
        wait_for(lambda: ready(session.url("8000") + "/readyz"), timeout=30, what="the recipe's serve")
        submit = (
            "export WAVESPEED_BASE_URL=http://127.0.0.1:8100 WAVESPEED_API_KEY=any "
            "WAVEHOOK_PUBLIC_URL=http://127.0.0.1:8000\n"
            ".venv/bin/wavehook submit bytedance/seedance-v1-lite-t2v-480p -p prompt='a fox' --wait --timeout 60s\n"
        )
        done = session.run(submit)
        assert done.returncode == 0, done.stderr
        db = session.directory / "wavehook.db"
        downloads = wait_for(lambda: rows(db, "SELECT * FROM downloads"), timeout=30, what="a download")
    assert (session.directory / downloads[0]["path"]).stat().st_size == downloads[0]["size"] > 0


class ChatStandIn(http.server.ThreadingHTTPServer):
    """A team chat's incoming webhook on loopback: keeps each posted JSON with what was on disk at that moment."""

    def __init__(self, directory: Path) -> None:
        self.posts: list[dict[str, Any]] = []
        self.directory = directory
        super().__init__(("127.0.0.1", 0), _ChatHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ChatHandler(http.server.BaseHTTPRequestHandler):
    server: ChatStandIn

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        # Each "kept at <path>, <n> bytes" of the message, as the disk holds it when the post arrives.
        kept = re.findall(r"kept at (\S+), ([\d,]+) bytes", body.get("text", ""))
        on_disk = [
            (path, int(size.replace(",", "")), (self.server.directory / path).stat().st_size)
            if (self.server.directory / path).exists()
            else (path, int(size.replace(",", "")), None)
            for path, size in kept
        ]
        self.server.posts.append({"path": self.path, "body": body, "on_disk": on_disk})
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *_args: Any) -> None:  # quiet: the test reads self.server.posts
        return


@contextlib.contextmanager
def chat_stand_in(directory: Path) -> Iterator[ChatStandIn]:
    server = ChatStandIn(directory)
    with serving(server):
        yield server


@pytest.mark.integration
def test_worked_example_save_then_notify(session: Session) -> None:
    """The worked example as written: teamchat.py from the README, its shell block against the real sandbox and
    receiver, and a chat stand-in. Each video is on disk, at the size said, when its post arrives; the failed job
    is posted too; the notification ran after the download."""
    handler = block("# teamchat.py", language="python")
    (session.directory / "teamchat.py").write_text(handler, encoding="utf-8")
    with chat_stand_in(session.directory) as chat:
        session.ports["9000"] = chat.url.rsplit(":", 1)[1]
        done = session.run(block("export TEAMCHAT_URL="), timeout=150)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "the second job failed, as asked" in done.stdout
        db = session.directory / "wavehook.db"
        # The failed job's post may still be on its way when `submit --wait` has returned: wait for both.
        wait_for(lambda: len(chat.posts) >= 2, timeout=30, what="two posts to the chat")
    done_posts = [p for p in chat.posts if p["body"]["text"].startswith("Done: ")]
    failed_posts = [p for p in chat.posts if p["body"]["text"].startswith("Failed: ")]
    assert (len(done_posts), len(failed_posts), len(chat.posts)) == (1, 1, 2), chat.posts
    assert {p["path"] for p in chat.posts} == {"/hooks/team"}
    ((path, said, actual),) = done_posts[0]["on_disk"]
    assert said == actual, f"{path} was not fully on disk when the post arrived"
    assert actual > 0
    assert "ended failed: " in failed_posts[0]["body"]["text"]
    runs = rows(db, "SELECT r.*, p.status AS final FROM handler_runs r JOIN predictions p ON p.id = r.prediction_id")
    assert sorted((r["handler"], r["final"], r["state"]) for r in runs) == [
        ("download_outputs", "completed", "succeeded"),
        ("log", "completed", "succeeded"),
        ("log", "failed", "succeeded"),
        ("teamchat.tell_the_team", "completed", "succeeded"),
        ("teamchat.tell_the_team", "failed", "succeeded"),
    ]
    by_handler = {(r["handler"], r["final"]): r for r in runs}
    download = by_handler[("download_outputs", "completed")]
    notify = by_handler[("teamchat.tell_the_team", "completed")]
    assert notify["started_at"] >= download["finished_at"]
    assert "teamchat.tell_the_team" in done.stdout  # `wavehook runs` at the end of the block lists it
    assert_ignored_by_git(session, keep={"teamchat.py", "block.out", "block.err"})


def assert_ignored_by_git(session: Session, *, keep: set[str]) -> None:
    """Everything the recipe left in the directory (the ledger, its WAL and lock files, media) is ignored by the
    project's .gitignore, as it would be in a checkout: nothing of a run shows up in ``git status``."""
    left = [
        str(path.relative_to(session.directory))
        for path in session.directory.rglob("*")
        if path.is_file() and ".venv" not in path.parts and path.name not in keep
    ]
    assert any(name.endswith(".migrate-lock") for name in left), left
    checked = subprocess.run(
        ["git", "check-ignore", "--no-index", "--verbose", "--non-matching", *left],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    not_ignored = [line.split("\t", 1)[1] for line in checked.stdout.splitlines() if line.startswith("::")]
    assert not_ignored == [], f"add these to .gitignore: {not_ignored}"
