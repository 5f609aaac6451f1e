"""Fault specifications: header and rate syntax, refusals that name the culprit, seeded rolls."""

from __future__ import annotations

import random

import pytest

from sandbox.faults import FAULTS, FaultError, FaultPlan, parse_plan, parse_rates, roll


def test_header_spec_names_faults_with_and_without_values() -> None:
    """Names, aliases, spaces and values parse into the plan; a bare delay takes the run's delay."""
    plan = parse_plan(" Duplicate, reorder , delay=2.5, drop,fail, receiver_down", default_delay=4.0)
    assert plan == FaultPlan(duplicate=True, stale_processing=True, delay=2.5, drop=True, fail=True, receiver_down=4.0)
    assert parse_plan("delay", default_delay=4.0).delay == 4.0
    assert parse_plan("", default_delay=1.0) == FaultPlan()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("explode", "unknown fault 'explode'"),
        ("delay=soon", "delay='soon' is not a number"),
        ("delay=-1", "from 0 to 3600"),
        ("duplicate=1", "takes no value"),
    ],
)
def test_bad_header_spec_is_refused_naming_the_part(spec: str, message: str) -> None:
    """Unknown names, non-numeric or out-of-range seconds and stray values raise FaultError saying which."""
    with pytest.raises(FaultError, match=message):
        parse_plan(spec, default_delay=1.0)


def test_rates_parse_and_refuse_what_is_not_a_probability() -> None:
    """Rates are name=probability pairs from 0 to 1; receiver_down is a period, not a rate."""
    assert parse_rates("duplicate=0.3, reorder=0.1,drop=0") == {"duplicate": 0.3, "stale_processing": 0.1, "drop": 0.0}
    for spec, message in [("drop=1.5", "probability"), ("drop=x", "probability"), ("receiver_down=0.1", "outage")]:
        with pytest.raises(FaultError, match=message):
            parse_rates(spec)


def test_rolls_follow_the_rates_and_replay_with_a_seed() -> None:
    """Over many tasks each fault comes near its rate; the same seed gives the same plans."""
    rates = {"duplicate": 0.3, "stale_processing": 0.1, "drop": 0.1, "delay": 0.5}
    rng = random.Random(11)
    plans = [roll(rng, rates, default_delay=2.0) for _ in range(2000)]
    share = {name: sum(bool(getattr(p, name)) for p in plans) / len(plans) for name in rates}
    for name, rate in rates.items():
        assert abs(share[name] - rate) < 0.05, (name, share[name])
    assert {p.delay for p in plans} == {0.0, 2.0}
    assert not any(p.fail or p.bad_signature for p in plans)
    again = random.Random(11)
    assert [roll(again, rates, default_delay=2.0) for _ in range(2000)] == plans


def test_every_fault_is_described() -> None:
    """Each fault has a description, and a plan lists its active faults in that order."""
    assert all(FAULTS.values())
    assert FaultPlan(drop=True, duplicate=True, delay=1.0).names() == ["duplicate", "delay", "drop"]
