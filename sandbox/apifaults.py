"""Faults on the API side, chosen per API request: from its ``X-Sandbox-Faults`` header when that names any,
otherwise rolled from the run's rates (``--api-faults``); ``X-Sandbox-Faults: none`` exempts a request.

The header may name task faults (``sandbox.faults``) and API faults together: ``duplicate, drop_answer``.
``rate_limit`` and ``server_error`` answer before the request is handled (nothing is created);
``answer_timeout`` and ``drop_answer`` let it be handled (a submit creates its task), then hold the answer or
close the connection without one. A submit's prompt marker (``[sandbox:drop_answer]``) works as well: the
gateway (``sandbox.gateway``) applies and logs every API fault, whichever way it was asked for.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping

from sandbox.faults import NONE, FaultError, number

# name -> what it does; the README lists the same table.
API_FAULTS: dict[str, str] = {
    "rate_limit": "429 with Retry-After (rate_limit=SECONDS, default --retry-after); nothing is handled",
    "server_error": "500, 502 or 503 (server_error=STATUS picks one); nothing is handled",
    "answer_timeout": "handled, then the answer is held for SECONDS (default --answer-hold) or until the client "
    "hangs up",
    "drop_answer": "handled, then the connection is closed without an answer",
}
# In --api-faults the namespace is the API's own, so `timeout` can only mean a held answer; in the header it
# is the task outcome `timeout` (sandbox.faults).
RATE_ALIASES = {"timeout": "answer_timeout"}
SERVER_ERRORS = (500, 502, 503)


@dataclasses.dataclass(frozen=True, slots=True)
class ApiPlan:
    """The API faults of one request; at most one of each kind, and the early ones win."""

    rate_limit: float | None = None  # the Retry-After to send
    server_error: int | None = None  # the status to answer
    answer_timeout: float | None = None  # how long to hold the answer
    drop_answer: bool = False

    def names(self) -> list[str]:
        return [name for name in API_FAULTS if getattr(self, name) not in (None, False)]

    @property
    def early(self) -> bool:
        """Answered before the request is handled."""
        return self.rate_limit is not None or self.server_error is not None

    def merge(self, other: ApiPlan) -> ApiPlan:
        return ApiPlan(
            rate_limit=self.rate_limit if self.rate_limit is not None else other.rate_limit,
            server_error=self.server_error if self.server_error is not None else other.server_error,
            answer_timeout=self.answer_timeout if self.answer_timeout is not None else other.answer_timeout,
            drop_answer=self.drop_answer or other.drop_answer,
        )


def split(spec: str) -> tuple[list[str], list[str], bool]:
    """A header's parts: (API fault parts, task fault parts, whether it said ``none``)."""
    api: list[str] = []
    task: list[str] = []
    exempt = False
    for part in (p.strip() for p in spec.split(",")):
        name = part.partition("=")[0].strip().lower()
        if not part:
            continue
        if name == NONE:
            exempt = True
        elif name in API_FAULTS:
            api.append(part)
        else:
            task.append(part)
    return api, task, exempt


def parse_api_plan(parts: list[str], *, retry_after: float, hold: float, source: str) -> ApiPlan:
    """``["rate_limit=2", "drop_answer"]`` -> ApiPlan; raises FaultError naming the part and the choices."""
    values: dict[str, object] = {}
    for part in parts:
        raw_name, has_value, raw_value = (s.strip() for s in part.partition("="))
        name = raw_name.lower()
        if name == "drop_answer":
            if has_value:
                raise FaultError(f"{source}: fault 'drop_answer' takes no value (got {part!r})")
            values[name] = True
        elif name == "server_error":
            status = (
                int(number(raw_value, name=name, source=source, low=500, high=503, what="a status"))
                if has_value
                else 500
            )
            if status not in SERVER_ERRORS:
                raise FaultError(f"{source}: server_error={raw_value!r} is not one of 500, 502, 503")
            values[name] = int(status)
        else:
            default = retry_after if name == "rate_limit" else hold
            values[name] = (
                number(raw_value, name=name, source=source, low=0, high=3600, what="a number of seconds")
                if has_value
                else default
            )
    return ApiPlan(**values)  # type: ignore[arg-type]


def parse_api_rates(spec: str) -> dict[str, float]:
    """``"rate_limit=0.2,timeout=0.05"`` -> {name: probability}; at most one fault per request, so the rates
    may add up to 1 at most."""
    rates: dict[str, float] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        raw_name, _, raw_rate = (s.strip() for s in part.partition("="))
        name = RATE_ALIASES.get(raw_name.lower(), raw_name.lower())
        if name not in API_FAULTS:
            raise FaultError(
                f"API fault rates: unknown fault {raw_name!r}; known: {', '.join(API_FAULTS)} (or timeout)"
            )
        rates[name] = number(raw_rate, name=name, source="API fault rates", low=0, high=1, what="a probability")
    if sum(rates.values()) > 1:
        raise FaultError(f"API fault rates: they add up to {sum(rates.values()):g}; one request has one fault at most")
    return rates


def roll_api(rng: random.Random, rates: Mapping[str, float], *, retry_after: float, hold: float) -> ApiPlan:
    """One draw per request over the faults in a fixed order, so that a seed replays the same sequence."""
    if not rates:
        return ApiPlan()
    draw = rng.random()
    for name in API_FAULTS:
        rate = rates.get(name, 0.0)
        if draw < rate:
            if name == "rate_limit":
                return ApiPlan(rate_limit=retry_after)
            if name == "server_error":
                return ApiPlan(server_error=rng.choice(SERVER_ERRORS))
            if name == "answer_timeout":
                return ApiPlan(answer_timeout=hold)
            return ApiPlan(drop_answer=True)
        draw -= rate
    return ApiPlan()
