"""Standalone planning: a node with no aggregator plans for itself (docs/householder.md).

Home Assistant reads the entities the householder picked (tariff rates, a PV forecast, the
household load's history); these pure functions turn what they hold into the planner's home
scenario and the plan into the executor's plan document. Inputs come in the shapes the common
integrations publish:

* rates: a ``rates`` attribute list of ``{start, end, value_inc_vat}`` (the Octopus Energy
  integration; GBP/kWh unless the entity's unit says p/kWh), or a plain numeric state in p/kWh or
  GBP/kWh (a flat rate);
* PV forecast: Solcast's ``detailedForecast`` list of ``{period_start, pv_estimate}`` (kW), or
  Forecast.Solar's ``wh_hours``/``wh_period`` mapping of period start to Wh (what its energy
  platform returns) or ``watts`` mapping of time to W;
* load: hourly means of a power sensor (or hourly energy changes), averaged per half hour of
  the day.

Unusable inputs raise `InputError` saying which and why; gaps are filled (no PV, no export
payment) and listed as problems, never guessed silently.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from ..protocol import DeviceEnvelope, DeviceKind, NodeDescriptor, Plan, PlanSource
from .document import BATTERY_DEVICE, PlanDocumentError, to_plan_document
from .planner import Planner
from .scenario import Home, Scenario, ScenarioError, parse_scenario

STEP: Final = timedelta(minutes=30)
MAX_SLOTS: Final = 96  # 48 hours
UNKNOWN_LIMIT_KW: Final = 100.0
"""Grid limit assumed where the installer set none (no domestic supply reaches it)."""

# Pence per kWh per unit; rates lists without a unit are GBP/kWh (Octopus Energy's convention).
PENCE_PER: Final = {
    "p/kWh": 1.0,
    "GBp/kWh": 1.0,
    "pence/kWh": 1.0,
    "GBP/kWh": 100.0,
    "£/kWh": 100.0,
}
KW_PER: Final = {"W": 0.001, "kW": 1.0, "MW": 1000.0}
KWH_PER: Final = {"Wh": 0.001, "kWh": 1.0, "MWh": 1000.0}


class InputError(ValueError):
    """An input entity holds nothing the planner can use; the message says what is wrong."""


@dataclass(frozen=True)
class Period:
    """A value that holds from ``start`` (inclusive) to ``end`` (exclusive)."""

    start: datetime
    end: datetime
    value: float


@dataclass(frozen=True)
class Rates:
    """A tariff in p/kWh: periods where published, else a flat rate (if any)."""

    periods: tuple[Period, ...] = ()
    flat: float | None = None

    def at(self, moment: datetime) -> float | None:
        for period in self.periods:
            if period.start <= moment < period.end:
                return period.value
        return self.flat


def parse_rates(state: str, attributes: Mapping[str, object]) -> Rates:
    """A rate entity: its ``rates`` list, else its numeric state as a flat rate."""
    unit = attributes.get("unit_of_measurement")
    if "rates" in attributes:
        scale = PENCE_PER["GBP/kWh"] if unit is None else _scale(unit, PENCE_PER, "rate")
        return Rates(periods=tuple(_rate_periods(attributes["rates"], scale)))
    value = _number(state, "state")
    if unit is None:
        raise InputError("a flat rate needs a unit (p/kWh or GBP/kWh); the entity has none")
    return Rates(flat=value * _scale(unit, PENCE_PER, "rate"))


def merged_rates(parts: Iterable[Rates]) -> Rates:
    """Several rate entities (today's and tomorrow's rates, a flat fallback) as one tariff."""
    periods: list[Period] = []
    flat = None
    for part in parts:
        periods.extend(part.periods)
        flat = part.flat if part.flat is not None else flat
    return Rates(tuple(sorted(periods, key=lambda period: period.start)), flat)


def _rate_periods(rates: object, scale: float) -> list[Period]:
    if not isinstance(rates, list | tuple) or not rates:
        raise InputError("attribute rates is not a list of {start, end, value_inc_vat}")
    periods = []
    for index, rate in enumerate(rates):
        if not isinstance(rate, Mapping):
            raise InputError(f"rates[{index}] is not a mapping")
        value = rate.get("value_inc_vat", rate.get("value"))
        start = _moment(rate.get("start"), f"rates[{index}].start")
        end = _moment(rate.get("end"), f"rates[{index}].end")
        if end <= start:
            raise InputError(f"rates[{index}] ends before it starts")
        periods.append(Period(start, end, _number(value, f"rates[{index}].value_inc_vat") * scale))
    return periods


def parse_pv_forecast(state: str, attributes: Mapping[str, object]) -> tuple[Period, ...]:
    """A PV forecast entity's periods in kW (average power over each period)."""
    if "detailedForecast" in attributes:
        return _solcast_periods(attributes["detailedForecast"])
    for name in ("wh_hours", "wh_period"):
        if name in attributes:
            return _timed_periods(attributes[name], name, per_hour_energy=True)
    if "watts" in attributes:
        return _timed_periods(attributes["watts"], "watts", per_hour_energy=False)
    raise InputError(
        "no forecast periods: expected attribute detailedForecast (Solcast), wh_hours or watts "
        "(Forecast.Solar)"
    )


