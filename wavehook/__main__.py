"""``python -m wavehook``: the same command line as the ``wavehook`` script (the demo starts its processes so)."""

from __future__ import annotations

from wavehook.console import main

main()
