"""A throwaway PostgreSQL cluster for tests and benchmarks: the machine's Debian server binaries, a temporary
directory, an unprivileged user, a free loopback port; removed afterwards.

PostgreSQL refuses to run as root, so as root the cluster belongs to the ``postgres`` user (the Debian
package creates it). Durability settings stay at their defaults (``fsync``, ``synchronous_commit`` and
``full_page_writes`` on), so what the tests prove about acknowledged deliveries holds on a real server.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

from tests.support import free_port

PG_USER = "wavehook"
BIN_DIRS = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin")


class ClusterUnavailable(RuntimeError):
    """No PostgreSQL server can be started here (binaries missing, no unprivileged user, start failed)."""


def find_bindir() -> Path:
    for candidate in (os.environ.get("WAVEHOOK_TEST_PG_BINDIR", ""), *BIN_DIRS):
        if candidate and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    raise ClusterUnavailable(
        f"no PostgreSQL server binaries in {', '.join(BIN_DIRS)} (install Debian's postgresql package; "
        "scripts/test.sh does it when run as root)"
    )


class Cluster:
    """One PostgreSQL server in its own directory. ``url(db)`` is a ``postgresql://`` URL with a password."""

    def __init__(self, *, bindir: Path | None = None, port: int | None = None) -> None:
        self.bindir = bindir or find_bindir()
        self.port = port or free_port()
        self.password = secrets.token_urlsafe(12)
        self.root = Path(tempfile.mkdtemp(prefix="wavehook-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._owner: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                self._owner = pwd.getpwnam("postgres")
            except KeyError:
                self.remove()
                raise ClusterUnavailable("running as root and no 'postgres' user to own the cluster") from None
            os.chown(self.root, self._owner.pw_uid, self._owner.pw_gid)

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        user = self._owner.pw_name if self._owner else None
        return subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            user=user,
            cwd=self.root,
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
        )

    def init(self) -> Cluster:
        pwfile = self.root / "pw"
        pwfile.write_text(self.password)
        if self._owner:
            os.chown(pwfile, self._owner.pw_uid, self._owner.pw_gid)
        try:
            self._run(
                "initdb",
                "-D",
                str(self.data),
                "-U",
                PG_USER,
                "--pwfile",
                str(pwfile),
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-instructions",
            )
        except subprocess.CalledProcessError as exc:
            raise ClusterUnavailable(f"initdb failed: {exc.stderr.strip()}") from exc
        finally:
            pwfile.unlink()
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"port = {self.port}\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.root}'\n"
                "max_connections = 300\n"
                "fsync = on\n"
                "synchronous_commit = on\n"
                "shared_buffers = 64MB\n"
                "log_min_messages = warning\n"
            )
        return self

    def start(self, timeout: float = 60.0) -> None:
        result = self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", str(int(timeout)), "start", check=False
        )
        if result.returncode != 0:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise ClusterUnavailable(f"pg_ctl start failed: {result.stderr.strip()} {log[-2000:]}")

    def stop(self, mode: str = "fast") -> None:
        """``fast`` ends sessions and checkpoints; ``immediate`` is a crash (recovery at the next start)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.data), "status", check=False).returncode == 0

    def describe(self) -> str:
        """The server's version and durability settings, for a benchmark report."""
        import psycopg

        with psycopg.connect(self.url()) as conn:
            version = conn.execute("SHOW server_version").fetchone()
            settings = conn.execute(
                "SELECT string_agg(name || '=' || setting, ', ' ORDER BY name) FROM pg_settings WHERE name IN "
                "('fsync', 'synchronous_commit', 'full_page_writes', 'wal_sync_method', 'shared_buffers')"
            ).fetchone()
        return f"PostgreSQL {version[0] if version else '?'} ({settings[0] if settings else ''}), not pinned"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{PG_USER}:{quote(self.password, safe='')}@127.0.0.1:{self.port}/{database}"

    def remove(self) -> None:
        with contextlib.suppress(Exception):
            if self.data.exists():
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def cluster(*, bindir: Path | None = None, start_timeout: float = 60.0) -> Iterator[Cluster]:
    """A started cluster, stopped and deleted afterwards; ClusterUnavailable when none can be started."""
    made = Cluster(bindir=bindir)
    try:
        made.init()
        made.start(start_timeout)
        yield made
    finally:
        made.remove()


class Databases:
    """Fresh databases on one cluster, each a copy of a migrated template (a file copy: ~10 ms)."""

    TEMPLATE = "wavehook_template"

    def __init__(self, server: Cluster) -> None:
        import psycopg

        from receiver.store.postgres.schema import migrate

        self.server = server
        self._count = 0
        with psycopg.connect(server.url(), autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {self.TEMPLATE}")
            admin.execute(f"CREATE DATABASE {self.TEMPLATE}")
        with psycopg.connect(server.url(self.TEMPLATE)) as conn:
            migrate(conn)

    def create(self, *, migrated: bool = True) -> str:
        """The URL of a new database: migrated (from the template) or empty."""
        import psycopg

        self._count += 1
        name = f"wavehook_test_{os.getpid()}_{self._count}"
        template = self.TEMPLATE if migrated else "template0"
        with psycopg.connect(self.server.url(), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
        return self.server.url(name)

    def drop(self, url: str) -> None:
        import psycopg

        name = url.rsplit("/", 1)[1]
        with contextlib.suppress(psycopg.OperationalError):
            admin = psycopg.connect(self.server.url(), autocommit=True)
            with admin:
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def make_read_only(url: str) -> None:
    """Turn one database read-only as a failover to a standby does: new sessions are read-only, and every
    session open now (the app's pool) is ended, so its next write meets the new state."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE {name} SET default_transaction_read_only = on")
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
