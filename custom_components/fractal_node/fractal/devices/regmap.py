"""The register-map format: a YAML file per device model, validated when loaded.

Every error names the file, the line and the field (``sdm630.yaml:42: registers[3].type: ...``)
so an installer can fix a custom map without reading code. The format is documented in
``docs/register-maps.md``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .codec import FIXED_WORDS, DataType, WordOrder
from .yaml_lines import LocatedYaml, YamlSyntaxError, load_located

IDENTITY_GROUP = "identity"
"""Registers in this group are read once, by `Device.read_identity()`, never polled."""

Unit = Literal["W", "Wh", "%", "m", "m³/s", "A", "V", "Hz", "rpm", "°C", "var", "VA", "s"]
DeviceClass = Literal[
    "power",
    "energy",
    "voltage",
    "current",
    "frequency",
    "battery",
    "temperature",
    "power_factor",
    "reactive_power",
    "apparent_power",
    "distance",
    "volume_flow_rate",
    "enum",
    "duration",
]
StateClass = Literal["measurement", "total", "total_increasing"]
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]


class Table(StrEnum):
    """Modbus data tables a register can live in."""

    INPUT = "input"
    HOLDING = "holding"
    COIL = "coil"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Transport(_Strict):
    """What the device allows on the wire."""

    max_registers_per_read: int = Field(125, ge=1, le=125)
    alignment: int = Field(1, ge=1, le=16)
    # Unused registers a read may span. 0 by default: many devices answer exception code 2
    # when a read touches a hole, so merging across holes is opted into per map.
    max_gap: int = Field(0, ge=0, le=125)
    word_order: WordOrder = "big"


class Range(_Strict):
    """A closed interval in the register's scaled unit."""

    min: float
    max: float


class Register(_Strict):
    """One value of the device."""

    name: Name
    table: Table
    address: int = Field(ge=0, le=0xFFFF)
    type: DataType
    length: int | None = Field(None, ge=1, le=125)
    word_order: WordOrder | None = None
    scale: float = 1.0
    unit: Unit | None = None
    device_class: DeviceClass | None = None
    state_class: StateClass | None = None
    group: Name
    plausible: Range | None = None
    writable: Range | None = None
    options: dict[int, str] | None = None

    @property
    def words(self) -> int:
        """Registers (or coils) this value occupies."""
        if self.type is DataType.STRING:
            return self.length or 1
        return FIXED_WORDS[self.type]

    @property
    def end(self) -> int:
        """First address after this value."""
        return self.address + self.words


class RegisterMap(_Strict):
    """A device model: its transport limits, poll groups and registers."""

    version: Literal[1]
    manufacturer: str = Field(min_length=1)
    model: str = Field(min_length=1)
    description: str = ""
    transport: Transport = Transport()
    poll_groups: dict[Name, Annotated[float, Field(gt=0, le=86400)]]
    registers: list[Register] = Field(min_length=1)

    @cached_property
    def by_name(self) -> dict[str, Register]:
        """Registers by name."""
        return {register.name: register for register in self.registers}

    def group(self, name: str) -> list[Register]:
        """Registers polled together under `name`."""
        return [register for register in self.registers if register.group == name]

    def word_order(self, register: Register) -> WordOrder:
        """The register's word order, defaulting to the map's."""
        return register.word_order or self.transport.word_order


@dataclass(frozen=True)
class MapIssue:
    """One problem in a map file."""

    source: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.field}: {self.message}"


class RegisterMapError(ValueError):
    """A map file is invalid; `issues` lists every problem found."""

    def __init__(self, issues: list[MapIssue]) -> None:
        super().__init__("\n".join(str(issue) for issue in issues))
        self.issues = issues


