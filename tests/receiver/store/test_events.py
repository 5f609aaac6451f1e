"""The write path: events stored once, the state machine never moving backwards, the outbox in one transaction.

SQLite's own statements (``receiver/store/events.py``), on a bare connection; PostgreSQL's write path is its
own (``postgres/ingest.py``), and both are held to the same contract in test_ledger.py.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Iterator, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from receiver.delivery import parse
from receiver.statuses import TERMINAL, rank
from receiver.store.connection import connect, open_database
from receiver.store.events import record_delivery, record_quarantine
from receiver.store.records import IngestResult, Quarantined
from tests.support import prediction_body

TERMINALS = ("completed", "failed", "cancelled", "timeout")


def deliver(
    conn: sqlite3.Connection,
    prediction_id: str,
    status: str,
    *,
    webhook_id: str | None = None,
    now: float = 1000.0,
    handlers: Sequence[str] = (),
    terminal: tuple[str, ...] = TERMINALS,
    body: bytes | None = None,
) -> IngestResult:
    """One delivery in its own transaction, as the writer would run it."""
    delivery = parse(
        body or prediction_body(prediction_id, status), webhook_id=webhook_id or f"{prediction_id}-{status}"
    )
    conn.execute("BEGIN IMMEDIATE")
    result = record_delivery(conn, delivery, now=now, terminal_statuses=terminal, handlers=handlers)
    conn.execute("COMMIT")
    return result


def prediction(conn: sqlite3.Connection, prediction_id: str) -> sqlite3.Row:
    row = conn.execute("SELECT * FROM predictions WHERE id = ?", (prediction_id,)).fetchone()
    assert row is not None
    return row  # type: ignore[no-any-return]


def count(conn: sqlite3.Connection, table: str) -> int:
    return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608


def test_delivery_for_unknown_prediction_creates_it(conn: sqlite3.Connection) -> None:
    """A delivery nobody submitted creates the prediction with every field the body carries."""
    result = deliver(conn, "p1", "completed", now=1234.5)
    assert (result.duplicate, result.applied, result.conflict) == (False, True, False)
    row = prediction(conn, "p1")
    assert (row["status"], row["model"]) == ("completed", "bytedance/seedance-v1-lite-t2v-480p")
    assert json.loads(row["outputs"]) == ["https://cdn.example.com/p1/output.mp4"]
    assert json.loads(row["has_nsfw_contents"]) == [False]
    assert json.loads(row["timings"]) == {"inference": 41234}
    assert row["first_seen_at"] == row["updated_at"] == row["completed_at"] == 1234.5
    assert row["last_event_id"] == result.event_id
    event = conn.execute("SELECT * FROM events").fetchone()
    assert (event["webhook_id"], event["prediction_id"], event["status"], event["applied"]) == (
        "p1-completed",
        "p1",
        "completed",
        1,
    )
    assert event["body"] == prediction_body("p1", "completed")
    assert event["received_at"] == 1234.5


def test_same_delivery_twice_is_stored_once(conn: sqlite3.Connection) -> None:
    """A repeat of the same webhook-id and body is a duplicate: one row, its counter bumped."""
    first = deliver(conn, "p1", "completed", now=1.0)
    again = deliver(conn, "p1", "completed", now=2.0)
    assert (first.duplicate, again.duplicate) == (False, True)
    assert again.event_id == first.event_id
    row = conn.execute("SELECT duplicates, last_duplicate_at FROM events").fetchone()
    assert (count(conn, "events"), row["duplicates"], row["last_duplicate_at"]) == (1, 1, 2.0)


def test_same_webhook_id_with_another_body_is_a_conflict_and_still_applied(conn: sqlite3.Connection) -> None:
    """The provider's webhook-id may equal the task id: a second body under it is kept, flagged and applied."""
    deliver(conn, "p1", "processing", webhook_id="p1")
    second = deliver(conn, "p1", "completed", webhook_id="p1")
    assert (second.duplicate, second.conflict, second.applied) == (False, True, True)
    assert count(conn, "events") == 2
    flags = conn.execute("SELECT status, conflict FROM events ORDER BY id").fetchall()
    assert [tuple(f) for f in flags] == [("processing", 0), ("completed", 1)]
    assert prediction(conn, "p1")["status"] == "completed"


