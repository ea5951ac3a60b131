"""What the aggregator plans from besides the nodes themselves: tariffs, forecasts, carbon.

`PlanningInputs` is one document (JSON, schema `fractal.planning_inputs.v1`, published as
`docs/schemas/planning_inputs.schema.json`). Every series carries its own time grid (`start`,
`step_seconds`, `values`), so a half-hourly tariff and an hourly PV forecast sit side by side
and the planner reads each on its own grid (a value holds for its whole step).

Top-level series are the fleet's defaults; `nodes.<node id>` overrides any of them for one node
(its own tariff, its own PV and load forecast). Several documents (the local runtime reads
every `<data-dir>/inputs/*.json`) are combined with `merge_inputs`: later ones override what
earlier ones set, node by node and series by series.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, Literal, Self

from fractal.planner.scenario import Objective
from fractal.protocol import Tolerance
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

SCHEMA: Final = "fractal.planning_inputs.v1"
ALLOWED_STEPS_SECONDS = (300, 600, 900, 1800, 3600)
MAX_SERIES_VALUES = 7 * 24 * 12
"""A week of 5-minute values: enough for any forecast a planner of 48 hours reads."""

SeriesValue = Annotated[float, Field(ge=-10_000, le=10_000, allow_inf_nan=False)]
NodeKey = Annotated[str, Field(pattern=r"^[a-zA-Z0-9:_-]{1,128}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Series(_Strict):
    """Values on a time grid: `values[i]` holds from `start + i * step_seconds` for one step."""

    start: AwareDatetime
    step_seconds: int
    values: Annotated[list[SeriesValue], Field(min_length=1, max_length=MAX_SERIES_VALUES)]

    @field_validator("step_seconds")
    @classmethod
    def _known_step(cls, step: int) -> int:
        if step not in ALLOWED_STEPS_SECONDS:
            raise ValueError(f"step_seconds must be one of {list(ALLOWED_STEPS_SECONDS)}")
        return step

    @property
    def end(self) -> datetime:
        """End of the last value's step (exclusive)."""
        return self.start.astimezone(UTC) + timedelta(seconds=self.step_seconds * len(self.values))

    def at(self, when: datetime) -> float | None:
        """The value holding at `when`, or None outside the series."""
        offset = (when - self.start).total_seconds()
        if offset < 0:
            return None
        index = int(offset // self.step_seconds)
        return self.values[index] if index < len(self.values) else None

    def mean(self, start: datetime, seconds: int) -> float | None:
        """The mean over [start, start + seconds), or None unless the series covers it all."""
        if start < self.start or start + timedelta(seconds=seconds) > self.end:
            return None
        # Sampled at the finer of the two grids, so a coarse slot averages its parts.
        part = min(seconds, self.step_seconds)
        parts = [self.at(start + timedelta(seconds=part * i)) for i in range(seconds // part)]
        known = [value for value in parts if value is not None]
        return sum(known) / len(known) if len(known) == len(parts) else None


class Forecasts(_Strict):
    """Series that may be given for the whole fleet and overridden per node."""

    import_p_per_kwh: Series | None = None
    export_p_per_kwh: Series | None = None
    carbon_g_per_kwh: Series | None = None
    pv_kw: Series | None = None
    """PV generation forecast, kW (a node without a PV device plans none)."""
    load_kw: Series | None = None
    """Household consumption forecast, kW (not counting battery, EV or immersion)."""


class EvSession(_Strict):
    """An EV charging session: plugged in from `arrival` to `departure`, needing `energy_kwh`."""

    arrival: AwareDatetime
    departure: AwareDatetime
    energy_kwh: Annotated[float, Field(ge=0, le=200, allow_inf_nan=False)]

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.departure <= self.arrival:
            raise ValueError("departure must be after arrival")
        return self


class NodeInputs(Forecasts):
    """One node's own series; what it leaves out comes from the fleet's defaults."""

    ev: EvSession | None = None
    """The node's next EV session, planned on its EV charger."""


class PlanningInputs(Forecasts):
    """Everything the aggregator plans from besides the nodes' descriptors and states."""

    schema_: Literal["fractal.planning_inputs.v1"] = Field(
        default="fractal.planning_inputs.v1", alias="schema"
    )
    step_seconds: int | None = None
    """Slot length of the plans (default 1800)."""
    horizon_hours: Annotated[float, Field(gt=0, le=48)] | None = None
    """How far ahead to plan at most (default 48); less if the series end sooner."""
    objective: Objective | None = None
    tolerance: Tolerance | None = None
    """How far a node may stray from the plan before it reports a deviation (default
    `DEFAULT_TOLERANCE` in plan_dispatch)."""
    nodes: dict[NodeKey, NodeInputs] = Field(default_factory=dict)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("step_seconds")
    @classmethod
    def _known_step(cls, step: int | None) -> int | None:
        if step is not None and step not in ALLOWED_STEPS_SECONDS:
            raise ValueError(f"step_seconds must be one of {list(ALLOWED_STEPS_SECONDS)}")
        return step

    def for_node(self, node: str) -> Forecasts:
        """The series node `node` plans from: its own, else the fleet's."""
        own = self.nodes.get(node)
        fields = Forecasts.model_fields
        merged = {name: getattr(self, name) for name in fields}
        if own is not None:
            merged.update(
                {name: getattr(own, name) for name in own.model_fields_set if name in fields}
            )
        return Forecasts(**merged)


class InputsError(ValueError):
    """A planning-inputs document that cannot be used; `problems` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid planning inputs: " + "; ".join(problems))
        self.problems = problems


def parse_inputs(data: object) -> PlanningInputs:
    """Validate a decoded JSON document; raise `InputsError` naming each bad field."""
    try:
        return PlanningInputs.model_validate(data)
    except ValidationError as error:
        raise InputsError([_describe(item) for item in error.errors()]) from None


def load_inputs(text: str | bytes) -> PlanningInputs:
    """Decode and validate an inputs file's content."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputsError([f"not valid JSON: {error}"]) from None
    return parse_inputs(data)


def merge_inputs(documents: Iterable[PlanningInputs]) -> PlanningInputs:
    """One document from several: what a later one sets overrides an earlier one's, and each
    node's series are merged the same way."""
    merged: dict[str, Any] = {}
    nodes: dict[str, dict[str, Any]] = {}
    for document in documents:
        for name in document.model_fields_set - {"nodes", "schema_"}:
            merged[name] = getattr(document, name)
        for node, own in document.nodes.items():
            nodes.setdefault(node, {}).update(
                {name: getattr(own, name) for name in own.model_fields_set}
            )
    merged["nodes"] = {node: NodeInputs(**series) for node, series in nodes.items()}
    return PlanningInputs(**merged)


def inputs_json_schema() -> dict[str, Any]:
    """The JSON Schema of an inputs file (docs/schemas/planning_inputs.schema.json)."""
    schema = PlanningInputs.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://fractal-node.example/schemas/planning_inputs.schema.json"
    return schema


def _describe(item: Any) -> str:
    location = ".".join(str(part) for part in item.get("loc", ()))
    message = str(item.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{location}: {message}" if location else message
