"""A PostgreSQL URL in the form that is safe to log or show: the password masked.

Importing this module needs no database driver (the settings use it).
"""

from __future__ import annotations

import re

MASK = "***"
# Query parameters of a libpq URL that carry a credential.
_SECRET_PARAMS = re.compile(r"([?&])(password|sslpassword)=[^&#]*", re.IGNORECASE)


def masked(url: str) -> str:
    """``url`` with its password (in the authority or the query) replaced by ``***``; never raises."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return MASK
    authority_end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    authority, tail = rest[:authority_end], rest[authority_end:]
    if "@" in authority:
        userinfo, host = authority.rsplit("@", 1)
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":" + MASK
        authority = f"{userinfo}@{host}"
    query = _SECRET_PARAMS.sub(r"\1\2=" + MASK, tail)
    return f"{scheme}://{authority}{query}"