def _solcast_periods(forecast: object) -> tuple[Period, ...]:
    if not isinstance(forecast, list | tuple) or not forecast:
        raise InputError("attribute detailedForecast is not a list of {period_start, pv_estimate}")
    starts, values = [], []
    for index, item in enumerate(forecast):
        if not isinstance(item, Mapping):
            raise InputError(f"detailedForecast[{index}] is not a mapping")
        starts.append(_moment(item.get("period_start"), f"detailedForecast[{index}].period_start"))
        values.append(_number(item.get("pv_estimate"), f"detailedForecast[{index}].pv_estimate"))
    return _periods_from_starts(starts, [max(value, 0.0) for value in values])


def _timed_periods(data: object, name: str, *, per_hour_energy: bool) -> tuple[Period, ...]:
    if not isinstance(data, Mapping) or not data:
        raise InputError(f"attribute {name} is not a mapping of times to values")
    pairs = sorted(
        (_moment(key, f"{name} key"), _number(v, f"{name}[{key}]")) for key, v in data.items()
    )
    starts = [start for start, _ in pairs]
    periods = _periods_from_starts(starts, [max(value, 0.0) for _, value in pairs])
    if not per_hour_energy:
        return tuple(Period(p.start, p.end, p.value / 1000) for p in periods)
    return tuple(
        Period(p.start, p.end, p.value / 1000 / ((p.end - p.start).total_seconds() / 3600))
        for p in periods
    )


def _periods_from_starts(starts: list[datetime], values: list[float]) -> tuple[Period, ...]:
    """Each value holds until the next start; the last as long as the one before it."""
    default = starts[1] - starts[0] if len(starts) > 1 else STEP
    ends = [*starts[1:], starts[-1] + default]
    return tuple(
        Period(start, end, value)
        for start, end, value in zip(starts, ends, values, strict=True)
        if end > start
    )


def load_profile(samples: Iterable[tuple[datetime, float]]) -> dict[int, float]:
    """Mean load (kW) per half hour of the UTC day, from hourly samples (hour start, kW)."""
    sums: dict[int, list[float]] = defaultdict(list)
    for start, kw in samples:
        if not math.isfinite(kw):
            continue
        first = _half_hour_of_day(start)
        for half_hour in (first, (first + 1) % 48):
            sums[half_hour].append(max(kw, 0.0))
    return {half_hour: sum(values) / len(values) for half_hour, values in sums.items()}


@dataclass(frozen=True)
class PlanningInputs:
    """What Home Assistant gathered for one planning run (rates in p/kWh, powers in kW)."""

    import_rates: Rates
    export_rates: Rates | None
    pv: tuple[Period, ...] = ()
    load: Mapping[int, float] = field(default_factory=dict)
    soc_pct: float | None = None
    capacity_kwh: float | None = None
    problems: tuple[str, ...] = ()
    """Problems found while gathering (an unusable entity, a missing history)."""


