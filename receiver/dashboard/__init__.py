"""The dashboard: server-rendered pages (Starlette + Jinja2), a little plain JavaScript, nothing external.

``routes`` lists them; ``pages``, ``login`` and ``media`` answer them; ``view`` and ``rendering`` shape them."""
