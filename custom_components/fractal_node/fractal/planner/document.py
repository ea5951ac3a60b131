"""Planner results as the protocol's `Plan` document, the one a node executes.

The battery gets mode windows where they are shorter than per-slot set-points (an LP plan
mostly sits at limits, so runs of equal power are common) and per-slot ``battery_w``
otherwise; whichever is smaller keeps a 48 h plan inside the 8 KB shadow budget. The EV gets
``ev_current_a`` per slot. Expected trajectories: ``soc_pct`` (end of slot), ``grid_w``,
``pv_w`` (PV used) and ``load_w``. The immersion heater gets ``immersion_on`` per slot (on
where any heat is planned; the node stops once the slot's planned energy is in) and the hydro
the planned upstream level, ``hydro_level_m``, which its controller follows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta

import numpy as np

# Relative: inside Home Assistant this package is custom_components.fractal_node.fractal.
from ..protocol import (
    MAX_HORIZON,
    DeviceKind,
    DevicePlan,
    Expected,
    Mode,
    Plan,
    PlanSource,
    Quantity,
    Setpoints,
    Window,
    dump,
    parse,
    to_jsonable,
)
from .model import Vector
from .planner import HomePlan
from .scenario import Home, Scenario

BATTERY_DEVICE = "battery"
EV_DEVICE = "ev_charger"
IMMERSION_DEVICE = "immersion"
HYDRO_DEVICE = "hydro"
EV_VOLTS = 230.0


class PlanDocumentError(ValueError):
    """The protocol refused the plan document; ``problems`` says why."""

    def __init__(self, home_id: str, problems: Sequence[str]) -> None:
        super().__init__(f"plan for home {home_id!r} is not a valid document: {problems}")
        self.problems = list(problems)


def to_plan_document(scenario: Scenario, home: Home, plan: HomePlan, issued: datetime) -> Plan:
    """The `Plan` for ``home``, validated by the protocol (raises `PlanDocumentError`)."""
    start = scenario.slot_start(0)
    end = start + timedelta(seconds=scenario.step_seconds * scenario.slots)
    devices: dict[str, DevicePlan] = {}
    if home.battery is not None and home.battery.capacity_kwh > 0:
        devices[BATTERY_DEVICE] = battery_plan(plan.battery_kw)
    if home.ev is not None:
        devices[EV_DEVICE] = ev_plan(plan.ev_kw, home.ev.min_kw, home.ev.max_kw)
    if home.immersion is not None:
        devices[IMMERSION_DEVICE] = _setpoints(
            DeviceKind.IMMERSION,
            Quantity.IMMERSION_ON,
            [1 if heat > 1e-6 else 0 for heat in plan.device["heat"]],
        )
    if home.hydro is not None:
        devices[HYDRO_DEVICE] = _setpoints(
            DeviceKind.HYDRO,
            Quantity.HYDRO_LEVEL_M,
            [round(float(level), 3) for level in plan.device["level"]],
        )
    candidate = {
        "schema": Plan.SCHEMA,
        "id": plan_id(home.id, start),
        "node": home.id,
        "issued": issued,
        "start": start,
        "step": scenario.step_seconds,
        "slots": scenario.slots,
        "expiry": min(end, issued + MAX_HORIZON),
        "source": PlanSource.AGGREGATOR,
        "devices": {name: to_jsonable(device) for name, device in devices.items()},
        "expected": to_jsonable(expected(home, plan)),
    }
    parsed = parse(Plan, _json_ready(candidate))
    if parsed.document is None:
        raise PlanDocumentError(home.id, [str(problem) for problem in parsed.problems])
    return parsed.document


def plan_id(home_id: str, start: datetime) -> str:
    digest = hashlib.sha256(home_id.encode()).hexdigest()[:10]
    return f"plan-{start:%Y%m%dT%H%M}Z-{digest}"


def battery_plan(battery_kw: Vector) -> DevicePlan:
    """Windows of equal power, or per-slot ``battery_w``: whichever serialises smaller."""
    watts = [round(float(value) * 1000) for value in battery_kw]
    setpoints = DevicePlan(
        kind=DeviceKind.BATTERY,
        setpoints=Setpoints(quantity=Quantity.BATTERY_W, values=tuple(watts)),
    )
    windows = DevicePlan(kind=DeviceKind.BATTERY, windows=tuple(_battery_windows(watts)))
    return min((windows, setpoints), key=lambda device: len(dump(device)))


def _battery_windows(watts: list[int]) -> list[Window]:
    found: list[Window] = []
    run_start = 0
    for slot in range(1, len(watts) + 1):
        if slot == len(watts) or watts[slot] != watts[run_start]:
            found.append(_battery_window(run_start, slot, watts[run_start]))
            run_start = slot
    return found


def _battery_window(start: int, end: int, watts: int) -> Window:
    if watts > 0:
        return Window(start=start, end=end, mode=Mode.CHARGE, value=watts)
    if watts < 0:
        return Window(start=start, end=end, mode=Mode.DISCHARGE, value=-watts)
    return Window(start=start, end=end, mode=Mode.HOLD)


def ev_plan(ev_kw: Vector, min_kw: float, max_kw: float) -> DevicePlan:
    """Per-slot charging current (single phase at 230 V).

    A slot planned below the charger's minimum gets the minimum current: the node charges at
    it for part of the slot and stops once the slot's planned energy is in (see
    docs/planner.md, "EV minimum current").
    """
    amps: list[float | None] = []
    for kw in ev_kw:
        if kw <= 1e-6:
            amps.append(0.0)
        else:
            amps.append(round(min(max(kw, min_kw), max_kw) * 1000 / EV_VOLTS, 1))
    return DevicePlan(
        kind=DeviceKind.EV_CHARGER,
        setpoints=Setpoints(quantity=Quantity.EV_CURRENT_A, values=tuple(amps)),
    )


def _setpoints(kind: DeviceKind, quantity: Quantity, values: Sequence[float]) -> DevicePlan:
    return DevicePlan(kind=kind, setpoints=Setpoints(quantity=quantity, values=tuple(values)))


def expected(home: Home, plan: HomePlan) -> Expected:
    capacity = home.battery.capacity_kwh if home.battery else 0.0
    soc_pct = (
        tuple(round(float(np.clip(soc / capacity * 100, 0.0, 100.0)), 1) for soc in plan.soc_kwh)
        if capacity > 0
        else None
    )
    return Expected(
        soc_pct=soc_pct,
        grid_w=_watts(plan.grid_kw),
        pv_w=_watts(np.clip(plan.pv_used_kw, 0.0, None)),
        load_w=_watts(np.asarray(home.load_kw) - plan.shed_kw),
    )


def _watts(kw: Vector) -> tuple[int, ...]:
    return tuple(round(float(value) * 1000) for value in kw)


def _json_ready(candidate: dict[str, object]) -> dict[str, object]:
    return {
        key: value.isoformat() if isinstance(value, datetime) else value
        for key, value in candidate.items()
    }