def field_name(path: tuple[str | int, ...]) -> str:
    """Render a path like ('registers', 3, 'type') as ``registers[3].type``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "(document)"


def parse_map(text: str, source: str) -> RegisterMap:
    """Parse and validate map text; raises RegisterMapError naming source:line:field."""
    try:
        located = load_located(text)
    except YamlSyntaxError as err:
        raise RegisterMapError([MapIssue(source, err.line, "(yaml)", err.message)]) from err
    if not isinstance(located.data, dict):
        raise RegisterMapError([MapIssue(source, 1, "(document)", "expected a mapping")])
    try:
        regmap = RegisterMap.model_validate(located.data)
    except ValidationError as err:
        raise RegisterMapError(_pydantic_issues(err, located, source)) from err
    problems = [_issue(located, source, path, msg) for path, msg in _consistency(regmap)]
    if problems:
        raise RegisterMapError(problems)
    return regmap


def load_map(path: Path) -> RegisterMap:
    """Load a map file (a shipped one or an installer's custom map)."""
    return parse_map(path.read_text(encoding="utf-8"), path.name)


def shipped_map_names() -> list[str]:
    """Names of the maps shipped inside the package (file stems)."""
    folder = resources.files(__package__).joinpath("maps")
    return sorted(item.name[:-5] for item in folder.iterdir() if item.name.endswith(".yaml"))


def load_shipped_map(name: str) -> RegisterMap:
    """Load a shipped map by its file stem, e.g. ``eastron_sdm630``."""
    item = resources.files(__package__).joinpath("maps", f"{name}.yaml")
    return parse_map(item.read_text(encoding="utf-8"), f"{name}.yaml")


def _issue(located: LocatedYaml, source: str, path: tuple[str | int, ...], msg: str) -> MapIssue:
    return MapIssue(source, located.line_of(path), field_name(path), msg)


def _pydantic_issues(err: ValidationError, located: LocatedYaml, source: str) -> list[MapIssue]:
    return [_issue(located, source, tuple(error["loc"]), error["msg"]) for error in err.errors()]


Problem = tuple[tuple[str | int, ...], str]


def _consistency(regmap: RegisterMap) -> Iterator[Problem]:
    """Checks across fields that a schema alone cannot express."""
    for name in regmap.poll_groups:
        if name == IDENTITY_GROUP:
            yield ("poll_groups", name), f"'{IDENTITY_GROUP}' is read once, not polled"
    seen: dict[str, int] = {}
    for index, register in enumerate(regmap.registers):
        path: tuple[str | int, ...] = ("registers", index)
        if register.name in seen:
            yield (*path, "name"), f"duplicate name (also registers[{seen[register.name]}])"
        seen.setdefault(register.name, index)
        yield from (((*path, *sub), msg) for sub, msg in _register_problems(regmap, register))
    yield from _overlaps(regmap)


def _register_problems(regmap: RegisterMap, register: Register) -> Iterator[Problem]:
    known_groups = {*regmap.poll_groups, IDENTITY_GROUP}
    if register.group not in known_groups:
        yield ("group",), f"unknown poll group (known: {', '.join(sorted(known_groups))})"
    if (register.type is DataType.STRING) != (register.length is not None):
        yield ("length",), "strings need a length in registers; other types must not have one"
    if (register.table is Table.COIL) != (register.type is DataType.BOOL):
        yield ("type",), "coils are type bool, and bool is only for coils"
    if register.words > regmap.transport.max_registers_per_read:
        yield ("length",), "longer than transport.max_registers_per_read"
    if register.end > 0x10000:
        yield ("address",), "value runs past address 65535"
    if register.scale == 0 or not math.isfinite(register.scale):
        yield ("scale",), "must be a finite, non-zero number"
    if register.writable is not None:
        yield from ((("writable", *sub), msg) for sub, msg in _writable_problems(register))
    if register.options is not None and register.type not in (DataType.U16, DataType.S16):
        yield ("options",), "options apply to u16/s16 registers only"
    for key in ("plausible", "writable"):
        bounds: Range | None = getattr(register, key)
        if bounds is not None and not bounds.min <= bounds.max:
            yield (key,), "min must not exceed max"


_RAW_RANGE = {
    DataType.U16: (0, 0xFFFF),
    DataType.S16: (-0x8000, 0x7FFF),
    DataType.U32: (0, 0xFFFFFFFF),
    DataType.S32: (-0x80000000, 0x7FFFFFFF),
    DataType.BOOL: (0, 1),
}


def _writable_problems(register: Register) -> Iterator[Problem]:
    assert register.writable is not None
    if register.table is Table.INPUT:
        yield (), "input registers are read-only; use a holding register or a coil"
    if register.type is DataType.STRING:
        yield (), "strings cannot be written"
    low, high = _RAW_RANGE.get(register.type, (-math.inf, math.inf))
    for bound in ("min", "max"):
        raw = getattr(register.writable, bound) / (register.scale or 1)
        if not low <= raw <= high:
            yield (bound,), f"does not fit {register.type} with scale {register.scale}"


def _overlaps(regmap: RegisterMap) -> Iterator[Problem]:
    index_of = {id(register): i for i, register in enumerate(regmap.registers)}
    for table in Table:
        ordered = sorted((r for r in regmap.registers if r.table is table), key=lambda r: r.address)
        for before, after in itertools.pairwise(ordered):
            if after.address < before.end:
                yield (
                    ("registers", index_of[id(after)], "address"),
                    f"overlaps '{before.name}' ({table} {before.address}..{before.end - 1})",
                )
