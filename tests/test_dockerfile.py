"""The Dockerfile cannot rot unseen: no container engine runs here, so this test reads it, builds its context
from its COPY lines, runs its install step in a fresh virtual environment, then its command and its
HEALTHCHECK with its environment, as the image would."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import SECRET
from tests.fault.storage import read_only_dir
from tests.integration.dispatch_support import deliver, query
from tests.s3_server import Bucket
from tests.support import ROOT, Process, free_port, running

DOCKERFILE = ROOT / "Dockerfile"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    found: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        pending += line.removesuffix("\\").strip() + " "
        if not line.endswith("\\"):
            keyword, _, rest = pending.strip().partition(" ")
            found.append((keyword.upper(), rest.strip()))
            pending = ""
    return found


def stages(text: str) -> list[list[tuple[str, str]]]:
    """The instructions of each build stage (each FROM starts one)."""
    result: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions(text):
        if keyword == "FROM":
            result.append([])
        result[-1].append((keyword, rest))
    return result


def env_of(stage: list[tuple[str, str]], base: dict[str, str]) -> dict[str, str]:
    """The ENV (and ARG defaults) a stage sets, in order, ``$NAME`` expanded as the builder does."""
    env = dict(base)
    for keyword, rest in stage:
        if keyword in {"ENV", "ARG"}:
            for item in shlex.split(rest):
                name, _, value = item.partition("=")
                env[name] = re.sub(r"\$\{?(\w+)\}?", lambda match: env.get(match.group(1), ""), value)
    return env


def test_the_dockerfile_states_what_the_image_promises() -> None:
    """Slim Python base, a non-root user, no compiler installed, a HEALTHCHECK on /healthz, ``wavehook serve``
    as the command, PORT and 0.0.0.0 from the environment."""
    text = DOCKERFILE.read_text()
    build, final = stages(text)
    for stage in (build, final):
        image = stage[0][1].split()[0]
        assert image.startswith("python:")
        assert image.endswith("-slim")
    assert not any(tool in text for tool in ("apt-get", "build-essential", "gcc")), "no build tools in any stage"
    keywords = dict(final)
    assert keywords["USER"] not in {"root", "0"}
    assert "/healthz" in keywords["HEALTHCHECK"]
    assert json.loads(keywords["CMD"]) == ["wavehook", "serve"]
    env = env_of(final, {})
    assert (env["WAVEHOOK_HOST"], env["PORT"]) == ("0.0.0.0", "8000")
    assert "pip" not in " ".join(rest for keyword, rest in final if keyword == "RUN")


@pytest.mark.integration
def test_the_install_step_and_the_command_run(tmp_path: Path, postgres_url: str, bucket: Bucket) -> None:
    """The build stage's COPY and RUN lines, run in a fresh context and virtual environment, install a
    wavehook whose ``wavehook serve`` (the CMD, with the final stage's ENV and a PORT as a platform sets it)
    answers the HEALTHCHECK and accepts a signed delivery into a PostgreSQL ledger, from a read-only working
    directory (a container's disk is not kept); stopped, the HEALTHCHECK fails."""
    build, final = stages(DOCKERFILE.read_text())
    context = tmp_path / "src"
    context.mkdir()
    for keyword, rest in build:
        if keyword == "COPY":
            *sources, _dest = shlex.split(rest)
            for source in sources:
                origin = ROOT / source
                if origin.is_dir():
                    shutil.copytree(origin, context / source, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy2(origin, context / source)
    venv = tmp_path / "opt-wavehook"
    # `python` in the image is the base interpreter: here, the one this test's virtualenv was made from.
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "python").symlink_to(Path(sys.base_prefix) / "bin" / "python3")
    base = {"PATH": f"{tools}:{os.environ['PATH']}", "HOME": str(tmp_path)}
    build_env = env_of(build, base) | {"VIRTUAL_ENV": str(venv)}
    build_env.pop("PIP_NO_CACHE_DIR")  # the image starts with an empty cache; here the machine's cache helps
    (run,) = [rest for keyword, rest in build if keyword == "RUN"]
    installed = subprocess.run(
        ["bash", "-c", run],
        cwd=context,
        env=build_env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr
    assert (venv / "bin" / "wavehook").exists()

    port = free_port()
    final_env = env_of(final, {"PATH": base["PATH"]})
    final_env["PATH"] = final_env["PATH"].replace("/opt/wavehook", str(venv))
    # What a deployment gives the container: the signing secret, the port, and (listening beyond loopback)
    # an admin token for the dashboard and API.
    run_env = {**final_env, "PORT": str(port), "WAVESPEED_WEBHOOK_SECRET": SECRET, "WAVEHOOK_ADMIN_TOKEN": "a" * 32}
    # ... and, since nothing on its disk is kept, a shared ledger and object storage.
    run_env |= {"WAVEHOOK_DB": postgres_url, **bucket.env()}
    (tmp_path / "tmp").mkdir()
    run_env["TMPDIR"] = str(tmp_path / "tmp")
    command = json.loads(dict(final)["CMD"])
    health = json.loads(dict(final)["HEALTHCHECK"].split(" CMD ", 1)[1])
    command[0] = str(venv / "bin" / command[0])
    health[0] = str(venv / "bin" / health[0])
    with read_only_dir(tmp_path / "home") as home:
        process = Process(command, env=run_env, log_path=tmp_path / "serve.log", cwd=home)
        process.env = run_env | {"HOME": str(home)}  # only the image's environment, not this test's
        with running(process, f"http://127.0.0.1:{port}/healthz"):
            checked = subprocess.run(health, env=run_env, capture_output=True, text=True, timeout=30, check=False)
            assert checked.returncode == 0, checked.stderr
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
                answer = deliver(client, SECRET, "container-1", "completed", model="test/video")
            assert answer.json() == {"received": True, "duplicate": False}
        after = subprocess.run(health, env=run_env, capture_output=True, text=True, timeout=30, check=False)
    assert after.returncode != 0
    assert query(postgres_url, "SELECT webhook_id FROM events") == [{"webhook_id": "container-1-completed"}]
    assert list((tmp_path / "tmp").iterdir()) == []
