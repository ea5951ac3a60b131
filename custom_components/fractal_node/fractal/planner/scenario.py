"""The planning scenario: what the planner is asked to plan, validated with clear messages.

A scenario holds the time grid (start, step, number of slots) and per home the forecasts, prices
and devices. Arrays carry one value per slot. Every problem names the home and the field, so a
bad file is fixed in one pass (``ScenarioError.problems``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

SCHEMA_VERSION = 1
MAX_HORIZON_SECONDS = 48 * 3600
ALLOWED_STEPS_SECONDS = (300, 600, 900, 1800, 3600)

# Bounds keep the LP well scaled: a community battery or a small hydro fits, 1e300 does not.
MAX_KW = 10_000.0
MAX_KWH = 100_000.0
Power = Annotated[float, Field(ge=0, le=MAX_KW, allow_inf_nan=False)]
Energy = Annotated[float, Field(ge=0, le=MAX_KWH, allow_inf_nan=False)]
PositivePower = Annotated[float, Field(gt=0, le=MAX_KW, allow_inf_nan=False)]
Efficiency = Annotated[float, Field(ge=0.5, le=1, allow_inf_nan=False)]
Intensity = Annotated[float, Field(ge=0, le=2000, allow_inf_nan=False)]  # gCO2/kWh
Price = Annotated[float, Field(ge=-1000, le=1000, allow_inf_nan=False)]  # p/kWh; may be < 0


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Battery(_Strict):
    """A home battery. Powers are AC-side kW; energies are stored kWh."""

    capacity_kwh: Energy
    soc_kwh: Energy
    soc_min_kwh: Energy = 0.0
    soc_max_kwh: Energy | None = None  # defaults to the capacity
    charge_kw: Power
    discharge_kw: Power
    charge_efficiency: Efficiency = 0.95
    discharge_efficiency: Efficiency = 0.95
    cycle_cost_p_per_kwh: Annotated[float, Field(ge=0, le=1000, allow_inf_nan=False)] = 0.0
    """Wear cost per kWh discharged (AC side)."""
    terminal_soc_min_kwh: Energy = 0.0
    exportable_kwh: Energy = 0.0
    """Part of ``soc_kwh`` that came from PV, so a PV-only export tariff may export it."""

    @property
    def soc_max(self) -> float:
        return self.capacity_kwh if self.soc_max_kwh is None else self.soc_max_kwh

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.soc_kwh > self.capacity_kwh:
            raise ValueError(f"soc_kwh {self.soc_kwh} exceeds capacity_kwh {self.capacity_kwh}")
        if self.soc_max > self.capacity_kwh:
            raise ValueError(f"soc_max_kwh {self.soc_max} exceeds capacity_kwh")
        if self.soc_min_kwh > self.soc_max:
            raise ValueError(f"soc_min_kwh {self.soc_min_kwh} exceeds soc_max_kwh {self.soc_max}")
        if self.exportable_kwh > self.soc_kwh:
            raise ValueError(f"exportable_kwh {self.exportable_kwh} exceeds soc_kwh {self.soc_kwh}")
        if self.terminal_soc_min_kwh > self.capacity_kwh:
            raise ValueError("terminal_soc_min_kwh exceeds capacity_kwh")
        return self


class Grid(_Strict):
    """The connection: import and export limits (the DNO constraint)."""

    import_max_kw: Power
    export_max_kw: Power
    # False (default): export only PV energy, as flat export tariffs require; True: the battery
    # may also export energy it bought from the grid earlier (time-of-use export tariffs).
    export_stored_grid_energy: bool = False


class Ev(_Strict):
    """An EV charger: plugged in from ``arrival`` to ``departure``, ``energy_kwh`` needed."""

    arrival: AwareDatetime
    departure: AwareDatetime
    energy_kwh: Energy
    max_kw: PositivePower  # 32 A: 7.4 kW single phase
    min_kw: Power = 1.4  # 6 A: below this the charger is off (see docs/planner.md)
    efficiency: Efficiency = 0.9

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.departure <= self.arrival:
            raise ValueError("departure must be after arrival")
        if self.min_kw > self.max_kw:
            raise ValueError(f"min_kw {self.min_kw} exceeds max_kw {self.max_kw}")
        return self


class Immersion(_Strict):
    """An immersion heater in a hot-water tank: the tank is a thermal store (kWh of heat)."""

    power_kw: PositivePower
    tank_kwh: Annotated[float, Field(gt=0, le=MAX_KWH, allow_inf_nan=False)]
    store_kwh: Energy  # heat in the tank now
    store_min_kwh: Energy = 0.0
    loss_per_hour: Annotated[float, Field(ge=0, le=0.5, allow_inf_nan=False)] = 0.01
    demand_kw: list[Power]  # hot water drawn per slot, as heat

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.store_kwh > self.tank_kwh:
            raise ValueError(f"store_kwh {self.store_kwh} exceeds tank_kwh {self.tank_kwh}")
        if self.store_min_kwh > self.tank_kwh:
            raise ValueError(f"store_min_kwh {self.store_min_kwh} exceeds tank_kwh")
        return self


Metres = Annotated[float, Field(ge=-10_000, le=10_000, allow_inf_nan=False)]


class Hydro(_Strict):
    """Run-of-river hydro with an upstream pond: "the river as a battery"."""

    level_m: Metres  # upstream level now
    level_min_m: Metres  # the abstraction licence's band
    level_max_m: Metres
    rate_max_m_per_h: Annotated[float, Field(gt=0, le=100, allow_inf_nan=False)]
    terminal_level_min_m: Metres | None = None  # default: the starting level, inside the band
    pond_area_m2: Annotated[float, Field(gt=0, le=1e8, allow_inf_nan=False)]
    inflow_m3s: list[Annotated[float, Field(ge=0, le=10_000, allow_inf_nan=False)]]
    flow_max_m3s: Annotated[float, Field(gt=0, le=10_000, allow_inf_nan=False)]
    kw_per_m3s: Annotated[float, Field(gt=0, le=MAX_KW, allow_inf_nan=False)]  # head x efficiency

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.level_min_m >= self.level_max_m:
            raise ValueError("level_min_m must be below level_max_m")
        return self

    @property
    def terminal_level(self) -> float:
        if self.terminal_level_min_m is not None:
            return self.terminal_level_min_m
        return min(max(self.level_m, self.level_min_m), self.level_max_m)


class Home(_Strict):
    """One home: forecasts and prices per slot, plus its devices."""

    id: Annotated[str, Field(pattern=r"^[a-zA-Z0-9:_-]{1,128}$")]  # the node id of the protocol
    tags: dict[str, str] = Field(default_factory=dict)
    pv_kw: list[Power]
    load_kw: list[Power]
    import_p_per_kwh: list[Price]
    export_p_per_kwh: list[Price]
    carbon_g_per_kwh: list[Intensity] | None = None
    battery: Battery | None = None
    grid: Grid
    ev: Ev | None = None
    immersion: Immersion | None = None
    hydro: Hydro | None = None

    def series(self) -> dict[str, list[float]]:
        named = {
            "pv_kw": self.pv_kw,
            "load_kw": self.load_kw,
            "import_p_per_kwh": self.import_p_per_kwh,
            "export_p_per_kwh": self.export_p_per_kwh,
        }
        if self.carbon_g_per_kwh is not None:
            named["carbon_g_per_kwh"] = self.carbon_g_per_kwh
        if self.immersion is not None:
            named["immersion.demand_kw"] = self.immersion.demand_kw
        if self.hydro is not None:
            named["hydro.inflow_m3s"] = self.hydro.inflow_m3s
        return named


class Objective(_Strict):
    """Cost (default), carbon, or cost plus carbon priced at ``carbon_p_per_kg``."""

    mode: Literal["cost", "carbon", "mix"] = "cost"
    # At most 1 000 p/kg, so a kWh never weighs more than 3 000 p: the penalties stay above.
    carbon_p_per_kg: Annotated[float, Field(ge=0, le=1000, allow_inf_nan=False)] = 0.0


class FlexEvent(_Strict):
    """A DSO request on a tag group's net import over a window: a turn-down keeps it at or
    under ``import_max_kw`` (a cap), a turn-up at or over ``import_min_kw`` (a floor)."""

    id: Annotated[str, Field(min_length=1)]
    tag: Annotated[str, Field(min_length=1)]
    value: Annotated[str, Field(min_length=1)]
    start: AwareDatetime
    end: AwareDatetime
    import_max_kw: Power | None = None
    import_min_kw: Power | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if (self.import_max_kw is None) == (self.import_min_kw is None):
            raise ValueError(
                "set exactly one of import_max_kw (a cap: turn down) "
                "and import_min_kw (a floor: turn up)"
            )
        return self

    @property
    def is_floor(self) -> bool:
        return self.import_min_kw is not None

    @property
    def limit_kw(self) -> float:
        """The cap or the floor, whichever the event sets."""
        limit = self.import_min_kw if self.import_min_kw is not None else self.import_max_kw
        assert limit is not None  # the validator sets exactly one
        return limit


class Scenario(_Strict):
    """A planning problem for a fleet of homes on a common time grid."""

    schema_version: Literal[1] = 1
    start: AwareDatetime
    step_seconds: int
    objective: Objective = Field(default_factory=Objective)
    homes: Annotated[list[Home], Field(min_length=1)]
    events: list[FlexEvent] = Field(default_factory=list)

    @field_validator("step_seconds")
    @classmethod
    def _known_step(cls, step: int) -> int:
        if step not in ALLOWED_STEPS_SECONDS:
            raise ValueError(f"step_seconds must be one of {list(ALLOWED_STEPS_SECONDS)}")
        return step

    @property
    def slots(self) -> int:
        return len(self.homes[0].pv_kw)

    @property
    def step_hours(self) -> float:
        return self.step_seconds / 3600

    def slot_start(self, slot: int) -> datetime:
        return self.start.astimezone(UTC) + timedelta(seconds=slot * self.step_seconds)

    @model_validator(mode="after")
    def _one_value_per_slot(self) -> Self:
        problems: list[str] = []
        slots = self.slots
        if slots == 0:
            problems.append(f"home {self.homes[0].id!r}: pv_kw has no values (one per slot)")
        if slots * self.step_seconds > MAX_HORIZON_SECONDS:
            problems.append(
                f"horizon of {slots} slots of {self.step_seconds} s exceeds 48 h "
                f"(at most {MAX_HORIZON_SECONDS // self.step_seconds} slots)"
            )
        seen: set[str] = set()
        for home in self.homes:
            if home.id in seen:
                problems.append(f"home {home.id!r}: duplicate id")
            seen.add(home.id)
            if self.objective.mode != "cost" and home.carbon_g_per_kwh is None:
                problems.append(
                    f"home {home.id!r}: carbon_g_per_kwh is needed for objective "
                    f"{self.objective.mode!r}"
                )
            for name, values in home.series().items():
                if len(values) != slots:
                    problems.append(
                        f"home {home.id!r}: {name} has {len(values)} values, expected {slots} "
                        f"(one per slot, as {self.homes[0].id!r} pv_kw)"
                    )
        if problems:
            raise ValueError("; ".join(problems))
        return self


class ScenarioError(ValueError):
    """A scenario that cannot be planned; ``problems`` lists every reason found."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid scenario: " + "; ".join(problems))
        self.problems = problems


