"""Downloads: the outputs the download handler kept, one row per (prediction, URL)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from receiver.store.query import SQL, Query
from receiver.store.records import Download

_RECORD = SQL(
    """
    INSERT INTO downloads (prediction_id, url, path, size, sha256, content_type, downloaded_at)
    VALUES (:prediction_id, :url, :path, :size, :sha256, :content_type, :now)
    ON CONFLICT (prediction_id, url) DO UPDATE SET
        path = excluded.path, size = excluded.size, sha256 = excluded.sha256,
        content_type = excluded.content_type, downloaded_at = excluded.downloaded_at
    """
)
_OF_PREDICTION = SQL("SELECT * FROM downloads WHERE prediction_id = :id ORDER BY id")
_OF_PREDICTIONS = SQL("SELECT * FROM downloads WHERE prediction_id = ANY(:ids::text[]) ORDER BY id")
_BY_ID = SQL("SELECT * FROM downloads WHERE id = :id")


def record_download(download: Download, *, now: float) -> Query[None]:
    yield _RECORD(
        prediction_id=download.prediction_id,
        url=download.url,
        path=download.path,
        size=download.size,
        sha256=download.sha256,
        content_type=download.content_type,
        now=now,
    )


def list_downloads(prediction_id: str) -> Query[list[dict[str, Any]]]:
    return (yield _OF_PREDICTION(id=prediction_id)).rows


def downloads_of(prediction_ids: Iterable[str]) -> Query[dict[str, list[dict[str, Any]]]]:
    """The outputs kept so far of each prediction, oldest first: what its handlers see as ``ctx.downloads``."""
    found: dict[str, list[dict[str, Any]]] = {}
    ids = sorted(set(prediction_ids))
    if ids:
        for row in (yield _OF_PREDICTIONS(ids=ids)).rows:
            found.setdefault(row["prediction_id"], []).append(row)
    return found


def get_download(download_id: int) -> Query[dict[str, Any] | None]:
    return (yield _BY_ID(id=download_id)).first()
