"""The benchmark's helpers live in scripts/ (not a package of the distribution): put it on the path."""

from __future__ import annotations

import sys

from tests.support import ROOT

SCRIPTS = str(ROOT / "scripts")
if SCRIPTS not in sys.path:
    sys.path.insert(0, SCRIPTS)
