"""Run a baseline app under uvicorn with exactly the settings ``wavehook serve`` uses (one worker)."""

from __future__ import annotations

import argparse

import uvicorn

APPS = {
    "bare": "bench.bare_app:create_app",
    "naive": "bench.naive_app:create_app",
    "naive-pg": "bench.naive_pg_app:create_app",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("app", choices=sorted(APPS))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # The same call as wavehook/commands/receiver.py: httptools and uvloop chosen automatically, no access log,
    # no server header, no WebSocket protocol, one worker in this process.
    uvicorn.run(
        APPS[args.app],
        factory=True,
        host=args.host,
        port=args.port,
        workers=1,
        access_log=False,
        log_config=None,
        log_level="info",
        server_header=False,
        ws="none",
    )


if __name__ == "__main__":
    main()
