"""Log lines and progress bars share a terminal's stderr: while a bar is drawn, log lines are held back and
written after it, so a line never lands in the middle of the bar."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from typing import TextIO


class HoldableStream(io.TextIOBase):
    """A text stream that passes writes on to ``target``, or keeps them while ``holding()``."""

    def __init__(self, target: TextIO) -> None:
        super().__init__()
        self.target = target
        self._held: list[str] | None = None

    def write(self, text: str) -> int:
        if self._held is not None:
            self._held.append(text)
        else:
            self.target.write(text)
        return len(text)

    def flush(self) -> None:
        if self._held is None:
            self.target.flush()

    def isatty(self) -> bool:
        return self.target.isatty()

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        """Keep every line written meanwhile; write them all when the block ends."""
        self._held = []
        try:
            yield
        finally:
            held, self._held = self._held, None
            self.target.write("".join(held))
            self.target.flush()