@pytest.mark.parametrize(
    "order",
    [
        ("completed", "processing", "created"),
        ("processing", "completed", "created"),
        ("created", "completed", "processing"),
        ("completed", "created", "processing"),
    ],
)
def test_reordered_statuses_never_regress(conn: sqlite3.Connection, order: tuple[str, ...]) -> None:
    """Whatever order created/processing/completed arrive in, the prediction ends completed; late ones are kept."""
    for status in order:
        deliver(conn, "p1", status)
    assert prediction(conn, "p1")["status"] == "completed"
    assert count(conn, "events") == 3
    applied = {row["status"]: row["applied"] for row in conn.execute("SELECT status, applied FROM events")}
    assert applied["completed"] == 1


def test_first_terminal_status_wins(conn: sqlite3.Connection) -> None:
    """After completed, a failed delivery is stored as an event but does not change the prediction."""
    deliver(conn, "p1", "completed")
    late = deliver(conn, "p1", "failed")
    assert (late.applied, prediction(conn, "p1")["status"]) == (False, "completed")


def test_unknown_status_is_stored_and_not_terminal(conn: sqlite3.Connection) -> None:
    """A status the provider never documented replaces processing but is replaced by a real final status."""
    deliver(conn, "p1", "processing")
    odd = deliver(conn, "p1", "upscaling")
    assert odd.applied
    row = prediction(conn, "p1")
    assert (row["status"], row["completed_at"]) == ("upscaling", None)
    assert deliver(conn, "p1", "created").applied is False
    assert deliver(conn, "p1", "completed").applied
    assert deliver(conn, "p1", "upscaling2").applied is False
    assert prediction(conn, "p1")["status"] == "completed"


@pytest.mark.parametrize("status", ["cancelled", "timeout"])
def test_sdk_terminal_statuses_end_the_prediction(conn: sqlite3.Connection, status: str) -> None:
    """cancelled and timeout (terminal in the provider's SDK) are final: a later completed does not apply."""
    deliver(conn, "p1", status)
    assert prediction(conn, "p1")["completed_at"] is not None
    assert deliver(conn, "p1", "completed").applied is False
    assert prediction(conn, "p1")["status"] == status


def test_terminal_statuses_are_configurable(conn: sqlite3.Connection) -> None:
    """With a custom terminal set, a status outside it is not final."""
    deliver(conn, "p1", "cancelled", terminal=("completed", "failed"))
    assert deliver(conn, "p1", "completed", terminal=("completed", "failed")).applied


def test_later_delivery_keeps_fields_it_does_not_carry(conn: sqlite3.Connection) -> None:
    """A completed body without input or model keeps what an earlier delivery recorded."""
    deliver(conn, "p1", "processing")
    deliver(conn, "p1", "completed", body=json.dumps({"id": "p1", "status": "completed", "outputs": ["u"]}).encode())
    row = prediction(conn, "p1")
    assert row["model"] == "bytedance/seedance-v1-lite-t2v-480p"
    assert json.loads(row["input"])["prompt"].startswith("a red fox")
    assert json.loads(row["outputs"]) == ["u"]


