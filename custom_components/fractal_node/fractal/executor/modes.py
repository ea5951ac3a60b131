"""Mode -> set-point, per device kind, from live readings, clamped by the envelope.

Each converter gets the tick (readings, the previous state, the grid power predicted after the
devices already decided this tick) and returns a Setpoint with its reasons. Batteries decide
first, so EV chargers and immersion heaters in *balance* use only the surplus left after them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..protocol import Device, Mode, Quantity
from .envelope import Envelope, battery_range, clamp, ev_current_range, level_band
from .model import Chosen, ExecutorState, Readings, Setpoint, SlotEnergy

NOMINAL_VOLTAGE_V = 230.0
"""Converts surplus power to EV current when the charger reports no voltage."""


@dataclass
class Tick:
    """One decision round: inputs, and the grid power predicted so far (updated per device)."""

    readings: Readings
    envelope: Envelope
    state: ExecutorState
    elapsed_h: float
    export_cap_w: float | None
    grid_w: float | None
    ev_energy: dict[str, SlotEnergy]

    def previous(self, device_id: str) -> float | None:
        return self.state.setpoints.get(device_id)


def _setpoint(
    device: Device, chosen: Chosen, quantity: Quantity, value: float | None, reasons: list[str]
) -> Setpoint:
    mode = None if chosen.command is None else chosen.command.mode
    return Setpoint(device.id, quantity, value, mode, chosen.source, chosen.plan_id, tuple(reasons))


def _what(chosen: Chosen) -> str:
    if chosen.command is None:
        return f"{chosen.source}: device default"
    value = "" if chosen.command.value is None else f" {chosen.command.value:g}"
    return f"{chosen.source}: {chosen.command.mode.value}{value}"


# --- battery ------------------------------------------------------------------------------


def battery(tick: Tick, device: Device, chosen: Chosen) -> Setpoint:
    """Battery power, W (> 0 charging). Needs valid grid and SoC readings, else holds."""
    soc, grid = tick.readings.metric(device.id, "soc_pct"), tick.grid_w
    reasons = [_what(chosen)]
    previous = tick.previous(device.id) or 0.0
    if soc is None or grid is None:
        reasons.append(f"no valid {'SoC' if soc is None else 'grid'} reading: hold")
        if grid is not None:
            tick.grid_w = grid - previous
        return _setpoint(device, chosen, Quantity.BATTERY_W, 0.0, reasons)
    value = _site_limited(tick, _battery_target(chosen, previous, grid), previous, grid, reasons)
    value = _battery_clamped(device, value, soc, reasons)
    tick.grid_w = grid + value - previous  # what the meter should read once this applies
    return _setpoint(device, chosen, Quantity.BATTERY_W, value, reasons)


def _battery_target(chosen: Chosen, previous: float, grid: float) -> float:
    command = chosen.command
    mode = Mode.BALANCE if command is None else command.mode
    value = 0.0 if command is None or command.value is None else command.value
    match mode:
        case Mode.BALANCE:
            return previous - grid  # import -> discharge more; export -> charge more
        case Mode.CHARGE:
            return value
        case Mode.DISCHARGE:
            return -value
    return 0.0


def _site_limited(
    tick: Tick, wanted: float, previous: float, grid: float, reasons: list[str]
) -> float:
    """Keep the site within its export cap (by charging) and import limit (by charging less)."""
    value = wanted
    if tick.export_cap_w is not None and value < previous - grid - tick.export_cap_w:
        value = previous - grid - tick.export_cap_w
        reasons.append(f"charging to keep export within {tick.export_cap_w:g} W")
    import_max = tick.envelope.import_max_w
    if import_max is not None and value > previous - grid + import_max:
        value = previous - grid + import_max
        reasons.append(f"limited to keep import within import_max_w {import_max:g} W")
    return value


def _battery_clamped(device: Device, value: float, soc: float, reasons: list[str]) -> float:
    limits = device.envelope
    low, high = battery_range(limits, soc)
    if value > high:
        if high == 0 and limits.soc_max_pct is not None and soc >= limits.soc_max_pct:
            reasons.append(f"SoC {soc:g} % at soc_max_pct {limits.soc_max_pct:g} %: no charge")
        else:
            reasons.append(f"charge limited to max_charge_w {high:g} W")
    if value < low:
        if low == 0 and limits.soc_min_pct is not None and soc <= limits.soc_min_pct:
            reasons.append(f"SoC {soc:g} % at soc_min_pct {limits.soc_min_pct:g} %: no discharge")
        else:
            reasons.append(f"discharge limited to max_discharge_w {-low:g} W")
    return float(round(clamp(value, low, high)))


# --- EV charger ---------------------------------------------------------------------------


def ev_charger(tick: Tick, device: Device, chosen: Chosen) -> Setpoint:
    """Charging current, A: 0 (off) or within the envelope's range."""
    low, high = ev_current_range(device.envelope)
    reasons = [_what(chosen)]
    delivered = _ev_delivered(tick, device, chosen)
    if high is None:
        reasons.append("no ev_current_max_a in the envelope: off")
        current = 0.0
    else:
        current = _ev_current(
            tick, device, chosen, (low, high), delivered_ah=delivered, reasons=reasons
        )
    previous = tick.previous(device.id) or 0.0
    if tick.grid_w is not None:
        tick.grid_w += (current - previous) * _volts(tick, device)
    return _setpoint(device, chosen, Quantity.EV_CURRENT_A, current, reasons)


