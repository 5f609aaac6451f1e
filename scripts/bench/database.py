"""PostgreSQL's own account of the groups wavehook stored in a round: how many statements, how long the server
ran each, and how long each commit's WAL flush took.

Read from the server's statistics views before and after a round (``pg_stat_user_functions`` for the group
statement, ``wavehook_record_group``; ``pg_stat_wal`` for the flushes), which needs ``track_functions`` and
``track_wal_io_timing`` on: ``enable`` turns them on for the ledger's database alone, so that the flush time is
its sessions' alone. A backend reports its statistics late (see ``IDLE_REPORT``), so a round's account is read
once the round is long over.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.report import Round

FUNCTION = "wavehook_record_group"
# A backend that has reported within the last second reports what is left once it has been idle this long
# (PostgreSQL's PGSTAT_IDLE_INTERVAL, 10 s): a reading this long after a round has all of it.
IDLE_REPORT = 10.5


def enable(url: str) -> None:
    """Turn on the two statistics the account needs for sessions that connect to ``url``'s database from now on
    (a superuser's URL: both settings are a superuser's)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True) as conn:
        database = sql.Identifier(conn.info.dbname)
        for name, value in (("track_functions", "all"), ("track_wal_io_timing", "on")):
            conn.execute(sql.SQL("ALTER DATABASE {} SET {} = {}").format(database, sql.Identifier(name), value))


@dataclasses.dataclass(frozen=True)
class Snapshot:
    calls: int  # group statements run so far
    statement_ms: float  # their total time in the server
    flush_ms: float  # time spent flushing the WAL (timed in the ledger database's sessions only)


@dataclasses.dataclass
class Groups:
    """The group statements of one round, as PostgreSQL counted and timed them."""

    per_second: float  # group statements a second of the round
    statement_ms: float  # mean time the server ran one (planning, locks, inserts: not the commit's flush)
    flush_ms: float  # WAL flush time per statement (its commit waits for the flush of what it wrote)

    def interval_ms(self) -> float:
        """The mean time from one group to the next: with one group in flight, each one's whole round trip."""
        return 1000 / self.per_second if self.per_second > 0 else 0.0


def median_groups(rounds: Sequence[Groups | None]) -> Groups | None:
    known = [g for g in rounds if g is not None]
    if not known:
        return None
    return Groups(
        per_second=statistics.median(g.per_second for g in known),
        statement_ms=statistics.median(g.statement_ms for g in known),
        flush_ms=statistics.median(g.flush_ms for g in known),
    )


class GroupStatistics:
    """PostgreSQL's account of one ledger database's group statements, round by round.

    A round's account is read when it is complete: at the start of the next round on this database (in a
    full run, after the other targets' rounds, long after it is all reported) or at ``finish``; either waits,
    if need be, until ``IDLE_REPORT`` has passed since the last round on the database ended.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._ended: float | None = None  # when the last round on this database ended (monotonic)
        self._before: Snapshot | None = None
        self._open: tuple[Snapshot, Round, float] | None = None  # a round whose account is not read yet

    def round_starts(self) -> None:
        self._before = self._settled()

    def round_ends(self, measured: Round, elapsed: float) -> None:
        """``measured`` gets its ``groups`` once they are all reported."""
        self._ended = time.monotonic()
        if self._before is not None:
            self._open = (self._before, measured, elapsed)

    def finish(self) -> None:
        """Read the account of the last round (the others are read as the next one starts)."""
        if self._open is not None:
            self._settled()

    def _settled(self) -> Snapshot:
        if self._ended is not None:
            time.sleep(max(0.0, self._ended + IDLE_REPORT - time.monotonic()))
        now = self.snapshot()
        if self._open is not None:
            before, measured, elapsed = self._open
            measured.groups = self.between(before, now, elapsed)
            self._open = None
        return now

    def snapshot(self) -> Snapshot:
        """The counts reported so far: the group statements run on this database, their total time, and the
        time this database's sessions spent flushing the WAL (the only sessions that time it: see ``enable``)."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            calls, total = conn.execute(
                "SELECT coalesce(sum(calls), 0), coalesce(sum(total_time), 0) FROM pg_stat_user_functions "
                "WHERE funcname = %s",
                (FUNCTION,),
            ).fetchone()
            (flush_ms,) = conn.execute("SELECT wal_sync_time FROM pg_stat_wal").fetchone()
        return Snapshot(int(calls), float(total), float(flush_ms))

    @staticmethod
    def between(before: Snapshot, after: Snapshot, elapsed: float) -> Groups | None:
        """What happened between two snapshots ``elapsed`` seconds of load apart; None when no group ran."""
        statements = after.calls - before.calls
        if statements <= 0 or elapsed <= 0:
            return None
        return Groups(
            per_second=statements / elapsed,
            statement_ms=(after.statement_ms - before.statement_ms) / statements,
            flush_ms=(after.flush_ms - before.flush_ms) / statements,
        )
