"""One query text for both backends: each dialect's translation, the steps a backend walks, the WHERE builder."""

from __future__ import annotations

from typing import Any

import pytest

from receiver.store.query import SQL, Query, Steps, where


def test_one_text_becomes_each_dialects_statement() -> None:
    """Named parameters become psycopg's (a literal % doubled, casts kept); list membership becomes json_each."""
    sql = SQL("SELECT id FROM t WHERE n LIKE 'a%' AND id = ANY(:ids::bigint[]) AND x = :x")
    assert sql.sqlite == "SELECT id FROM t WHERE n LIKE 'a%' AND id IN (SELECT value FROM json_each(:ids)) AND x = :x"
    assert sql.postgres == "SELECT id FROM t WHERE n LIKE 'a%%' AND id = ANY(%(ids)s::bigint[]) AND x = %(x)s"


def test_a_dialect_may_have_its_own_text_or_none() -> None:
    """Texts given per dialect are used as given (translated); None skips the statement there."""
    sql = SQL(sqlite="SELECT char(:n)", postgres="SELECT chr(:n)")
    assert (sql.sqlite, sql.postgres) == ("SELECT char(:n)", "SELECT chr(%(n)s)")
    only = SQL(sqlite=None, postgres="SELECT pg_notify('c', '')")
    assert (only.sqlite, only.postgres) == (None, "SELECT pg_notify('c', '')")


def _two_steps() -> Query[tuple[int, int]]:
    first = yield SQL("SELECT :a AS a")(a=1)
    skipped = yield SQL(sqlite=None, postgres="SELECT 2")()
    second = yield SQL("UPDATE t SET a = :a")(a=first.rows[0]["a"])
    return len(skipped.rows), second.rowcount


@pytest.mark.parametrize(("dialect", "texts"), [("sqlite", 2), ("postgres", 3)])
def test_steps_give_each_statement_of_the_dialect_and_then_the_value(dialect: str, texts: int) -> None:
    """A backend is handed the statements it runs, in order, each after the previous one's result; a statement
    its dialect skips returns no rows; the query's return value is the steps' value."""
    steps = Steps(_two_steps(), dialect)
    seen: list[tuple[str, Any]] = []
    step = steps.start()
    while step is not None:
        seen.append(step)
        step = steps.send([{"a": 1}] if len(seen) == 1 else [], 7)
    assert len(seen) == texts
    assert seen[-1][1] == {"a": 1}
    assert steps.value == (0, 7)


def test_where_keeps_the_given_clauses_with_their_parameters() -> None:
    """Clauses whose value is None are left out; a clause of two parameters takes a tuple."""
    clause, params = where({"a = :a": 1, "b = :b": None, "(c < :c OR (c = :c AND d < :d))": (2, 3)})
    assert clause == "WHERE a = :a AND (c < :c OR (c = :c AND d < :d))"
    assert params == {"a": 1, "c": 2, "d": 3}
    assert where({"a = :a": None}) == ("", {})
