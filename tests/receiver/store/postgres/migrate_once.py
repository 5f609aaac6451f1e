"""One booting instance, for the concurrency test: connect, wait for the start signal, migrate, print."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import psycopg

from receiver.store.postgres.schema import migrate


def main(url: str, go: Path) -> None:
    with psycopg.connect(url) as conn:
        deadline = time.monotonic() + 60
        while not go.exists():  # every process connected before any migrates: they really race
            if time.monotonic() > deadline:
                raise SystemExit("no start signal")
            time.sleep(0.005)
        print(json.dumps(migrate(conn)))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
