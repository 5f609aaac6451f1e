"""What the receiver's lifespan opens, typed: every route reads it through ``receiver_state``.

The lifespan puts it on the receiver's own app, whichever app runs that lifespan: mounted in a host
application, the receiver works as soon as the host's lifespan enters the receiver's (see the README, "Mounting
the receiver").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from receiver.errors import StorageUnavailable

if TYPE_CHECKING:
    from receiver.correlation import Keys
    from receiver.dispatch.dispatcher import Dispatcher
    from receiver.http.auth import Gate
    from receiver.http.metrics import Metrics
    from receiver.ingest import Ingestor
    from receiver.media_store import MediaStore
    from receiver.refusals import Refusals
    from receiver.settings import Settings
    from receiver.signature import Verifier
    from receiver.store.ledger import Ledger

NOT_STARTED = (
    "the receiver has not started: its lifespan did not run (mounted in another application, enter "
    "`receiver_app.router.lifespan_context(app)` from the host's lifespan)"
)


@dataclasses.dataclass(slots=True)
class ReceiverState:
    settings: Settings
    verifier: Verifier
    ledger: Ledger
    ingestor: Ingestor
    metrics: Metrics
    media: MediaStore  # where outputs are kept: the media directory, or the bucket of WAVEHOOK_MEDIA_URL
    correlation_secret: str  # the one new tokens are made with
    correlation_keys: Keys  # every secret a token may have been made with
    session_secret: str  # the ledger's key behind dashboard logins
    clock: Callable[[], float]
    refusals: Refusals
    dispatcher: Dispatcher | None = None
    gate: Gate | None = None  # the access gate, made on first use


def receiver_state(app: Any) -> ReceiverState:
    """The state of ``app`` (a request's ``app``, or ``scope["app"]``); 503 if its lifespan has not run."""
    found: ReceiverState | None = getattr(app.state, "receiver", None)
    if found is None:
        raise StorageUnavailable(NOT_STARTED, reason="not_started")
    return found


def route_path(scope: Any) -> str:
    """The path within the receiver: without the prefix it is mounted under (``root_path``)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def base_path(scope: Any) -> str:
    """The prefix the receiver is mounted under (``""`` at the root), for the links it renders."""
    root: str = scope.get("root_path", "")
    return root.rstrip("/")