@dataclass(frozen=True)
class Outcome:
    """A planning run: the plan (None when nothing could be planned), its status and cost,
    and every problem found in the inputs."""

    plan: Plan | None
    status: str
    problems: tuple[str, ...]
    cost_p: float | None = None
    home: Home | None = None
    scenario: Scenario | None = None


def plan_standalone(
    planner: Planner, descriptor: NodeDescriptor, inputs: PlanningInputs, now: datetime
) -> Outcome:
    """Plan the node's battery from ``now``'s half hour to the end of the known import rates.

    The plan expires at its end: published rates do not go stale, and it is re-planned every
    30 minutes anyway; past its end the executor falls back to the time-of-use default."""
    problems = list(inputs.problems)
    try:
        scenario, home, battery_id = standalone_scenario(descriptor, inputs, now, problems)
    except InputError as error:
        return Outcome(None, "no_plan", (*problems, str(error)))
    except ScenarioError as error:
        return Outcome(None, "no_plan", (*problems, *error.problems))
    home_plan = planner.plan_home(scenario, home)
    try:
        document = to_plan_document(scenario, home, home_plan, now)
    except PlanDocumentError as error:  # the protocol refused it: say so, run the default
        return Outcome(None, "no_plan", (*problems, *error.problems), home_plan.cost_p)
    plan = document.model_copy(
        update={
            "id": f"standalone-{now:%Y%m%dT%H%M%S}Z",
            "source": PlanSource.STANDALONE,
            "devices": {battery_id: document.devices[BATTERY_DEVICE]},
        }
    )
    return Outcome(
        plan,
        home_plan.status.kind,
        (*problems, *home_plan.status.reasons),
        home_plan.cost_p,
        home,
        scenario,
    )


def standalone_scenario(
    descriptor: NodeDescriptor, inputs: PlanningInputs, now: datetime, problems: list[str]
) -> tuple[Scenario, Home, str]:
    """The scenario for the node's one battery; raises `InputError` if nothing can be planned.
    Gaps that are filled are appended to ``problems``."""
    batteries = [d for d in descriptor.devices if d.kind is DeviceKind.BATTERY]
    if not batteries:
        raise InputError("the node has no battery to plan")
    if len(batteries) > 1:
        problems.append(f"only the first battery is planned ({len(batteries)} on this node)")
    start = slot_start(now)
    times = _covered_slots(inputs.import_rates, start)
    battery = _battery(batteries[0].envelope, inputs)
    data = {
        "start": start.isoformat(),
        "step_seconds": int(STEP.total_seconds()),
        "homes": [
            {
                "id": descriptor.node,
                "pv_kw": _pv_series(inputs.pv, times, problems),
                "load_kw": _load_series(inputs.load, times, problems),
                "import_p_per_kwh": [inputs.import_rates.at(t) for t in times],
                "export_p_per_kwh": _export_series(inputs.export_rates, times, problems),
                "battery": battery,
                "grid": _grid(descriptor),
            }
        ],
    }
    scenario = parse_scenario(data)
    return scenario, scenario.homes[0], batteries[0].id


