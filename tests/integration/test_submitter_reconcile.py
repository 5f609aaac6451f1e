"""Webhooks the sandbox drops are found by ``wavehook reconcile``, ingested once through the receiver's ingest
path (events, status, handler runs as for a webhook), and a second pass changes nothing."""

from __future__ import annotations

import json

import pytest

from submitter import Submitter
from tests.integration.submitter_support import Loop
from tests.support import wait_for

pytestmark = pytest.mark.integration
T2V = "bytedance/seedance-v1-lite-t2v-480p"


def test_dropped_webhooks_found_and_ingested_once(loop: Loop) -> None:
    """Five dropped outcomes become five reconciled events and complete their predictions; the one delivered
    webhook is left alone; handler runs are the same as a webhook's and get dispatched by the receiver."""
    with Submitter(loop.settings) as sub:
        dropped = [str(sub.submit(T2V, {"prompt": f"fox {n} [sandbox:drop]"}).prediction_id) for n in range(5)]
        delivered = str(sub.submit(T2V, {"prompt": "delivered"}).prediction_id)
    wait_for(loop.settled, what="the sandbox to finish every task and delivery")
    loop.wait_final(1)
    assert {r["id"] for r in loop.rows("SELECT id FROM predictions WHERE status = 'created'")} == set(dropped)

    first = loop.cli("reconcile", "--older-than", "0", "--json")
    assert first.returncode == 0, first.stderr
    counts = json.loads(first.stdout)
    assert (counts["checked"], counts["missed"], counts["errors"]) == (5, 5, 0)
    missed = [json.loads(line) for line in first.stderr.splitlines() if '"webhook_missed"' in line]
    assert sorted(line["prediction_id"] for line in missed) == sorted(dropped)

    events = loop.rows("SELECT prediction_id, source, webhook_id FROM events ORDER BY id")
    assert sorted(e["prediction_id"] for e in events if e["source"] == "reconcile") == sorted(dropped)
    assert all(e["webhook_id"] == f"reconcile:{e['prediction_id']}:completed" for e in events[1:])
    assert [e["prediction_id"] for e in events if e["source"] == "webhook"] == [delivered]
    assert {r["status"] for r in loop.rows("SELECT status FROM predictions")} == {"completed"}
    runs = loop.rows("SELECT prediction_id, handler FROM handler_runs")
    assert runs, "the receiver routes completed predictions to at least one handler"
    handlers_of = {
        pid: sorted(r["handler"] for r in runs if r["prediction_id"] == pid) for pid in [*dropped, delivered]
    }
    assert all(names == handlers_of[delivered] for names in handlers_of.values())
    wait_for(
        lambda: loop.rows("SELECT count(*) AS n FROM handler_runs WHERE state <> 'succeeded'")[0]["n"] == 0,
        what="the receiver's dispatcher to run the reconciled predictions' handlers",
    )

    second = loop.cli("reconcile", "--older-than", "0", "--json")
    assert json.loads(second.stdout)["checked"] == 0
    assert len(loop.rows("SELECT id FROM events")) == 6
    assert len(loop.rows("SELECT id FROM handler_runs")) == len(runs)


def test_wait_falls_back_to_the_provider_when_the_webhook_never_comes(loop: Loop) -> None:
    """submit --wait on a task whose webhook is dropped asks the provider after --fallback-after, ingests the
    answer like a webhook, and ends with the final status."""
    result = loop.cli("submit", T2V, "-p", "prompt=a fox [sandbox:drop]", "--wait", "--fallback-after", "1s", "--json")
    assert result.returncode == 0, result.stderr
    final = json.loads(result.stdout)["prediction"]
    assert final["status"] == "completed"
    assert [(e["source"], e["webhook_id"]) for e in final["events"]] == [
        ("reconcile", f"reconcile:{final['id']}:completed")
    ]
    assert '"wait_fallback"' in result.stderr
    gave_up = loop.cli("submit", T2V, "-p", "prompt=an owl [sandbox:drop]", "--wait", "--timeout", "1s")
    assert gave_up.returncode == 4
    assert "is not final after 1 s" in gave_up.stderr
