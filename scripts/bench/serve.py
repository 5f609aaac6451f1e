"""Run a baseline app under uvicorn with exactly the server ``wavehook serve`` runs (one worker).

The app differs (a bare Starlette app, a naive receiver); the server does not: its settings come from the one
function ``serve`` takes them from (``receiver.http.server.uvicorn_options``: httptools and uvloop chosen
automatically, serve's HTTP protocol with its deadlines and caps, keep-alive, the connection cap, no access log,
no server header, no WebSocket protocol), read from the same environment variables.
"""

from __future__ import annotations

import argparse
import os

import uvicorn

from receiver.http.server import uvicorn_options
from receiver.settings import Settings

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
    options = uvicorn_options(Settings.from_env(os.environ))
    uvicorn.run(APPS[args.app], factory=True, host=args.host, port=args.port, **options)


if __name__ == "__main__":
    main()
