"""A simulated home's devices: PV, the household load, a battery and optionally an EV charger.

A plain deterministic model: the time and the seed come in, nothing reads the wall clock.
Noise is drawn per time block from a generator seeded with (seed, quantity, block), so a home's
weather and habits at a given moment do not depend on how often it is sampled, and the
forecast (the same curves without noise) is what a good forecaster would say.

Signs as in the protocol (DESIGN §3): `grid_w` > 0 imports, `battery_w` > 0 charges. Powers
are whole watts and the grid is computed from them, so `grid_w == load_w + ev_w + battery_w -
pv_w` holds exactly (`load_w` is the household without the EV, as the protocol counts them).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fractal.planner.document import EV_VOLTS
from fractal.protocol import Command, DeviceKind, Mode, Plan, TelemetrySnapshot, parse

CLOUD_BLOCK = timedelta(minutes=10)
LOAD_BLOCK = timedelta(minutes=5)
CLOUD_RANGE = (0.35, 1.0)
"""Share of clear-sky PV let through, drawn uniformly per block."""
LOAD_NOISE = (0.75, 1.25)
"""Household load around its profile, drawn uniformly per block (mean 1)."""
FORECAST_POINTS_PER_SLOT = 6


@dataclass(frozen=True)
class BatterySpec:
    capacity_wh: float
    max_charge_w: float
    max_discharge_w: float
    efficiency: float = 0.95
    """One way: AC to stored on charge, stored to AC on discharge."""
    soc_min_pct: float = 10.0
    soc_max_pct: float = 100.0
    initial_soc_pct: float = 50.0

    def __post_init__(self) -> None:
        if self.capacity_wh <= 0 or self.max_charge_w < 0 or self.max_discharge_w < 0:
            raise ValueError("a battery needs capacity_wh > 0 and limits >= 0")
        if not 0.5 <= self.efficiency <= 1:
            raise ValueError(f"battery efficiency {self.efficiency} is not within 0.5..1")
        if not 0 <= self.soc_min_pct <= self.soc_max_pct <= 100:
            raise ValueError("battery SoC bounds need 0 <= soc_min_pct <= soc_max_pct <= 100")
        if not 0 <= self.initial_soc_pct <= 100:
            raise ValueError(f"battery initial_soc_pct {self.initial_soc_pct} is not a %")


@dataclass(frozen=True)
class EvSpec:
    """An EV plugged in every evening, wanting `session_wh` before it leaves in the morning."""

    max_w: float = 7360.0
    session_wh: float = 10_000.0
    arrival_hour: float = 18.0
    departure_hour: float = 7.0

    def __post_init__(self) -> None:
        if self.max_w <= 0 or self.session_wh < 0:
            raise ValueError("an EV needs max_w > 0 and session_wh >= 0")
        if not 0 <= self.departure_hour < self.arrival_hour < 24:
            raise ValueError(
                "an EV arrives in the evening: 0 <= departure_hour < arrival_hour < 24"
            )

    def plugged(self, when: datetime) -> bool:
        hour = _hour_of_day(when)
        return hour >= self.arrival_hour or hour < self.departure_hour

    def session(self, when: datetime) -> datetime:
        """The arrival that started the session `when` falls in (or the next one)."""
        day = when.replace(hour=0, minute=0, second=0, microsecond=0)
        if _hour_of_day(when) < self.departure_hour:
            day -= timedelta(days=1)
        return day + timedelta(hours=self.arrival_hour)


@dataclass(frozen=True)
class HomeSpec:
    node_id: str
    name: str
    tags: Mapping[str, str]
    pv_kwp: float
    seed: int
    base_load_w: float = 250.0
    battery: BatterySpec | None = None
    ev: EvSpec | None = None

    def __post_init__(self) -> None:
        if self.pv_kwp < 0 or self.base_load_w < 0:
            raise ValueError("pv_kwp and base_load_w must be >= 0")


@dataclass(frozen=True)
class HomeReading:
    """What the home's meters say at `ts`, powers averaged over the step that ended there."""

    ts: datetime
    pv_w: int
    load_w: int
    ev_w: int
    battery_w: int
    grid_w: int
    soc_pct: float | None
    energy: Mapping[str, float]
    has_battery: bool
    has_ev: bool

    def sample(self) -> dict[str, Any]:
        """A JSON-ready protocol `Reading` without `seq` (the buffer numbers it)."""
        sample: dict[str, Any] = {
            "ts": self.ts.isoformat().replace("+00:00", "Z"),
            "grid_w": self.grid_w,
            "pv_w": self.pv_w,
            "load_w": self.load_w,
            "energy": {name: round(value, 3) for name, value in self.energy.items()},
        }
        if self.has_battery:
            sample["battery_w"] = self.battery_w
            sample["soc_pct"] = self.soc_pct
        if self.has_ev:
            sample["ev_w"] = self.ev_w
        return sample

    def snapshot(self, node_id: str, seq: int, plan: Plan | None) -> TelemetrySnapshot:
        """The protocol snapshot of this reading (`seq`: the buffer's number for it)."""
        position = None if plan is None else {"id": plan.id, "slot": plan.slot_at(self.ts)}
        parsed = parse(
            TelemetrySnapshot,
            {**self.sample(), "schema": TelemetrySnapshot.SCHEMA, "node": node_id, "seq": seq,
             "plan": position},
        )  # fmt: skip
        if parsed.document is None:
            raise ValueError(f"invalid snapshot for {node_id}: {parsed.problems}")
        return parsed.document