def _ev_current(
    tick: Tick,
    device: Device,
    chosen: Chosen,
    bounds: tuple[float, float],
    *,
    delivered_ah: float,
    reasons: list[str],
) -> float:
    low, high = bounds
    command = chosen.command
    mode = Mode.OFF if command is None else command.mode
    if mode is Mode.ON:
        return high
    if mode is Mode.BALANCE:
        return _ev_surplus_current(tick, device, bounds, reasons)
    if mode is not Mode.EV_CURRENT or command is None or command.value is None:
        return 0.0
    wanted = command.value
    if wanted > high:
        reasons.append(f"limited to ev_current_max_a {high:g} A")
        return high
    if wanted >= low:
        return wanted
    return _ev_below_minimum(chosen, wanted, low, delivered_ah, reasons)


def _ev_below_minimum(
    chosen: Chosen, wanted: float, low: float, delivered_ah: float, reasons: list[str]
) -> float:
    """A slot planned below the minimum: charge at the minimum until its energy is in."""
    planned_ah = wanted * (chosen.step_s or 0) / 3600
    if delivered_ah >= planned_ah:
        reasons.append(f"{planned_ah:.2f} Ah planned for the slot delivered: off")
        return 0.0
    reasons.append(
        f"{wanted:g} A is below the minimum: {low:g} A until {planned_ah:.2f} Ah are in "
        f"({delivered_ah:.2f} so far)"
    )
    return low


def _ev_surplus_current(
    tick: Tick, device: Device, bounds: tuple[float, float], reasons: list[str]
) -> float:
    low, high = bounds
    if tick.grid_w is None:
        reasons.append("no valid grid reading: off")
        return 0.0
    previous = tick.previous(device.id) or 0.0
    current = previous - tick.grid_w / _volts(tick, device)
    if current < low:
        reasons.append(f"surplus below {low:g} A: off")
        return 0.0
    return min(current, high)


def _ev_delivered(tick: Tick, device: Device, chosen: Chosen) -> float:
    """Ah delivered so far in the chosen slot (measured current, else what was commanded)."""
    before = tick.state.ev_energy.get(device.id)
    delivered = 0.0
    if before is not None and (before.plan_id, before.slot) == (chosen.plan_id, chosen.slot):
        measured = tick.readings.metric(device.id, "current_a")
        current = measured if measured is not None else tick.previous(device.id) or 0.0
        delivered = before.delivered_ah + max(current, 0.0) * tick.elapsed_h
    tick.ev_energy[device.id] = SlotEnergy(chosen.plan_id, chosen.slot, delivered)
    return delivered