def parse_scenario(data: object) -> Scenario:
    """Validate a decoded JSON document; raise `ScenarioError` naming home and field."""
    try:
        return Scenario.model_validate(data)
    except ValidationError as error:
        problems = [_describe(item, data) for item in error.errors()]
        raise ScenarioError(
            [part for problem in problems for part in problem.split("; ")]
        ) from None


def load_scenario(text: str | bytes) -> Scenario:
    """Decode and validate a scenario file's content."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ScenarioError([f"not valid JSON: {error}"]) from None
    return parse_scenario(data)


def scenario_json_schema() -> dict[str, Any]:
    """The JSON Schema of a scenario file (published as docs/schemas/scenario.schema.json)."""
    schema = Scenario.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://fractal-node.example/schemas/scenario.schema.json"
    return schema


def _describe(item: Any, data: object) -> str:
    """One problem as 'home 'h1' (homes[0]) battery.soc_kwh: message'."""
    location = list(item.get("loc", ()))
    message = str(item.get("msg", "invalid")).removeprefix("Value error, ")
    prefix = ""
    if len(location) >= 2 and location[0] == "homes" and isinstance(location[1], int):
        index = location[1]
        prefix = f"home {_home_id(data, index)!r} (homes[{index}])"
        location = location[2:]
    field = ".".join(str(part) for part in location if not _is_type_tag(part))
    where = " ".join(part for part in (prefix, field) if part)
    return f"{where}: {message}" if where else message


def _home_id(data: object, index: int) -> str:
    if isinstance(data, dict):
        homes = data.get("homes")
        if isinstance(homes, list) and index < len(homes) and isinstance(homes[index], dict):
            home_id = homes[index].get("id")
            if isinstance(home_id, str):
                return home_id
    return f"#{index}"


def _is_type_tag(part: object) -> bool:
    # pydantic adds the union member ('Battery', 'float', ...) to locations of optional fields.
    return (isinstance(part, str) and part[:1].isupper()) or part in ("float", "list[float]")
