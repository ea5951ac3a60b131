"""`decide`, by hand: each mode, each clamp, the priority of sources, expiry and fallback,
garbage readings."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pytest
from fractal.executor import SAFE_DEFAULT, ExecutorState, Readings, Sources, decide
from fractal.executor.model import Decision

from tests.fractal.executor.executor_fixtures import START, envelope, everywhere, plan, windows

NOW = START + timedelta(minutes=10)


def run(
    sources: Sources,
    *,
    grid_w: object = 0,
    soc: object = 50,
    state: ExecutorState | None = None,
    now: datetime = NOW,
    devices: dict[str, dict[str, object]] | None = None,
    **envelope_limits: object,
) -> Decision:
    measured: dict[str, dict[str, object]] = {
        "battery": {"soc_pct": soc},
        "hydro": {"level_m": 1.4},
    }
    readings = Readings(grid_w=grid_w, devices=measured | (devices or {}))
    return decide(now, readings, sources, envelope(**envelope_limits), state or ExecutorState())


def battery(decision: Decision) -> float | None:
    return decision.setpoints["battery"].value


def aggregator(**devices: dict[str, object]) -> Sources:
    return Sources(aggregator=plan(devices))


# --- battery ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("previous", "grid_w", "expected"),
    [
        (0, 800, -800),  # importing: discharge to cover it
        (0, -1200, 1200),  # exporting: charge from the surplus
        (1000, 300, 700),  # charging too much: charge less
        (-500, -200, -300),  # discharging into the grid: discharge less
    ],
)
def test_balance_drives_the_grid_towards_zero(
    previous: float, grid_w: float, expected: float
) -> None:
    state = ExecutorState(at=NOW - timedelta(seconds=5), setpoints={"battery": previous})

    decision = run(aggregator(battery=everywhere("battery", "balance")), grid_w=grid_w, state=state)

    assert battery(decision) == expected
    assert decision.state.setpoints["battery"] == expected


@pytest.mark.parametrize(
    ("mode", "value", "expected"),
    [("charge", 1500, 1500), ("discharge", 1200, -1200), ("hold", None, 0), ("off", None, 0)],
)
def test_charge_discharge_and_hold_run_at_the_planned_power(
    mode: str, value: float | None, expected: float
) -> None:
    decision = run(aggregator(battery=everywhere("battery", mode, value)), grid_w=100)

    assert battery(decision) == expected
    assert decision.setpoints["battery"].source == "aggregator"
    assert decision.setpoints["battery"].plan_id == "agg-1"


@pytest.mark.parametrize(
    ("mode", "value", "expected", "reason"),
    [
        ("charge", 5000, 3000, "charge limited to max_charge_w 3000 W"),
        ("discharge", 5000, -2800, "discharge limited to max_discharge_w 2800 W"),
    ],
)
def test_battery_power_is_clamped_to_the_envelope(
    mode: str, value: float, expected: float, reason: str
) -> None:
    decision = run(aggregator(battery=everywhere("battery", mode, value)))

    assert battery(decision) == expected
    assert reason in decision.setpoints["battery"].reasons


@pytest.mark.parametrize("soc", [10, 5])
def test_no_discharge_at_or_below_the_minimum_soc(soc: float) -> None:
    discharge = run(aggregator(battery=everywhere("battery", "discharge", 2000)), soc=soc)
    balance = run(aggregator(battery=everywhere("battery", "balance")), soc=soc, grid_w=900)

    assert battery(discharge) == battery(balance) == 0
    assert (
        f"SoC {soc} % at soc_min_pct 10 %: no discharge" in discharge.setpoints["battery"].reasons
    )


@pytest.mark.parametrize("soc", [95, 100])
def test_no_charge_at_or_above_the_maximum_soc(soc: float) -> None:
    charge = run(aggregator(battery=everywhere("battery", "charge", 2000)), soc=soc)
    balance = run(aggregator(battery=everywhere("battery", "balance")), soc=soc, grid_w=-900)
    discharge = run(aggregator(battery=everywhere("battery", "discharge", 1000)), soc=soc)

    assert battery(charge) == battery(balance) == 0
    assert battery(discharge) == -1000  # a full battery may still discharge
    assert f"SoC {soc} % at soc_max_pct 95 %: no charge" in charge.setpoints["battery"].reasons


def test_a_battery_without_power_limits_in_the_envelope_never_moves() -> None:
    decision = run(aggregator(battery=everywhere("battery", "charge", 1000)), battery={})

    assert battery(decision) == 0


def test_export_limit_makes_the_battery_charge_and_caps_the_pv_inverter() -> None:
    sources = aggregator(
        battery=everywhere("battery", "discharge", 1000),
        grid=everywhere("grid_meter", "export_limit", 500),
    )

    decision = run(sources, grid_w=-2000)  # already exporting 2 kW with the battery idle

    assert battery(decision) == 1500  # charge enough to bring export down to 500 W
    assert "charging to keep export within 500 W" in decision.setpoints["battery"].reasons
    assert decision.setpoints["pv"].value == 500


def test_the_dnos_export_limit_always_holds() -> None:
    decision = run(aggregator(battery=everywhere("battery", "discharge", 2800)), grid_w=-1000)

    assert battery(decision) == -2680  # export reaches 3680 W, the envelope's export_max_w
    assert decision.setpoints["pv"].value == 3680


def test_charging_never_pushes_import_beyond_the_site_limit() -> None:
    decision = run(aggregator(battery=everywhere("battery", "charge", 3000)), grid_w=22000)

    assert battery(decision) == 1000
    assert (
        "limited to keep import within import_max_w 23000 W"
        in decision.setpoints["battery"].reasons
    )


# --- EV charger ---------------------------------------------------------------------------


def ev(decision: Decision) -> float | None:
    return decision.setpoints["ev"].value


@pytest.mark.parametrize(
    ("mode", "value", "expected"),
    [("ev_current", 16, 16), ("ev_current", 40, 32), ("on", None, 32), ("off", None, 0)],
)
def test_ev_current_modes(mode: str, value: float | None, expected: float) -> None:
    assert ev(run(aggregator(ev=everywhere("ev_charger", mode, value)))) == expected


def test_ev_balance_uses_only_the_surplus_left_after_the_battery() -> None:
    sources = aggregator(
        battery=everywhere("battery", "hold"), ev=everywhere("ev_charger", "balance")
    )

    surplus = run(sources, grid_w=-2300)  # 10 A at 230 V
    too_little = run(sources, grid_w=-1000)  # 4.3 A: below the 6 A minimum
    battery_first = run(
        aggregator(
            battery=everywhere("battery", "balance"), ev=everywhere("ev_charger", "balance")
        ),
        grid_w=-2300,
    )

    assert ev(surplus) == pytest.approx(10)
    assert ev(too_little) == 0
    assert ev(battery_first) == 0  # the battery took the surplus
    assert battery(battery_first) == 2300


def test_a_slot_below_the_minimum_charges_at_the_minimum_until_its_energy_is_in() -> None:
    # 3 A for a 30-minute slot is 1.5 Ah: 15 minutes at 6 A.
    sources = aggregator(ev=everywhere("ev_charger", "ev_current", 3))
    state, currents, now = ExecutorState(), [], START
    for _ in range(40):  # a tick every 30 s for 20 minutes
        decision = decide(
            now,
            Readings(grid_w=0, devices={"ev": {"current_a": ev_current(state)}}),
            sources,
            envelope(),
            state,
        )
        currents.append(ev(decision))
        state, now = decision.state, now + timedelta(seconds=30)

    assert currents[:30] == [6] * 30  # 30 ticks x 30 s x 6 A = 1.5 Ah
    assert currents[30:] == [0] * 10
    assert "1.50 Ah planned for the slot delivered: off" in decision.setpoints["ev"].reasons


def ev_current(state: ExecutorState) -> float:
    return state.setpoints.get("ev", 0.0)


def test_the_next_slot_starts_its_energy_afresh() -> None:
    sources = aggregator(ev=everywhere("ev_charger", "ev_current", 3))
    spent = ExecutorState(at=START + timedelta(minutes=29, seconds=50), setpoints={"ev": 0.0})
    first = decide(
        START + timedelta(minutes=29, seconds=50), Readings(grid_w=0), sources, envelope(), spent
    )
    full = first.state.ev_energy["ev"]
    assert full.slot == 0

    second = decide(
        START + timedelta(minutes=30), Readings(grid_w=0), sources, envelope(), first.state
    )

    assert ev(second) == 6
    assert second.state.ev_energy["ev"].slot == 1


# --- immersion ----------------------------------------------------------------------------


def test_immersion_on_off_and_balance() -> None:
    balance = aggregator(
        battery=everywhere("battery", "hold"), immersion=everywhere("immersion", "balance")
    )
    was_on = ExecutorState(at=NOW, setpoints={"immersion": 1.0})

    assert (
        run(aggregator(immersion=everywhere("immersion", "on"))).setpoints["immersion"].value == 1
    )
    assert (
        run(aggregator(immersion=everywhere("immersion", "off"))).setpoints["immersion"].value == 0
    )
    assert run(balance, grid_w=-3200).setpoints["immersion"].value == 1  # surplus of its power
    assert run(balance, grid_w=-2000).setpoints["immersion"].value == 0  # not enough
    assert run(balance, grid_w=-10, state=was_on).setpoints["immersion"].value == 1  # stays on
    assert run(balance, grid_w=200, state=was_on).setpoints["immersion"].value == 0  # importing


# --- hydro --------------------------------------------------------------------------------


def hydro(decision: Decision) -> float | None:
    return decision.setpoints["hydro"].value


def test_hydro_level_moves_no_faster_than_the_licence_allows() -> None:
    sources = aggregator(hydro=everywhere("hydro", "level", 1.5))
    state = ExecutorState(at=NOW - timedelta(seconds=36), setpoints={"hydro": 1.4})

    decision = run(sources, state=state)

    assert hydro(decision) == pytest.approx(1.4 + 0.05 * 36 / 3600)
    assert "moving at level_rate_max_m_per_h 0.05 m/h" in decision.setpoints["hydro"].reasons


def test_hydro_level_stays_inside_the_band() -> None:
    sources = aggregator(hydro=everywhere("hydro", "level", 1.8))
    state = ExecutorState(at=NOW - timedelta(seconds=30), setpoints={"hydro": 1.6})

    decision = run(sources, state=state)

    assert hydro(decision) == 1.6
    assert "level 1.8 m limited to the band 1.2-1.6 m" in decision.setpoints["hydro"].reasons


def test_hydro_starts_from_the_measured_level_and_a_gap_is_not_extrapolated() -> None:
    sources = aggregator(hydro=everywhere("hydro", "on"))  # on: draw down to the band's bottom
    first = run(sources)
    after_an_hour = run(
        sources, state=ExecutorState(at=NOW - timedelta(hours=1), setpoints={"hydro": 1.4})
    )

    assert hydro(first) == 1.4  # no time has passed yet
    assert hydro(after_an_hour) == pytest.approx(1.4 - 0.05 * 60 / 3600)


# --- priorities, expiry, fallback ---------------------------------------------------------


def test_priority_override_then_dso_then_aggregator_then_default() -> None:
    override = plan(
        {"battery": everywhere("battery", "charge", 100)}, source="override", plan_id="o"
    )
    dso = plan({"battery": everywhere("battery", "charge", 200)}, source="dso", plan_id="d")
    agg = plan({"battery": everywhere("battery", "charge", 300)})
    default = plan({"battery": everywhere("battery", "charge", 400)}, source="default", plan_id="f")

    assert battery(run(Sources(override, dso, agg, default))) == 100
    assert battery(run(Sources(None, dso, agg, default))) == 200
    assert battery(run(Sources(None, None, agg, default))) == 300
    assert battery(run(Sources(None, None, None, default))) == 400
    assert run(Sources(None, dso, agg, default)).setpoints["battery"].source == "dso"


def test_a_higher_source_without_a_command_for_the_slot_falls_through() -> None:
    override = plan(
        {"battery": windows("battery", (2, 3, "hold", None))}, source="override", plan_id="o"
    )
    agg = plan({"battery": everywhere("battery", "charge", 300)})

    assert battery(run(Sources(override=override, aggregator=agg))) == 300
    later = run(Sources(override=override, aggregator=agg), now=START + timedelta(minutes=61))
    assert battery(later) == 0
    assert later.setpoints["battery"].source == "override"


def test_an_expired_plan_falls_back_to_the_default_plan() -> None:
    agg = plan(
        {"battery": everywhere("battery", "charge", 300)}, expiry=START + timedelta(minutes=20)
    )
    default = plan({"battery": everywhere("battery", "hold")}, source="default", plan_id="f")

    before = run(Sources(aggregator=agg, default=default), now=START + timedelta(minutes=19))
    after = run(Sources(aggregator=agg, default=default), now=START + timedelta(minutes=20))

    assert (battery(before), before.setpoints["battery"].source) == (300, "aggregator")
    assert (battery(after), after.setpoints["battery"].source) == (0, "default")


def test_without_any_plan_the_safe_default_runs() -> None:
    decision = run(Sources(), grid_w=600, state=ExecutorState(at=NOW, setpoints={"hydro": 1.45}))

    assert battery(decision) == -600  # balance
    assert ev(decision) == 0
    assert decision.setpoints["immersion"].value == 0
    assert hydro(decision) == 1.45  # keeps its set-point
    assert decision.setpoints["pv"].value == 3680
    assert {s.source for s in decision.setpoints.values()} == {SAFE_DEFAULT}


# --- garbage readings ---------------------------------------------------------------------


@pytest.mark.parametrize("grid_w", [None, math.nan, math.inf, "12", True])
def test_a_garbage_grid_reading_holds_the_battery_with_a_reason(grid_w: object) -> None:
    decision = run(
        aggregator(
            battery=everywhere("battery", "discharge", 1000),
            ev=everywhere("ev_charger", "balance"),
            immersion=everywhere("immersion", "balance"),
        ),
        grid_w=grid_w,
    )

    assert battery(decision) == 0
    assert "no valid grid reading: hold" in decision.setpoints["battery"].reasons
    assert ev(decision) == 0
    assert decision.setpoints["immersion"].value == 0


@pytest.mark.parametrize("soc", [None, math.nan, -5, 101])
def test_a_garbage_soc_reading_holds_the_battery(soc: object) -> None:
    decision = run(aggregator(battery=everywhere("battery", "charge", 1000)), soc=soc)

    assert battery(decision) == 0
    assert "no valid SoC reading: hold" in decision.setpoints["battery"].reasons


def test_hydro_without_a_level_reading_or_a_previous_set_point_is_not_commanded() -> None:
    decision = run(
        aggregator(hydro=everywhere("hydro", "level", 1.5)),
        devices={"hydro": {"level_m": math.nan}},
    )

    assert hydro(decision) is None
    assert (
        "no level reading and no previous set-point: not commanded"
        in decision.setpoints["hydro"].reasons
    )


def test_a_battery_held_for_a_bad_soc_leaves_its_power_to_the_others() -> None:
    # The battery was charging 2 kW; held at 0, that 2 kW would be exported: the EV takes it.
    sources = aggregator(
        battery=everywhere("battery", "balance"), ev=everywhere("ev_charger", "balance")
    )
    state = ExecutorState(at=NOW, setpoints={"battery": 2000.0})

    decision = run(sources, soc=None, grid_w=-300, state=state)

    assert battery(decision) == 0
    assert ev(decision) == pytest.approx(2300 / 230)