def _volts(tick: Tick, device: Device) -> float:
    volts = tick.readings.metric(device.id, "voltage_v")
    return volts if volts is not None and volts > 50 else NOMINAL_VOLTAGE_V


# --- immersion heater ---------------------------------------------------------------------


def immersion(tick: Tick, device: Device, chosen: Chosen) -> Setpoint:
    """On (1) or off (0). In *balance* it switches on for a surplus of its full power and
    stays on until the site imports."""
    reasons = [_what(chosen)]
    mode = Mode.OFF if chosen.command is None else chosen.command.mode
    was_on = (tick.previous(device.id) or 0.0) > 0
    on = mode is Mode.ON
    if mode is Mode.BALANCE:
        on = _immersion_balance(tick, device, was_on, reasons)
    power = float(device.envelope.power_max_w or 0)
    if tick.grid_w is not None:
        tick.grid_w += power * (int(on) - int(was_on))
    return _setpoint(device, chosen, Quantity.IMMERSION_ON, float(on), reasons)


def _immersion_balance(tick: Tick, device: Device, was_on: bool, reasons: list[str]) -> bool:
    grid, power = tick.grid_w, device.envelope.power_max_w
    if grid is None:
        reasons.append("no valid grid reading: off")
        return False
    if power is None:
        reasons.append("no power_max_w in the envelope: off")
        return False
    return grid <= 0 if was_on else -grid >= power


# --- hydro --------------------------------------------------------------------------------


def hydro(tick: Tick, device: Device, chosen: Chosen) -> Setpoint:
    """River level set-point, m: inside the licence's band, moving no faster than its rate
    from the previous set-point (or, at first, the measured level). *on* draws the river down
    to the band's bottom (most generation), *off* lets it rise to the top."""
    reasons = [_what(chosen)]
    band = level_band(device.envelope)
    reference = tick.previous(device.id)
    if reference is None:
        reference = tick.readings.metric(device.id, "level_m")
    if band is None:
        reasons.append("no level band in the envelope: not commanded")
        return _setpoint(device, chosen, Quantity.HYDRO_LEVEL_M, None, reasons)
    if reference is None:
        reasons.append("no level reading and no previous set-point: not commanded")
        return _setpoint(device, chosen, Quantity.HYDRO_LEVEL_M, None, reasons)
    target = _hydro_target(chosen, band, reference)
    if not band[0] <= target <= band[1]:
        reasons.append(f"level {target:g} m limited to the band {band[0]:g}-{band[1]:g} m")
    target = clamp(target, *band)
    rate = device.envelope.level_rate_max_m_per_h or 0.0
    step = rate * tick.elapsed_h
    value = clamp(target, reference - step, reference + step)
    if value != target:
        reasons.append(f"moving at level_rate_max_m_per_h {rate:g} m/h")
    return _setpoint(device, chosen, Quantity.HYDRO_LEVEL_M, clamp(value, *band), reasons)


def _hydro_target(chosen: Chosen, band: tuple[float, float], reference: float) -> float:
    command = chosen.command
    if command is None:
        return reference
    if command.mode is Mode.LEVEL and command.value is not None:
        return command.value
    return band[0] if command.mode is Mode.ON else band[1]


# --- PV inverter --------------------------------------------------------------------------


def pv_inverter(tick: Tick, device: Device, chosen: Chosen) -> Setpoint:
    """Export limit, W (None: unlimited): *off* exports nothing; the site's cap always holds."""
    reasons = [_what(chosen)]
    command = chosen.command
    limit: float | None = None
    if command is not None and command.mode is Mode.OFF:
        limit = 0.0
    elif command is not None and command.mode is Mode.EXPORT_LIMIT:
        limit = command.value
    cap = tick.export_cap_w
    if cap is not None and (limit is None or limit > cap):
        reasons.append(f"site export cap {cap:g} W")
        limit = cap
    return _setpoint(device, chosen, Quantity.EXPORT_LIMIT_W, limit, reasons)