@dataclass
class _Counters:
    values: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(
            (
                "import_wh",
                "export_wh",
                "pv_wh",
                "load_wh",
                "ev_wh",
                "battery_charge_wh",
                "battery_discharge_wh",
            ),
            0.0,
        )
    )

    def add(self, hours: float, *, pv: int, load: int, ev: int, battery: int, grid: int) -> None:
        for name, watts in (
            ("import_wh", max(grid, 0)),
            ("export_wh", max(-grid, 0)),
            ("pv_wh", pv),
            ("load_wh", load),
            ("ev_wh", ev),
            ("battery_charge_wh", max(battery, 0)),
            ("battery_discharge_wh", max(-battery, 0)),
        ):
            self.values[name] += watts * hours


class HomeModel:
    """One home's devices over time; `step` advances it and returns the meters' reading."""

    def __init__(self, spec: HomeSpec) -> None:
        self.spec = spec
        battery = spec.battery
        self.soc_wh = battery.capacity_wh * battery.initial_soc_pct / 100 if battery else 0.0
        self._ev_session: datetime | None = None
        self._ev_delivered_wh = 0.0
        self._counters = _Counters()

    @property
    def soc_pct(self) -> float | None:
        battery = self.spec.battery
        return None if battery is None else self.soc_wh / battery.capacity_wh * 100

    def step(self, now: datetime, seconds: float, plan: Plan | None) -> HomeReading:
        """Advance `seconds` ending at `now`, the devices following `plan` (None: balance)."""
        if now.tzinfo is None:
            raise ValueError("the simulated clock must be timezone-aware (UTC)")
        if seconds <= 0:
            raise ValueError(f"a step must last > 0 seconds, not {seconds}")
        hours = seconds / 3600
        began = now - timedelta(seconds=seconds)  # devices act on the command they started with
        pv, load = round(self.pv_w(now)), round(self.load_w(now))
        ev = self._ev_step(now, hours, pv - load, planned(plan, began, DeviceKind.EV_CHARGER))
        battery_command = battery_command_of(planned(plan, began, DeviceKind.BATTERY))
        battery = self._battery_step(hours, pv - load - ev, battery_command)
        grid = load + ev + battery - pv
        self._counters.add(hours, pv=pv, load=load, ev=ev, battery=battery, grid=grid)
        soc = self.soc_pct
        return HomeReading(
            ts=now.astimezone(UTC),
            pv_w=pv,
            load_w=load,
            ev_w=ev,
            battery_w=battery,
            grid_w=grid,
            soc_pct=None if soc is None else round(soc, 2),
            energy=dict(self._counters.values),
            has_battery=self.spec.battery is not None,
            has_ev=self.spec.ev is not None,
        )

    # --- weather and habits -----------------------------------------------------------------

    def pv_w(self, when: datetime) -> float:
        return self.expected_pv_w(when) / _mean(CLOUD_RANGE) * self._noise("cloud", when)

    def expected_pv_w(self, when: datetime) -> float:
        return self.spec.pv_kwp * 1000 * clear_sky_share(when) * _mean(CLOUD_RANGE)

    def load_w(self, when: datetime) -> float:
        return self.expected_load_w(when) * self._noise("load", when)

    def expected_load_w(self, when: datetime) -> float:
        hour = _hour_of_day(when)
        peaks = (
            600 * _bump(hour, 7.5, 1.0)
            + 250 * _bump(hour, 13.0, 2.0)
            + 1400 * _bump(hour, 18.5, 1.5)
        )
        return self.spec.base_load_w + peaks

    def forecast(self, start: datetime, step_s: int, slots: int) -> tuple[list[float], list[float]]:
        """Expected PV and load, kW averaged over each slot (the noise-free curves)."""
        pv_kw, load_kw = [], []
        for slot in range(slots):
            points = [
                start + timedelta(seconds=step_s * (slot + (i + 0.5) / FORECAST_POINTS_PER_SLOT))
                for i in range(FORECAST_POINTS_PER_SLOT)
            ]
            pv_kw.append(round(sum(map(self.expected_pv_w, points)) / len(points) / 1000, 3))
            load_kw.append(round(sum(map(self.expected_load_w, points)) / len(points) / 1000, 3))
        return pv_kw, load_kw

    def _noise(self, quantity: str, when: datetime) -> float:
        block = CLOUD_BLOCK if quantity == "cloud" else LOAD_BLOCK
        low, high = CLOUD_RANGE if quantity == "cloud" else LOAD_NOISE
        index = int(when.timestamp() // block.total_seconds())
        return random.Random(f"{self.spec.seed}:{quantity}:{index}").uniform(low, high)

    # --- devices ----------------------------------------------------------------------------

    def _battery_step(self, hours: float, surplus_w: int, command: BatteryCommand) -> int:
        """Battery power (> 0 charging) for the step, within its limits and SoC bounds."""
        battery = self.spec.battery
        if battery is None:
            return 0
        target = surplus_w if command.mode is Mode.BALANCE else command.battery_w
        soc_min = battery.capacity_wh * battery.soc_min_pct / 100
        soc_max = battery.capacity_wh * battery.soc_max_pct / 100
        if target > 0:
            room_w = max(soc_max - self.soc_wh, 0) / (battery.efficiency * hours)
            watts = math.floor(min(target, battery.max_charge_w, room_w))
            # The cap only absorbs rounding: a battery above its band never jumps down to it.
            self.soc_wh = min(
                self.soc_wh + watts * hours * battery.efficiency, max(soc_max, self.soc_wh)
            )
            return watts
        available_w = max(self.soc_wh - soc_min, 0) * battery.efficiency / hours
        watts = math.floor(min(-target, battery.max_discharge_w, available_w))
        self.soc_wh = max(
            self.soc_wh - watts * hours / battery.efficiency, min(soc_min, self.soc_wh)
        )
        return -watts

    def _ev_step(self, now: datetime, hours: float, surplus_w: int, command: Command | None) -> int:
        ev = self.spec.ev
        if ev is None or not ev.plugged(now):
            return 0
        session = ev.session(now)
        if session != self._ev_session:
            self._ev_session, self._ev_delivered_wh = session, 0.0
        wanted = _ev_wanted_w(ev, command, surplus_w)
        remaining_w = max(ev.session_wh - self._ev_delivered_wh, 0) / hours
        watts = math.floor(max(min(wanted, ev.max_w, remaining_w), 0))
        self._ev_delivered_wh += watts * hours
        return watts


@dataclass(frozen=True)
class BatteryCommand:
    """The battery's command for a moment: balance, or a power (> 0 charging)."""

    mode: Mode
    battery_w: float = 0.0


BALANCE = BatteryCommand(Mode.BALANCE)


def planned(plan: Plan | None, now: datetime, kind: DeviceKind) -> Command | None:
    """The plan's command for the device of `kind` now; None outside a plan or its slots."""
    slot = None if plan is None else plan.slot_at(now)
    if plan is None or slot is None:
        return None
    device = next((device for device in plan.devices.values() if device.kind is kind), None)
    return None if device is None else device.command_at(slot)


def battery_command_of(command: Command | None) -> BatteryCommand:
    """No command, balance and modes a battery does not take: balance (its default)."""
    match command:
        case Command(mode=Mode.CHARGE, value=value):
            return BatteryCommand(Mode.CHARGE, value or 0.0)
        case Command(mode=Mode.DISCHARGE, value=value):
            return BatteryCommand(Mode.DISCHARGE, -(value or 0.0))
        case Command(mode=Mode.HOLD | Mode.OFF):
            return BatteryCommand(Mode.HOLD)
    return BALANCE


def _ev_wanted_w(ev: EvSpec, command: Command | None, surplus_w: int) -> float:
    """No plan: full power, like a plain charger; otherwise what the plan says."""
    match command:
        case None | Command(mode=Mode.ON):
            return ev.max_w
        case Command(mode=Mode.EV_CURRENT, value=amps):
            return (amps or 0.0) * EV_VOLTS
        case Command(mode=Mode.BALANCE):
            return max(surplus_w, 0)
    return 0.0


def clear_sky_share(when: datetime) -> float:
    """Share of the panels' peak on a clear day at ~52°N, solar noon at 12:00 UTC (the UK)."""
    day_of_year = when.astimezone(UTC).timetuple().tm_yday
    day_length = 12 + 4.3 * math.sin(2 * math.pi * (day_of_year - 80) / 365)
    peak = 0.45 + 0.35 * (day_length - 7.7) / 8.6  # low winter sun gives less at noon
    sunrise = 12 - day_length / 2
    position = (_hour_of_day(when) - sunrise) / day_length
    if not 0 < position < 1:
        return 0.0
    return peak * math.pow(math.sin(math.pi * position), 1.5)


def _hour_of_day(when: datetime) -> float:
    utc = when.astimezone(UTC)
    return utc.hour + utc.minute / 60 + utc.second / 3600


def _bump(hour: float, centre: float, width: float) -> float:
    return math.exp(-(((hour - centre) / width) ** 2))


def _mean(bounds: tuple[float, float]) -> float:
    return (bounds[0] + bounds[1]) / 2
