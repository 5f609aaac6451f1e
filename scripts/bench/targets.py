"""Starting the three targets (and wavehook variants) as separate processes on free loopback ports."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

from bench.system import Server, Worker, free_port

SCRIPTS = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
WAVEHOOK = str(Path(sys.executable).with_name("wavehook"))


class Workdir:
    """Where the targets keep their databases and logs for one benchmark run."""

    def __init__(self, path: Path, secret: str) -> None:
        self.path = path
        self.secret = secret
        path.mkdir(parents=True, exist_ok=True)

    def _env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        # The scripts directory on the path: the baselines and the bench handlers are imported from it.
        return {"PYTHONPATH": str(SCRIPTS), **(extra or {})}

    def bare(self) -> Server:
        port = free_port()
        args = [PYTHON, "-m", "bench.serve", "bare", "--port", str(port)]
        return Server("bare", args, self._env(), self.path / "bare.log", port)

    def naive(self) -> Server:
        port = free_port()
        args = [PYTHON, "-m", "bench.serve", "naive", "--port", str(port)]
        env = self._env({"BENCH_SECRET": self.secret, "BENCH_DB": str(self.path / "naive.db")})
        return Server("naive", args, env, self.path / "naive.log", port)

    def naive_pg(self, url: str) -> Server:
        port = free_port()
        args = [PYTHON, "-m", "bench.serve", "naive-pg", "--port", str(port)]
        env = self._env({"BENCH_SECRET": self.secret, "BENCH_DB": url})
        return Server("naive-pg", args, env, self.path / "naive-pg.log", port)

    def wavehook(self, name: str, extra: Mapping[str, str] | None = None) -> Server:
        """``wavehook serve`` with its own ledger; built-in handlers off unless ``extra`` turns them on."""
        port = free_port()
        env = self._env(
            {
                "WAVESPEED_WEBHOOK_SECRET": self.secret,
                "WAVEHOOK_DB": str(self.db(name)),
                "WAVEHOOK_MEDIA_DIR": str(self.path / f"{name}-media"),
                "WAVEHOOK_LOG_FORMAT": "json",
                "WAVEHOOK_DOWNLOAD": "false",
                "WAVEHOOK_LOG_OUTCOMES": "false",
                "WAVEHOOK_SHUTDOWN_GRACE_SECONDS": "1",
                **(extra or {}),
            }
        )
        args = [WAVEHOOK, "serve", "--port", str(port)]
        return Server(name, args, env, self.path / f"{name}.log", port)

    def worker(self, name: str, extra: Mapping[str, str]) -> Worker:
        """``wavehook worker`` with the same environment as ``wavehook(name, extra)``: another instance."""
        env = self._env(
            {
                "WAVESPEED_WEBHOOK_SECRET": self.secret,
                "WAVEHOOK_LOG_FORMAT": "json",
                "WAVEHOOK_DOWNLOAD": "false",
                "WAVEHOOK_LOG_OUTCOMES": "false",
                **extra,
            }
        )
        return Worker(name, [WAVEHOOK, "worker"], env, self.path / f"{name}.log")

    def db(self, name: str) -> Path:
        return self.path / f"{name}.db"
