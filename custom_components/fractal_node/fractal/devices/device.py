"""A device: one unit id behind a gateway, described by a register map.

`poll(group)` returns typed readings, `write(name, value)` goes through the safety envelope
and is verified by reading back, and `availability` tells the Home Assistant shell whether
to show entities and when to raise a repair issue.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Protocol

from .codec import DataType, decode, encode
from .errors import ModbusDeviceError, WriteNotVerified, WriteRefused
from .gateway import Gateway
from .health import Availability, Health
from .planner import ReadBlock, plan_reads
from .regmap import IDENTITY_GROUP, Range, Register, RegisterMap, Table

Value = int | float | str


@dataclass(frozen=True)
class Reading:
    """A decoded value in the map's unit, or None with the reason it was rejected."""

    name: str
    value: Value | None
    unit: str | None
    problem: str | None = None


@dataclass(frozen=True)
class WriteResult:
    """What was asked, what was written after the envelope, and what the device reports."""

    name: str
    requested: float
    written: float
    read_back: Value
    clamped: bool


class PolledDevice(Protocol):
    """What the Home Assistant shell needs from any device: map-based or SunSpec."""

    unit: int
    gateway: Gateway

    @property
    def poll_groups(self) -> Mapping[str, float]:
        """Poll group name -> interval in seconds (one coordinator each)."""
        ...

    @property
    def availability(self) -> Availability:
        """Whether the device answers (entities unavailable otherwise), since when, why."""
        ...

    async def read_identity(self) -> dict[str, Reading]:
        """Serial number and model, read once when the device is added."""
        ...

    async def poll(self, group: str) -> dict[str, Reading]:
        """Readings of one group; raises DeviceUnavailable when the device is down."""
        ...


class Device:
    """A unit id on a gateway, read and written through its register map."""

    def __init__(
        self,
        gateway: Gateway,
        unit: int,
        regmap: RegisterMap,
        *,
        envelope: Mapping[str, Range] | None = None,
        clock: Callable[[], float] = time.monotonic,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
    ) -> None:
        self.gateway = gateway
        self.unit = unit
        self.regmap = regmap
        self.envelope = dict(envelope or {})
        self.health = Health(str(self), clock, backoff_initial, backoff_max)
        self._plans = cache(self._plan)

    def __str__(self) -> str:
        model = f"{self.regmap.manufacturer} {self.regmap.model}"
        return f"{model} (unit {self.unit} at {self.gateway.endpoint})"

    @property
    def availability(self) -> Availability:
        """Whether the device answers, since when, and why not."""
        return self.health.availability

    @property
    def poll_groups(self) -> Mapping[str, float]:
        """Poll group name -> interval in seconds, from the map."""
        return self.regmap.poll_groups

    def plan(self, group: str) -> list[ReadBlock[Register]]:
        """The reads that cover `group` (computed once per group)."""
        return self._plans(group)

    async def read_identity(self) -> dict[str, Reading]:
        """Read the identity registers (serial number, ratings) once, e.g. when adding it."""
        return await self.poll(IDENTITY_GROUP)

    async def poll(self, group: str) -> dict[str, Reading]:
        """Read every register of `group`; raises DeviceUnavailable if the device is down."""
        if group != IDENTITY_GROUP and group not in self.regmap.poll_groups:
            raise KeyError(f"{self}: no poll group {group!r}")
        self.health.check()
        try:
            readings = await self.read_group(group)
        except ModbusDeviceError as err:
            raise self.health.failed(err) from err
        self.health.succeeded()
        return readings

    async def read_group(self, group: str) -> dict[str, Reading]:
        """Read and decode `group` once, without availability bookkeeping (for probing)."""
        readings: dict[str, Reading] = {}
        for block in self.plan(group):
            words = await self.gateway.read(self.unit, block)
            readings.update(self._decode_block(block, words))
        return readings

    async def write(self, name: str, value: float | str | bool) -> WriteResult:
        """Write a set-point within the envelope, then read it back and verify it.

        Not retried: a refusal (exception code) or a timeout is raised for the caller to report.
        """
        register = self._writable(name)
        requested, target = self._within_envelope(register, value)
        self.health.check()  # a device known to be down fails fast, without touching the wire
        if register.table is Table.COIL:
            await self.gateway.write_coil(self.unit, register.address, bool(target))
        else:
            words = self._encode(register, target)
            await self.gateway.write_registers(self.unit, register.address, words)
        block = ReadBlock(register.table, register.address, register.words, (register,))
        read_back = self._decode(register, await self.gateway.read(self.unit, block))
        if not _matches(register, target, read_back):
            raise WriteNotVerified(f"{self}: wrote {target} to {name}, read back {read_back}")
        return WriteResult(name, requested, target, read_back, clamped=target != requested)

    def _encode(self, register: Register, value: float) -> list[int]:
        try:
            return encode(value / register.scale, register.type, self.regmap.word_order(register))
        except ValueError as err:
            raise WriteRefused(f"{self}: {register.name}: {err}") from err

    def _plan(self, group: str) -> list[ReadBlock[Register]]:
        return plan_reads(self.regmap.group(group), self.regmap.transport)

    def _decode_block(self, block: ReadBlock[Register], words: list[int]) -> dict[str, Reading]:
        readings = {}
        for register in block.registers:
            offset = register.address - block.start
            value = self._decode(register, words[offset : offset + register.words])
            readings[register.name] = _checked(register, value)
        return readings

    def _decode(self, register: Register, words: list[int]) -> Value:
        raw = decode(words, register.type, self.regmap.word_order(register))
        if isinstance(raw, str) or register.scale == 1:
            return raw
        scaled = raw * register.scale
        if register.type is DataType.FLOAT32:
            return scaled
        return round(scaled, _decimals(register.scale))

    def _writable(self, name: str) -> Register:
        register = self.regmap.by_name.get(name)
        if register is None or register.writable is None:
            raise WriteRefused(f"{self}: {name!r} is not a writable register")
        return register

    def _within_envelope(
        self, register: Register, value: float | str | bool
    ) -> tuple[float, float]:
        """Return (requested, target): option names resolved, numbers clamped to the envelope."""
        requested = _as_number(register, value)
        bounds = _effective_range(register, self.envelope.get(register.name))
        if register.options is not None:
            if requested not in register.options or not bounds.min <= requested <= bounds.max:
                raise WriteRefused(f"{self}: {value!r} is not an allowed {register.name}")
            return requested, requested
        clamped = min(bounds.max, max(bounds.min, requested))
        return requested, _quantised(register, clamped)


