"""The local default plan (balance, optional cheap-window charge) and deviation reports."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from fractal.executor import (
    CheapWindow,
    Deviation,
    DeviationState,
    DeviationWatch,
    ExecutorState,
    Readings,
    Sources,
    check_deviations,
    decide,
    default_plan,
)
from fractal.protocol import Mode, Plan, PlanSource, Trajectory, dump, parse

from tests.fractal.executor.executor_fixtures import START, descriptor, envelope, everywhere, plan


def test_the_default_plan_balances_all_day_and_is_a_valid_protocol_plan() -> None:
    made = default_plan(descriptor(), datetime(2026, 11, 22, 14, 7, tzinfo=UTC))

    assert parse(Plan, dump(made)).ok
    assert made.source is PlanSource.DEFAULT
    assert made.start == datetime(2026, 11, 22, tzinfo=UTC)
    assert made.end == made.expiry == datetime(2026, 11, 24, tzinfo=UTC)
    assert list(made.devices) == ["battery"]
    assert {made.devices["battery"].mode_at(slot) for slot in range(made.slots)} == {Mode.BALANCE}


def test_a_cheap_window_across_midnight_charges_at_most_at_the_battery_limit() -> None:
    cheap = CheapWindow(time(23, 30), time(5, 30), charge_w=5000)
    made = default_plan(descriptor(), datetime(2026, 11, 22, 14, tzinfo=UTC), cheap)
    battery = made.devices["battery"]

    def at(hour: int, minute: int, day: int = 22) -> tuple[Mode | None, float | None]:
        slot = made.slot_at(datetime(2026, 11, day, hour, minute, tzinfo=UTC))
        assert slot is not None
        return battery.mode_at(slot), battery.value_at(slot)

    assert at(0, 0) == at(5, 0) == at(23, 30) == at(3, 0, day=23) == (Mode.CHARGE, 3000)
    assert at(5, 30) == at(12, 0) == at(23, 0) == (Mode.BALANCE, None)


def test_without_a_plan_refresh_the_node_falls_back_to_its_default_plan() -> None:
    # The link was lost at 10:00: the aggregator's plan is never refreshed and expires at 11:00.
    agg = plan(
        {"battery": everywhere("battery", "charge", 2000)}, expiry=START + timedelta(hours=1)
    )
    cheap = CheapWindow(time(10, 30), time(12, 0), charge_w=1000)
    sources = Sources(aggregator=agg, default=default_plan(descriptor(), START, cheap))
    readings = Readings(grid_w=0, devices={"battery": {"soc_pct": 50}})

    def battery_at(minutes: int) -> tuple[float | None, str]:
        now = START + timedelta(minutes=minutes)
        setpoint = decide(now, readings, sources, envelope(), ExecutorState()).setpoints["battery"]
        return setpoint.value, setpoint.source

    assert battery_at(59) == (2000, "aggregator")
    assert battery_at(60) == (1000, "default")  # the default plan's cheap window
    assert battery_at(120) == (0, "default")  # balance, with the grid at zero


# --- deviation ----------------------------------------------------------------------------

TRACKED = plan(
    {"battery": everywhere("battery", "balance")},
    expected={"soc_pct": [60, 70, 80, 90], "grid_w": [0, 500, None, 0]},
    tolerance={"soc_pct": 5, "grid_w": 1000},
)


def checks(readings: list[Readings], at: datetime, checks_needed: int = 3) -> list[list[Deviation]]:
    state, found = DeviationState(), []
    for reading in readings:
        state, deviations = check_deviations(TRACKED, at, reading, state, checks_needed)
        found.append(deviations)
    return found


def test_a_deviation_is_reported_after_n_consecutive_checks_beyond_tolerance() -> None:
    at = START + timedelta(minutes=10)
    found = checks([Readings(grid_w=1500, soc_pct=60)] * 4, at)

    assert [len(d) for d in found] == [0, 0, 1, 1]
    assert found[2] == [Deviation(Trajectory.GRID_W, "agg-1", 0, 0.0, 1500.0, 1000)]


def test_one_check_back_within_tolerance_resets_the_count() -> None:
    at = START + timedelta(minutes=10)
    far, near = Readings(grid_w=-1200, soc_pct=60), Readings(grid_w=-900, soc_pct=60)

    found = checks([far, far, near, far, far, far], at)

    assert [len(d) for d in found] == [0, 0, 0, 0, 0, 1]


def test_soc_is_compared_with_the_trajectory_between_slot_ends() -> None:
    # Slot 1 runs 10:30-11:00, from 60 % (end of slot 0) to 70 %: 65 % at 10:45.
    at = START + timedelta(minutes=45)
    within = checks([Readings(soc_pct=69.5, grid_w=500)] * 3, at)
    beyond = checks([Readings(soc_pct=71, grid_w=500)] * 3, at)

    assert within[-1] == []
    assert beyond[-1] == [Deviation(Trajectory.SOC_PCT, "agg-1", 1, 65.0, 71.0, 5)]


def test_no_forecast_garbage_readings_or_no_plan_report_nothing() -> None:
    at_unforecast_slot = START + timedelta(minutes=75)  # slot 2: grid null

    assert checks([Readings(grid_w=9000, soc_pct=75)] * 3, at_unforecast_slot)[-1] == []
    assert checks([Readings(grid_w=float("nan"), soc_pct=None)] * 3, START)[-1] == []
    assert check_deviations(None, START, Readings(grid_w=9000), DeviationState()) == (
        DeviationState(),
        [],
    )


def test_the_watch_reports_current_deviations_and_which_are_new() -> None:
    watch = DeviationWatch(checks=2)
    at = START + timedelta(minutes=10)
    far_grid = Readings(grid_w=1500, soc_pct=60)
    far_both = Readings(grid_w=1500, soc_pct=80)

    reports = [watch.check(TRACKED, at, reading) for reading in (far_grid, far_grid, far_both)]
    reports.append(watch.check(TRACKED, at, far_both))
    reports.append(watch.check(None, at, far_both))  # no plan in force: nothing to deviate from

    assert [report.current for report in reports] == [
        (),
        (Trajectory.GRID_W,),
        (Trajectory.GRID_W,),
        (Trajectory.SOC_PCT, Trajectory.GRID_W),
        (),
    ]
    assert [report.new for report in reports] == [
        (),
        (Trajectory.GRID_W,),
        (),
        (Trajectory.SOC_PCT,),
        (),
    ]
    assert reports[3].details[0].expected == 60.0


def test_a_cheap_window_in_local_time_follows_the_clocks() -> None:
    """Octopus Go, 00:30-04:30 UK time: 00:30-04:30 UTC in winter, 23:30-03:30 UTC in summer."""
    go = CheapWindow.parse("00:30-04:30", 2500, ZoneInfo("Europe/London"))

    def charging_utc(day: datetime) -> list[str]:
        made = default_plan(descriptor(), day, go)
        battery = made.devices["battery"]
        return [
            f"{made.slot_start(slot):%H:%M}"
            for slot in range(48)
            if battery.mode_at(slot) is Mode.CHARGE
        ]

    winter = charging_utc(datetime(2026, 1, 15, 12, tzinfo=UTC))
    summer = charging_utc(datetime(2026, 7, 15, 12, tzinfo=UTC))
    assert winter == ["00:30", "01:00", "01:30", "02:00", "02:30", "03:00", "03:30", "04:00"]
    assert summer == [
        "00:00", "00:30", "01:00", "01:30", "02:00", "02:30", "03:00", "23:30"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "charge_w", "problem"),
    [
        ("tonight", 1000, "expected HH:MM-HH:MM"),
        ("25:00-04:00", 1000, "hour must be in 0..23"),
        ("02:00-02:00", 1000, "starts and ends at the same time"),
        ("00:30-04:30", 0, "charge power must be > 0 W"),
    ],
)
def test_a_bad_cheap_window_is_refused_saying_why(text: str, charge_w: int, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        CheapWindow.parse(text, charge_w)


def test_without_a_cheap_window_the_default_only_balances() -> None:
    made = default_plan(descriptor(), datetime(2026, 11, 22, 3, tzinfo=UTC))
    windows = made.devices["battery"].windows
    assert windows is not None
    assert [(w.mode, w.start, w.end) for w in windows] == [(Mode.BALANCE, 0, made.slots)]
