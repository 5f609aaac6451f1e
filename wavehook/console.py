"""The ``wavehook`` console script and ``python -m wavehook``: the command line, with a cheaper start.

A command's start imports tens of thousands of objects that live as long as the process; the garbage collector,
run every few hundred new objects, would walk them again and again and find next to no garbage. It is paused
from the first import until the command line has loaded the command to run, and back on before that command
runs (the group's callback in ``wavehook.cli``); ``serve`` pauses it once more until its app is built.
"""

from __future__ import annotations

import gc


def main() -> None:
    gc.disable()
    from wavehook.cli import main as command_line

    command_line(prog_name="wavehook")
