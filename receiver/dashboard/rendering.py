"""The Jinja2 environment of the dashboard: templates shipped in the package, autoescaped, strict."""

from __future__ import annotations

from typing import Any

import jinja2

from receiver.dashboard.view import FILTERS

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("receiver.dashboard", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(FILTERS)


def render(template: str, **context: Any) -> str:
    return _env.get_template(template).render(**context)
