"""A local imitation of the provider's v3 API that runs tasks, serves real media and delivers signed webhooks,
with faults injected on request."""

from __future__ import annotations

from typing import TYPE_CHECKING

from receiver.faces import lazy

if TYPE_CHECKING:
    from sandbox.app import create_app
    from sandbox.config import SandboxConfig

__all__ = ["SandboxConfig", "create_app"]
__getattr__, __dir__ = lazy(
    __name__,
    {
        "SandboxConfig": "sandbox.config",
        "create_app": "sandbox.app",
    },
)
