"""A throwaway PgBouncer in front of a test cluster (tests/postgres.py): Debian's ``pgbouncer``, a temporary
directory, the ``postgres`` user when run as root (PgBouncer refuses root), a free loopback port.

It runs with PgBouncer's defaults where they matter: the startup parameter ``options`` is refused (no
``ignore_startup_parameters``), as by the poolers managed platforms put in front of their databases.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

from tests.postgres import PG_USER, Cluster
from tests.support import free_port

BINARY = "/usr/sbin/pgbouncer"


class BouncerUnavailable(RuntimeError):
    """No PgBouncer can be started here (not installed, no unprivileged user, start failed)."""


class Bouncer:
    def __init__(self, server: Cluster, port: int) -> None:
        self.server = server
        self.port = port

    def url(self, database: str) -> str:
        """The URL of ``database`` on the cluster, through the pooler."""
        return f"postgresql://{PG_USER}:{quote(self.server.password, safe='')}@127.0.0.1:{self.port}/{database}"


@contextlib.contextmanager
def bouncer(server: Cluster, *, pool_mode: str = "session", start_timeout: float = 10.0) -> Iterator[Bouncer]:
    """PgBouncer in ``pool_mode`` for every database of ``server``; stopped and deleted afterwards."""
    if not Path(BINARY).exists():
        raise BouncerUnavailable(f"{BINARY} is missing (install Debian's pgbouncer package; scripts/test.sh does it)")
    owner = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            raise BouncerUnavailable("running as root and no 'postgres' user to run PgBouncer") from None
    root = Path(tempfile.mkdtemp(prefix="wavehook-pgbouncer-"))
    port = free_port()
    try:
        (root / "users.txt").write_text(f'"{PG_USER}" "{server.password}"\n')
        (root / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host=127.0.0.1 port={server.port}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {port}\n"
            "unix_socket_dir =\n"
            "auth_type = scram-sha-256\n"
            f"auth_file = {root / 'users.txt'}\n"
            f"pool_mode = {pool_mode}\n"
            "max_client_conn = 200\n"
            "default_pool_size = 40\n"
            f"logfile = {root / 'pgbouncer.log'}\n"
        )
        if owner is not None:
            for path in (root, root / "users.txt", root / "pgbouncer.ini"):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        process = subprocess.Popen(
            [BINARY, str(root / "pgbouncer.ini")],
            user=owner.pw_name if owner else None,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            _wait_for_port(port, process, root, start_timeout)
            yield Bouncer(server, port)
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stderr is not None:
                process.stderr.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _wait_for_port(port: int, process: subprocess.Popen[bytes], root: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = (root / "pgbouncer.log").read_text(errors="replace") if (root / "pgbouncer.log").exists() else ""
            stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise BouncerUnavailable(f"pgbouncer exited ({process.returncode}): {stderr.strip()} {log[-1000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise BouncerUnavailable(f"pgbouncer did not listen on port {port} within {timeout:g} s")