def test_terminal_delivery_enqueues_one_run_per_handler_once(conn: sqlite3.Connection) -> None:
    """Handler runs are enqueued with the terminal transition, once, however often it is delivered again."""
    handlers = ("download", "notify")
    assert deliver(conn, "p1", "processing", handlers=handlers).runs_enqueued == 0
    assert deliver(conn, "p1", "completed", handlers=handlers).runs_enqueued == 2
    assert deliver(conn, "p1", "completed", handlers=handlers).runs_enqueued == 0  # duplicate
    other_body = prediction_body("p1", "completed", executionTime=3.2)
    assert deliver(conn, "p1", "completed", handlers=handlers, body=other_body).runs_enqueued == 0  # conflict
    assert deliver(conn, "p1", "failed", handlers=handlers).runs_enqueued == 0
    runs = conn.execute("SELECT prediction_id, status, handler, state FROM handler_runs ORDER BY handler").fetchall()
    assert [tuple(r) for r in runs] == [
        ("p1", "completed", "download", "pending"),
        ("p1", "completed", "notify", "pending"),
    ]


def test_delivery_rolls_back_as_one_unit(conn: sqlite3.Connection) -> None:
    """If enqueuing fails, neither the event nor the transition is left behind (one transaction)."""
    delivery = parse(prediction_body("p1", "completed"), webhook_id="w1")
    conn.execute("BEGIN IMMEDIATE")
    with pytest.raises(sqlite3.IntegrityError):  # a handler run needs a handler name: NOT NULL refuses None
        record_delivery(conn, delivery, now=1.0, terminal_statuses=TERMINALS, handlers=[None])  # type: ignore[list-item]
    conn.execute("ROLLBACK")
    assert (count(conn, "events"), count(conn, "predictions"), count(conn, "handler_runs")) == (0, 0, 0)


def test_quarantine_repeats_bump_the_count(conn: sqlite3.Connection) -> None:
    """The same refused body for the same reason is kept once with a count."""
    for now in (1.0, 2.0):
        item = Quarantined(webhook_id="w1", body=b"[]", body_sha256="h", reason="not_an_object", detail="d")
        record_quarantine(conn, item, now=now)
    row = conn.execute("SELECT count, received_at, last_seen_at, body FROM quarantine").fetchone()
    assert tuple(row) == (2, 1.0, 2.0, b"[]")


EXAMPLE_IDS = itertools.count()
STATUSES = st.sampled_from(["created", "processing", "completed", "failed", "cancelled", "timeout", "queued"])


@pytest.fixture(scope="module")
def shared_conn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    """One ledger for every generated example (each uses its own prediction id); no fsync, durability is not tested."""
    path = tmp_path_factory.mktemp("state-machine") / "ledger.db"
    open_database(path)
    connection = connect(path)
    connection.execute("PRAGMA synchronous = OFF")
    yield connection
    connection.close()


@settings(max_examples=80, deadline=None)
@given(statuses=st.lists(STATUSES, min_size=1, max_size=8))
def test_state_machine_never_moves_backwards(shared_conn: sqlite3.Connection, statuses: list[str]) -> None:
    """For any order of deliveries, the rank never drops and the first terminal status is the one that stays;
    an event is marked applied exactly when it moved the prediction."""
    conn = shared_conn
    prediction_id = f"p{next(EXAMPLE_IDS)}"  # every run of an example, replays included, gets a fresh prediction
    ranks = []
    for index, status in enumerate(statuses):
        result = deliver(conn, prediction_id, status, webhook_id=f"{prediction_id}-{index}")
        row = prediction(conn, prediction_id)
        ranks.append(row["status_rank"])
        stored = conn.execute("SELECT applied FROM events WHERE id = ?", (result.event_id,)).fetchone()[0]
        assert result.applied == bool(stored) == (row["last_event_id"] == result.event_id)
    assert ranks == sorted(ranks)
    terminal = [s for s in statuses if s in TERMINALS]
    final = prediction(conn, prediction_id)["status"]
    if terminal:
        assert final == terminal[0]
    else:
        best = max(rank(s, TERMINALS) for s in statuses)
        assert final == [s for s in statuses if rank(s, TERMINALS) == best][-1]
        assert best < TERMINAL
    count_for = conn.execute("SELECT count(*) FROM events WHERE prediction_id = ?", (prediction_id,)).fetchone()[0]
    assert count_for == len(statuses)
