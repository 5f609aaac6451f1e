#!/usr/bin/env bash
# Sets up everything the tests need (a virtualenv, the project with its test extra; as root, Debian's Chromium for
# the browser tests, Debian's PostgreSQL server binaries for the storage tests on both backends, PgBouncer for
# the pooler test, and Node.js with npm for the JavaScript SDK test) and runs lint, type checks and the whole
# test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ]; then
  # The browser tests drive Debian's Chromium through Playwright; no browser is ever downloaded.
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
if [ ! -x /usr/lib/postgresql/15/bin/initdb ] && [ "$(id -u)" = 0 ]; then
  # The storage tests run on both backends: they start a throwaway cluster from Debian's server binaries.
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
if [ ! -x /usr/sbin/pgbouncer ] && [ "$(id -u)" = 0 ]; then
  # tests/receiver/store/postgres/test_pooler.py runs the PostgreSQL ledger through a real PgBouncer.
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null
fi
if ! command -v npm >/dev/null && [ "$(id -u)" = 0 ]; then
  # tests/integration/test_sandbox_js_sdk.py installs the official JavaScript SDK with npm and runs it on node.
  # Some builds of nodejs bring npm along; Debian's own needs its npm package as well.
  apt-get update -qq
  command -v node >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs >/dev/null
  command -v npm >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
fi
python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip >/dev/null
.venv/bin/pip install --quiet -e '.[test]'
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
exec .venv/bin/pytest "$@"