def _as_number(register: Register, value: float | str | bool) -> float:
    if isinstance(value, str):
        codes = {label: code for code, label in (register.options or {}).items()}
        if value not in codes:
            raise WriteRefused(f"{value!r} is not one of {sorted(codes)} for {register.name}")
        return codes[value]
    number = float(value)
    if not math.isfinite(number):
        raise WriteRefused(f"{value!r} is not a finite number for {register.name}")
    return number


def _quantised(register: Register, value: float) -> float:
    """Round to what the register can hold, so `written` is what the device gets."""
    if register.type in (DataType.FLOAT32, DataType.BOOL):
        return value
    steps = round(value / register.scale)
    return round(steps * register.scale, _decimals(register.scale))


def _decimals(scale: float) -> int:
    """Decimal places a scale implies: 0.1 -> 1, 0.001 -> 3, 10 -> 0."""
    return max(0, -math.floor(math.log10(abs(scale))))


def _effective_range(register: Register, installer: Range | None) -> Range:
    """The map's writable range narrowed by the installer's envelope; never widened."""
    assert register.writable is not None
    if installer is None:
        return register.writable
    low = max(register.writable.min, installer.min)
    high = min(register.writable.max, installer.max)
    if low > high:
        raise WriteRefused(f"{register.name}: the installer's envelope excludes the map's range")
    return Range(min=low, max=high)


def _checked(register: Register, value: Value) -> Reading:
    """Reject NaN, values outside the plausible range and unknown state codes."""
    if register.options is not None and isinstance(value, int):
        if value in register.options:
            return Reading(register.name, register.options[value], register.unit)
        return Reading(register.name, None, register.unit, f"unknown state code {value}")
    problem = None
    if isinstance(value, float) and not math.isfinite(value):
        problem = f"not a number ({value})"
    elif register.plausible and isinstance(value, int | float):
        low, high = register.plausible.min, register.plausible.max
        if not low <= value <= high:
            problem = f"implausible {value} (expected {low}..{high})"
    return Reading(register.name, None if problem else value, register.unit, problem)


def _matches(register: Register, target: float, read_back: Value) -> bool:
    if not isinstance(read_back, int | float):
        return False
    if register.type is DataType.FLOAT32:
        return math.isclose(read_back, target, rel_tol=1e-6, abs_tol=1e-6)
    return abs(read_back - target) <= abs(register.scale) / 2


if TYPE_CHECKING:  # mypy checks that this kind of device serves the shell

    def _conforms(device: Device) -> PolledDevice:
        return device