def slot_start(moment: datetime) -> datetime:
    """The start of the UTC half hour holding ``moment``."""
    moment = moment.astimezone(UTC)
    return moment.replace(minute=moment.minute // 30 * 30, second=0, microsecond=0)


def _covered_slots(rates: Rates, start: datetime) -> list[datetime]:
    """Slot starts from ``start`` while the import rate is known (at most 48 hours)."""
    times = []
    for slot in range(MAX_SLOTS):
        moment = start + slot * STEP
        if rates.at(moment) is None:
            break
        times.append(moment)
    if not times:
        raise InputError(f"no import rate for the half hour from {start:%Y-%m-%d %H:%M} UTC")
    return times


def _pv_series(pv: Sequence[Period], times: list[datetime], problems: list[str]) -> list[float]:
    if not pv:
        problems.append("no PV forecast: planned without PV")
        return [0.0] * len(times)
    series = [_mean_over(pv, moment) for moment in times]
    missing = [t for t, value in zip(times, series, strict=True) if value is None]
    if missing:
        problems.append(f"PV forecast missing from {missing[0]:%Y-%m-%d %H:%M} UTC: counted as 0")
    return [min(value or 0.0, 10_000.0) for value in series]


def _mean_over(periods: Sequence[Period], moment: datetime) -> float | None:
    """Average over the slot from ``moment`` of the periods overlapping it (None: none do)."""
    end = moment + STEP
    covered, energy = 0.0, 0.0
    for period in periods:
        overlap = (min(end, period.end) - max(moment, period.start)).total_seconds()
        if overlap > 0:
            covered += overlap
            energy += period.value * overlap
    return energy / covered if covered > 0 else None


def _load_series(
    load: Mapping[int, float], times: list[datetime], problems: list[str]
) -> list[float]:
    if not load:
        problems.append("no load history: planned without household load")
        return [0.0] * len(times)
    fallback = sum(load.values()) / len(load)
    if len(load) < 48:
        problems.append(f"load history covers {len(load)} of 48 half hours: the rest at the mean")
    return [min(load.get(_half_hour_of_day(t), fallback), 10_000.0) for t in times]


def _export_series(rates: Rates | None, times: list[datetime], problems: list[str]) -> list[float]:
    if rates is None:
        problems.append("no export rate: export counted as unpaid")
        return [0.0] * len(times)
    series = [rates.at(t) for t in times]
    missing = [t for t, value in zip(times, series, strict=True) if value is None]
    if missing:
        problems.append(f"export rate unknown from {missing[0]:%Y-%m-%d %H:%M} UTC: counted as 0")
    return [0.0 if value is None else value for value in series]


def _battery(envelope: DeviceEnvelope, inputs: PlanningInputs) -> dict[str, float]:
    capacity = inputs.capacity_kwh
    if capacity is None and envelope.capacity_wh:
        capacity = envelope.capacity_wh / 1000
    if not capacity:
        raise InputError("the battery's capacity is unknown: set it in the planning options")
    if inputs.soc_pct is None:
        raise InputError("the battery's state of charge is unknown (no reading)")
    soc_min = (envelope.soc_min_pct or 0.0) / 100 * capacity
    soc_max = (100.0 if envelope.soc_max_pct is None else envelope.soc_max_pct) / 100 * capacity
    return {
        "capacity_kwh": capacity,
        "soc_kwh": min(max(inputs.soc_pct, 0.0), 100.0) / 100 * capacity,
        "soc_min_kwh": min(soc_min, soc_max),
        "soc_max_kwh": soc_max,
        # A limit the installer left out is 0, as the envelope treats it: that way is closed.
        "charge_kw": (envelope.max_charge_w or 0) / 1000,
        "discharge_kw": (envelope.max_discharge_w or 0) / 1000,
    }


def _grid(descriptor: NodeDescriptor) -> dict[str, float]:
    limits = descriptor.envelope
    return {
        "import_max_kw": limits.import_max_w / 1000 if limits.import_max_w else UNKNOWN_LIMIT_KW,
        "export_max_kw": (
            limits.export_max_w / 1000 if limits.export_max_w is not None else UNKNOWN_LIMIT_KW
        ),
    }


def _half_hour_of_day(moment: datetime) -> int:
    moment = moment.astimezone(UTC)
    return moment.hour * 2 + moment.minute // 30


def _scale(unit: object, table: Mapping[str, float], what: str) -> float:
    if not isinstance(unit, str) or unit not in table:
        raise InputError(f"unknown {what} unit {unit!r}: expected one of {', '.join(table)}")
    return table[unit]


def _number(value: object, where: str) -> float:
    if isinstance(value, bool):
        raise InputError(f"{where} is not a number: {value!r}")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"{where} is not a number: {value!r}") from None
    if not math.isfinite(number):
        raise InputError(f"{where} is not a finite number: {value!r}")
    return number


def _moment(value: object, where: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise InputError(f"{where} is not an ISO 8601 time: {value!r}") from None
    else:
        raise InputError(f"{where} is not a time: {value!r}")
    if moment.tzinfo is None:
        raise InputError(f"{where} has no time zone: {value!r}")
    return moment.astimezone(UTC)
