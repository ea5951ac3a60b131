"""The householder's override: a plan that outranks the rest until it ends; bad input gives
reasons, never an exception."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from fractal.executor import ExecutorState, Readings, Sources, decide, override_plan
from fractal.protocol import Mode, PlanSource

from tests.fractal.executor.executor_fixtures import START, envelope, everywhere, plan

READINGS = Readings(grid_w=0, devices={"battery": {"soc_pct": 50}})


def test_an_override_outranks_the_aggregator_until_it_ends() -> None:
    until = START + timedelta(minutes=47)
    override, problems = override_plan(
        envelope(), "battery", "charge", 2500, now=START, until=until
    )
    assert override is not None, problems
    sources = Sources(
        override=override, aggregator=plan({"battery": everywhere("battery", "hold")})
    )

    def battery_at(when: datetime) -> tuple[float | None, str]:
        setpoint = decide(when, READINGS, sources, envelope(), ExecutorState()).setpoints["battery"]
        return setpoint.value, setpoint.source

    assert override.source is PlanSource.OVERRIDE
    assert override.devices["battery"].mode_at(0) is Mode.CHARGE
    assert battery_at(START) == battery_at(until - timedelta(seconds=1)) == (2500, "override")
    assert battery_at(until) == (0, "aggregator")


def test_an_override_beyond_the_envelope_is_clamped_like_any_plan() -> None:
    override, _ = override_plan(
        envelope(), "ev", "ev_current", 80, now=START, until=START + timedelta(hours=2)
    )
    sources = Sources(override=override)

    decision = decide(START, READINGS, sources, envelope(), ExecutorState())

    assert decision.setpoints["ev"].value == 32


@pytest.mark.parametrize(
    ("device", "mode", "value", "until", "path"),
    [
        ("boiler", "on", None, START + timedelta(hours=1), "device"),
        ("battery", "charge", 1000, START, "until"),
        ("battery", "charge", 1000, START + timedelta(hours=49), "until"),
        ("battery", "charge", 1000, datetime(2026, 11, 22, 12), "until"),
        ("battery", "level", 1.4, START + timedelta(hours=1), "devices.battery.windows[0].mode"),
        (
            "battery",
            "charge",
            "lots",
            START + timedelta(hours=1),
            "devices.battery.windows[0].value",
        ),
        ("battery", "charge", None, START + timedelta(hours=1), "devices.battery.windows[0].value"),
        ("battery", "sprint", None, START + timedelta(hours=1), "devices.battery.windows[0].mode"),
    ],
)
def test_bad_overrides_are_refused_with_a_reason(
    device: str, mode: object, value: object, until: datetime, path: str
) -> None:
    made, problems = override_plan(envelope(), device, mode, value, now=START, until=until)

    assert made is None
    assert [problem.path for problem in problems] == [path]
    assert all(problem.message for problem in problems)
