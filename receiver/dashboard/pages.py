"""The dashboard's pages. Each page is a few named sections; ``/fragments/…`` answers the same sections as
JSON so the page's script can swap in what changed without a reload (short polling, which works the same
whichever worker process answers)."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from receiver.dashboard import view
from receiver.dashboard.rendering import render
from receiver.errors import NotFound
from receiver.http.params import cursor_after, prediction_cursor
from receiver.http.state import base_path, receiver_state, route_path
from receiver.store.ledger import Ledger
from receiver.store.records import REPLAYABLE

PAGE_SIZE = 50
DEAD_PAGE_SIZE = 200
# Pages load media from the provider's CDN (or the sandbox), never scripts or styles from anywhere else.
CSP = (
    "default-src 'self'; img-src 'self' http: https: data:; media-src 'self' http: https:; "
    "script-src 'self'; style-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def html_page(request: Request, template: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    access = getattr(request.state, "access", None)
    context.setdefault("base", base_path(request.scope))
    body = render(
        template,
        csrf_token=access.csrf_token if access else "",
        logged_in=access is not None and access.kind == "cookie",
        path=route_path(request.scope),
        **context,
    )
    return HTMLResponse(body, status_code=status_code, headers=SECURITY_HEADERS)


def _hashes(sections: dict[str, str]) -> dict[str, str]:
    """Lets the page's script skip a section whose HTML has not changed (a swap would restart a playing video)."""
    return {name: hashlib.sha256(html.encode()).hexdigest()[:16] for name, html in sections.items()}


def _sections(sections: dict[str, str]) -> JSONResponse:
    return JSONResponse({"sections": sections, "hashes": _hashes(sections)}, headers={"Cache-Control": "no-store"})


# -- the predictions list -------------------------------------------------------------------------------------


async def _index_data(ledger: Ledger, params: dict[str, Any], now: float) -> dict[str, Any]:
    filters = {"status": params["status"], "model": params["model"]}
    rows, stats, models, total = await asyncio.gather(
        ledger.list_predictions(**filters, before=params["before"], limit=PAGE_SIZE + 1),
        ledger.stats(now=now),
        ledger.models(),
        ledger.count_predictions(**filters),
    )
    return {"stats": stats, "models": models, "rows": rows[:PAGE_SIZE], "more": len(rows) > PAGE_SIZE, "total": total}


def _counts_by_model(predictions: list[tuple[str, str, int]]) -> tuple[list[str], list[dict[str, Any]]]:
    statuses = sorted({status for _m, status, _c in predictions}, key=view.status_sort_key)
    table: dict[str, dict[str, int]] = {}
    for model, status, count in predictions:
        table.setdefault(model, {})[status] = count
    rows = [{"model": m, "counts": c, "total": sum(c.values())} for m, c in sorted(table.items())]
    return statuses, rows


async def _index_sections(request: Request) -> tuple[dict[str, str], dict[str, Any]]:
    query = request.query_params
    params = {
        "status": query.get("status") or None,
        "model": query.get("model") or None,
        "cursor": query.get("cursor") or None,
        "before": prediction_cursor(query.get("cursor")),
    }
    state = receiver_state(request.app)
    now = state.clock()
    data = await _index_data(state.ledger, params, now)
    stats = data["stats"]
    statuses, by_model = _counts_by_model(stats.predictions)
    totals = {status: sum(r["counts"].get(status, 0) for r in by_model) for status in statuses}
    rows = data["rows"]
    context = {
        "base": base_path(request.scope),
        **params,
        "now": now,
        "stats": stats,
        "statuses": statuses,
        "by_model": by_model,
        "totals": totals,
        "predictions": [{**row, "started_at": view.started_at(row)} for row in rows],
        "completion": view.completion_seconds,
        "total": data["total"],
        "next_cursor": cursor_after(rows[-1]) if data["more"] else None,
        "models": data["models"],
        "refused": state.refusals.panel(),
    }
    sections = {
        "summary": render("_summary.html", **context),
        "rows": render("_rows.html", **context),
        "pager": render("_pager.html", **context),
    }
    return sections, context


async def index(request: Request) -> Response:
    sections, context = await _index_sections(request)
    live = f"{context['base']}/fragments/index" + (f"?{request.url.query}" if request.url.query else "")
    return html_page(request, "index.html", sections=sections, hashes=_hashes(sections), live_url=live, **context)


async def index_fragments(request: Request) -> Response:
    sections, _context = await _index_sections(request)
    return _sections(sections)


# -- one prediction -------------------------------------------------------------------------------------------


async def _detail_sections(request: Request) -> tuple[dict[str, str], dict[str, Any]]:
    prediction_id = request.path_params["prediction_id"]
    item = await receiver_state(request.app).ledger.get_prediction(prediction_id)
    if item is None:
        raise NotFound(f"no prediction with id {prediction_id!r} in the ledger")
    context = {
        "base": base_path(request.scope),
        "p": item,
        "started_at": view.started_at(item),
        "completion": view.completion_seconds(item),
        "outputs": view.outputs(item, base=base_path(request.scope)),
        "timeline": view.timeline(item),
        "replayable": REPLAYABLE,
    }
    sections = {name: render(f"_detail_{name}.html", **context) for name in ("head", "outputs", "runs", "timeline")}
    return sections, context


async def detail(request: Request) -> Response:
    sections, context = await _detail_sections(request)
    live = f"{context['base']}/fragments/predictions/{request.path_params['prediction_id']}"
    return html_page(request, "detail.html", sections=sections, hashes=_hashes(sections), live_url=live, **context)


async def detail_fragments(request: Request) -> Response:
    sections, _context = await _detail_sections(request)
    return _sections(sections)


# -- dead letters ---------------------------------------------------------------------------------------------


async def _dead_data(ledger: Ledger) -> dict[str, Any]:
    dead = await ledger.list_runs(state="dead", limit=DEAD_PAGE_SIZE + 1)
    models = await ledger.models_of([run["prediction_id"] for run in dead])
    return {"runs": dead[:DEAD_PAGE_SIZE], "more": len(dead) > DEAD_PAGE_SIZE, "models": models}


async def _dead_sections(request: Request) -> tuple[dict[str, str], dict[str, Any]]:
    data = await _dead_data(receiver_state(request.app).ledger)
    context = {**data, "page_size": DEAD_PAGE_SIZE, "base": base_path(request.scope)}
    return {"dead": render("_dead_rows.html", **context)}, context


async def dead(request: Request) -> Response:
    sections, context = await _dead_sections(request)
    return html_page(
        request,
        "dead.html",
        sections=sections,
        hashes=_hashes(sections),
        live_url=f"{context['base']}/fragments/dead",
        **context,
    )


async def dead_fragments(request: Request) -> Response:
    sections, _context = await _dead_sections(request)
    return _sections(sections)
