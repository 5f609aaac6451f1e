"""Copying a ledger between backends (SQLite → PostgreSQL, and back): ``wavehook ledger copy SOURCE TARGET``.

Every row keeps its id, so a prediction's events, runs, attempts and downloads still point at each other,
and the correlation secret comes along, so tokens of jobs still in flight stay valid on the target.

- **Idempotent**: a row already on the target (same primary key) is left as it is; copying twice changes
  nothing the second time.
- **Resumable**: rows go in batches, each committed on its own, in key order; an interrupted copy started
  again skips, for tables keyed by integers, everything up to the highest id the target already holds.
- **Verified**: at the end every table holds as many rows on the target as on the source, or the copy fails
  and says which table differs.

The source is only read. Stop the instances writing to it first: rows they add during the copy may be
missed (copying again picks them up).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from receiver.errors import ConfigError
from receiver.store.connection import connect, open_database
from receiver.store.ledger import is_postgres_url
from receiver.store.postgres.url import masked

# Parents before children; the key each table is ordered and deduplicated by.
TABLES: tuple[tuple[str, str], ...] = (
    ("meta", "key"),
    ("predictions", "id"),
    ("events", "id"),
    ("quarantine", "id"),
    ("handler_runs", "id"),
    ("run_attempts", "id"),
    ("downloads", "id"),
    ("submissions", "reference"),
)
# Tables keyed by an integer the database assigns: copied in id order, so a resumed copy starts after the
# highest id the target holds, and PostgreSQL's identity is moved past the copied ids at the end.
NUMBERED = frozenset({"events", "quarantine", "handler_runs", "run_attempts", "downloads"})
# Secrets of the source ledger win over the fresh ones a new target made for itself.
CARRIED_META = frozenset({"correlation_secret", "session_secret"})
SKIPPED_META = frozenset({"ready_probe"})
BATCH = 500


class Side(Protocol):
    name: str

    def count(self, table: str) -> int: ...
    def max_id(self, table: str) -> int: ...
    def batches(self, table: str, key: str, after: int | None) -> Iterator[tuple[list[str], list[tuple[Any, ...]]]]: ...
    def insert(self, table: str, key: str, columns: list[str], rows: Sequence[tuple[Any, ...]]) -> None: ...
    def carry_meta(self, rows: Sequence[tuple[str, str]]) -> None: ...
    def finish(self) -> None: ...
    def close(self) -> None: ...


@dataclasses.dataclass
class TableCopy:
    table: str
    source: int
    target_before: int
    target_after: int = 0

    @property
    def copied(self) -> int:
        return self.target_after - self.target_before


class CountMismatch(ConfigError):
    """After the copy, a table holds a different number of rows on the target than on the source."""


class SQLiteSide:
    def __init__(self, path: Path, *, create: bool) -> None:
        if not create and not path.exists():
            raise ConfigError(f"no SQLite ledger at {path}")
        if create:
            open_database(path)
        self.name = str(path)
        self.conn = connect(path)

    def count(self, table: str) -> int:
        return int(self.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608 (fixed names)

    def max_id(self, table: str) -> int:
        return int(self.conn.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()[0])  # noqa: S608

    def batches(self, table: str, key: str, after: int | None) -> Iterator[tuple[list[str], list[tuple[Any, ...]]]]:
        where = f"WHERE {key} > {int(after)}" if after is not None else ""
        cur = self.conn.execute(f"SELECT * FROM {table} {where} ORDER BY {key}")  # noqa: S608 (fixed names)
        columns = [d[0] for d in cur.description]
        while rows := cur.fetchmany(BATCH):
            yield columns, [tuple(row) for row in rows]

    def insert(self, table: str, key: str, columns: list[str], rows: Sequence[tuple[Any, ...]]) -> None:
        names = ", ".join(columns)
        marks = ", ".join("?" for _ in columns)
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.executemany(
            f"INSERT INTO {table} ({names}) VALUES ({marks}) ON CONFLICT ({key}) DO NOTHING",  # noqa: S608
            rows,
        )
        self.conn.execute("COMMIT")

    def carry_meta(self, rows: Sequence[tuple[str, str]]) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", rows
        )
        self.conn.execute("COMMIT")

    def finish(self) -> None:
        pass

    def close(self) -> None:
        self.conn.close()


class PostgresSide:
    def __init__(self, url: str, *, create: bool, timeout_ms: int) -> None:
        from receiver.store.postgres.driver import require_driver

        require_driver()
        import psycopg

        from receiver.store.postgres.connection import configure_session, connect_kwargs, session_settings, unavailable
        from receiver.store.postgres.schema import migrate_url

        self.name = masked(url)
        if create:
            migrate_url(url, timeout_ms=timeout_ms)
        kwargs = {**connect_kwargs("wavehook-copy", timeout_ms=timeout_ms), "row_factory": psycopg.rows.tuple_row}
        try:
            self.conn = psycopg.connect(url, **kwargs)
            configure_session(self.conn, session_settings(timeout_ms))
        except psycopg.OperationalError as exc:
            raise unavailable(exc, url) from None
        if not create and self._scalar("SELECT to_regclass('public.predictions') IS NOT NULL") is not True:
            self.conn.close()
            raise ConfigError(f"no wavehook ledger in the PostgreSQL database {self.name}")

    def _scalar(self, sql: str) -> Any:
        row = self.conn.execute(sql).fetchone()
        return None if row is None else row[0]

    def count(self, table: str) -> int:
        return int(self._scalar(f"SELECT count(*) FROM {table}"))  # noqa: S608 (fixed names)

    def max_id(self, table: str) -> int:
        return int(self._scalar(f"SELECT coalesce(max(id), 0) FROM {table}"))  # noqa: S608

    def batches(self, table: str, key: str, after: int | None) -> Iterator[tuple[list[str], list[tuple[Any, ...]]]]:
        where = f"WHERE {key} > {int(after)}" if after is not None else ""
        order = key if table in NUMBERED else f'{key} COLLATE "C"'
        with self.conn.transaction(), self.conn.cursor(name=f"copy_{table}") as cur:
            cur.execute(f"SELECT * FROM {table} {where} ORDER BY {order}")  # noqa: S608
            columns: list[str] | None = None
            while rows := cur.fetchmany(BATCH):
                columns = columns or [d.name for d in cur.description or ()]
                yield columns, [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in rows]

    def insert(self, table: str, key: str, columns: list[str], rows: Sequence[tuple[Any, ...]]) -> None:
        names = ", ".join(columns)
        marks = ", ".join("%s" for _ in columns)
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {table} ({names}) VALUES ({marks}) ON CONFLICT ({key}) DO NOTHING",  # noqa: S608
                rows,
            )

    def carry_meta(self, rows: Sequence[tuple[str, str]]) -> None:
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO meta (key, value) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                rows,
            )

    def finish(self) -> None:
        # Rows came with their ids: move each identity past them, or the next insert would collide.
        with self.conn.transaction():
            for table in sorted(NUMBERED):
                self.conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                    f"greatest((SELECT max(id) FROM {table}), 1), (SELECT max(id) IS NOT NULL FROM {table}))"
                )

    def close(self) -> None:
        self.conn.close()


def open_side(location: str, *, create: bool, timeout_ms: int = 5000) -> Side:
    if is_postgres_url(location):
        return PostgresSide(location, create=create, timeout_ms=timeout_ms)
    return SQLiteSide(Path(location), create=create)


Progress = Callable[[str, int], None]


def copy_ledger(source: Side, target: Side, *, progress: Progress = lambda _table, _rows: None) -> list[TableCopy]:
    """Copy every table of ``source`` into ``target`` (see the module docstring); the per-table counts.

    Raises CountMismatch when a table's counts differ afterwards.
    """
    report: list[TableCopy] = []
    for table, key in TABLES:
        item = TableCopy(table, source=source.count(table), target_before=target.count(table))
        after = target.max_id(table) if table in NUMBERED else None
        for columns, rows in source.batches(table, key, after):
            if table == "meta":
                carried = [(k, v) for k, v in rows if k in CARRIED_META]
                target.carry_meta(carried)
                rows = [(k, v) for k, v in rows if k not in CARRIED_META | SKIPPED_META]
            target.insert(table, key, columns, rows)
            progress(table, len(rows))
        report.append(item)
    target.finish()
    for item in report:
        item.target_after = target.count(item.table)
    differ = [item for item in report if item.table != "meta" and item.target_after != item.source]
    if differ:
        detail = "; ".join(f"{i.table}: source {i.source}, target {i.target_after}" for i in differ)
        raise CountMismatch(
            f"the copy finished but the counts differ ({detail}): the target held other rows before, "
            "or the source changed during the copy"
        )
    return report


@contextlib.contextmanager
def sides(source: str, target: str, *, timeout_ms: int = 5000) -> Iterator[tuple[Side, Side]]:
    if source.strip() == target.strip():
        raise ConfigError("SOURCE and TARGET are the same ledger")
    src = open_side(source, create=False, timeout_ms=timeout_ms)
    try:
        dst = open_side(target, create=True, timeout_ms=timeout_ms)
        try:
            yield src, dst
        finally:
            dst.close()
    finally:
        src.close()
