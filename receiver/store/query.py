"""Queries written once for every backend: the table-group modules (``predictions``, ``runs``, ``downloads``,
``submissions``, ``meta``, ``sessions``, ``stats``) describe what to run, and each backend only runs it.

A query is a generator that yields ``Statement``s and is sent back each one's ``Result``, so the logic between
statements (row conversion, the order of steps, what a result means) exists once, while SQLite runs it
synchronously on a thread's connection (``connection.run``) and PostgreSQL awaits it on a pooled one
(``postgres.connection.run``)::

    def get_run(run_id: int) -> Query[dict[str, Any] | None]:
        run = (yield _RUN(id=run_id)).first()
        ...

One SQL text serves both dialects when written with ``:name`` parameters (SQLite's; PostgreSQL gets
``%(name)s``) and ``= ANY(:name::type[])`` for membership in a list (SQLite gets ``IN (SELECT value FROM
json_each(:name))``, the list sent as JSON). Where the dialects really differ (``FOR UPDATE SKIP LOCKED``,
``json_each`` against ``unnest``), ``SQL`` takes one text per dialect, side by side; a dialect's text of
``None`` skips the statement on that backend (its result is empty).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Generator, Mapping
from typing import Any, Generic, TypeVar

T = TypeVar("T")
_SAME = object()  # "the same text as the other dialect's"
_ANY = re.compile(r"=\s*ANY\(:(\w+)::\w+\[\]\)")
_NAME = re.compile(r"(?<![:\w]):(\w+)")


@functools.lru_cache(maxsize=512)
def _for_sqlite(text: str) -> str:
    return _ANY.sub(r"IN (SELECT value FROM json_each(:\1))", text)


@functools.lru_cache(maxsize=512)
def _for_postgres(text: str) -> str:
    return _NAME.sub(r"%(\1)s", text.replace("%", "%%"))


class SQL:
    """One statement in each dialect; call it with the parameters to make the ``Statement`` a query yields."""

    __slots__ = ("postgres", "sqlite")

    def __init__(self, text: str | None = None, *, sqlite: Any = _SAME, postgres: Any = _SAME) -> None:
        self.sqlite: str | None = _for_sqlite(text if sqlite is _SAME else sqlite) if sqlite is not None else None
        self.postgres: str | None = (
            _for_postgres(text if postgres is _SAME else postgres) if postgres is not None else None
        )

    def __call__(self, **params: Any) -> Statement:
        return Statement(self, params)


@dataclasses.dataclass(frozen=True, slots=True)
class Statement:
    sql: SQL
    params: Mapping[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class Result:
    """The rows a statement returned (dicts keyed by column name: the seam's row shape) and the rows it changed."""

    rows: list[dict[str, Any]]
    rowcount: int = -1

    def first(self) -> dict[str, Any] | None:
        return self.rows[0] if self.rows else None

    def column(self, name: str) -> list[Any]:
        return [row[name] for row in self.rows]


Query = Generator[Statement, Result, T]


class Steps(Generic[T]):
    """A query as one dialect's backend runs it: ``start()`` and then ``send(rows, rowcount)`` after each
    statement give the next statement's text and parameters, or None once the query has returned its ``value``.
    A statement without a text in this dialect is skipped (it returns no rows)."""

    def __init__(self, query: Query[T], dialect: str) -> None:
        self._query = query
        self._dialect = dialect
        self.value: T

    def start(self) -> tuple[str, Mapping[str, Any]] | None:
        return self._advance(None)

    def send(self, rows: list[dict[str, Any]], rowcount: int) -> tuple[str, Mapping[str, Any]] | None:
        return self._advance(Result(rows, rowcount))

    def _advance(self, result: Result | None) -> tuple[str, Mapping[str, Any]] | None:
        try:
            while True:
                step = self._query.send(result)  # type: ignore[arg-type]  # a generator's first send is None
                text: str | None = getattr(step.sql, self._dialect)
                if text is not None:
                    return text, step.params
                result = Result([], 0)
        except StopIteration as stop:
            self.value = stop.value
            return None


def where(filters: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """``WHERE`` of the clauses whose value is given, with their parameters: ``{"state = :state": value}``; a
    clause of several parameters takes a tuple, in the order they first appear. ``("", {})`` when none is given.
    The clauses are fixed text: values only ever travel as parameters."""
    clauses: list[str] = []
    params: dict[str, Any] = {}
    for clause, value in filters.items():
        if value is None:
            continue
        clauses.append(clause)
        names = list(dict.fromkeys(_NAME.findall(clause)))
        params.update(zip(names, value, strict=True) if len(names) > 1 else {names[0]: value})
    return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), params
