"""Whatever the plans, override and readings, the set-points never leave the envelope."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from fractal.executor import ExecutorState, Readings, Sources, decide
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fractal.executor.executor_fixtures import BATTERY, EV, HYDRO, START, envelope, plan

garbage = st.sampled_from([None, math.nan, math.inf, -math.inf, "1", True])
power = st.integers(-30_000, 30_000)
reading = st.one_of(garbage, power, st.floats(-1e9, 1e9))
soc = st.one_of(garbage, st.floats(-10, 110))
level = st.one_of(garbage, st.floats(0, 3))

battery_command = st.one_of(
    st.tuples(st.sampled_from(["balance", "hold", "off"]), st.none()),
    st.tuples(st.sampled_from(["charge", "discharge"]), st.integers(1, 20_000)),
)
ev_command = st.one_of(
    st.tuples(st.sampled_from(["balance", "on", "off"]), st.none()),
    st.tuples(st.just("ev_current"), st.floats(0.1, 80)),
)
hydro_command = st.one_of(
    st.tuples(st.sampled_from(["on", "off"]), st.none()),
    st.tuples(st.just("level"), st.floats(0, 3)),
)
export_command = st.tuples(st.just("export_limit"), st.integers(0, 10_000))


def device_plan(kind: str, commands: list[tuple[str, Any]]) -> dict[str, Any]:
    return {
        "kind": kind,
        "windows": [
            {"start": i, "end": i + 1, "mode": mode, **({} if value is None else {"value": value})}
            for i, (mode, value) in enumerate(commands)
        ],
    }


@st.composite
def plans(draw: st.DrawFn, source: str) -> Any:
    chosen = {
        name: device_plan(kind, draw(st.lists(strategy, min_size=4, max_size=4)))
        for name, kind, strategy in (
            ("battery", "battery", battery_command),
            ("ev", "ev_charger", ev_command),
            ("hydro", "hydro", hydro_command),
            ("grid", "grid_meter", export_command),
        )
        if draw(st.booleans())
    }
    return draw(st.none()) if not chosen else plan(chosen, source=source, plan_id=source)


@st.composite
def states(draw: st.DrawFn) -> ExecutorState:
    setpoints = {
        "battery": draw(st.integers(-BATTERY["max_discharge_w"], BATTERY["max_charge_w"])),
        "ev": draw(st.sampled_from([0, 6, 16, 32])),
        "hydro": draw(st.floats(HYDRO["level_min_m"], HYDRO["level_max_m"])),
    }
    gap = draw(st.one_of(st.none(), st.floats(0, 7200)))
    at = None if gap is None else START + timedelta(minutes=5) - timedelta(seconds=gap)
    kept = {name: value for name, value in setpoints.items() if draw(st.booleans())}
    return ExecutorState(at=at, setpoints=kept)


@settings(max_examples=300, deadline=None)
@given(
    override=plans("override"),
    dso=plans("dso"),
    aggregator=plans("aggregator"),
    state=states(),
    grid_w=reading,
    battery_soc=soc,
    hydro_level=level,
    ev_current=reading,
    seconds=st.integers(0, 150),
)
def test_set_points_never_leave_the_envelope(
    *,
    override: Any,
    dso: Any,
    aggregator: Any,
    state: ExecutorState,
    grid_w: object,
    battery_soc: object,
    hydro_level: object,
    ev_current: object,
    seconds: int,
) -> None:
    now = START + timedelta(minutes=5, seconds=seconds)
    readings = Readings(
        grid_w=grid_w,
        devices={
            "battery": {"soc_pct": battery_soc},
            "hydro": {"level_m": hydro_level},
            "ev": {"current_a": ev_current},
        },
    )

    decision = decide(now, readings, Sources(override, dso, aggregator), envelope(), state)
    setpoints = decision.setpoints

    battery_w = setpoints["battery"].value
    assert battery_w is not None
    assert -BATTERY["max_discharge_w"] <= battery_w <= BATTERY["max_charge_w"]
    usable_soc = readings.metric("battery", "soc_pct")
    if usable_soc is None or readings.grid is None:
        assert battery_w == 0
    elif usable_soc <= BATTERY["soc_min_pct"]:
        assert battery_w >= 0
    elif usable_soc >= BATTERY["soc_max_pct"]:
        assert battery_w <= 0

    ev_a = setpoints["ev"].value
    assert ev_a is not None
    assert ev_a == 0 or EV["ev_current_min_a"] <= ev_a <= EV["ev_current_max_a"]

    hydro_m = setpoints["hydro"].value
    if hydro_m is not None:
        assert HYDRO["level_min_m"] <= hydro_m <= HYDRO["level_max_m"]
        elapsed = 0.0 if state.at is None else min(max((now - state.at).total_seconds(), 0), 60)
        reference = state.setpoints.get("hydro")
        if reference is not None:
            allowed = HYDRO["level_rate_max_m_per_h"] * elapsed / 3600
            assert abs(hydro_m - reference) <= allowed + 1e-12

    immersion = setpoints["immersion"].value
    assert immersion in (0, 1)
    export_limit = setpoints["pv"].value
    assert export_limit is not None
    assert 0 <= export_limit <= 3680
    assert all(setpoint.reasons for setpoint in setpoints.values())
